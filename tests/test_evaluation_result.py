"""RobustnessResult writers: atomic files, JSON without inf/nan, CSV rows, PNG, table."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

from rkhsreg.evaluation import RobustnessResult
from rkhsreg.evaluation.result import atomic_write


def _result(**kwargs) -> RobustnessResult:
    distances = torch.tensor([0.0, 0.3, 0.7, math.inf], dtype=torch.float64)
    eps = [0.0, 0.5, 1.0]
    base = dict(norm="l2", epsilons=eps, clean_accuracy=0.75,
                robust_accuracy=[float((distances > e).double().mean()) for e in eps], distances=distances,
                correct=distances > 0)
    base.update(kwargs)
    return RobustnessResult(**base)


def test_accuracy_at_matches_curve():
    result = _result()
    assert result.robust_accuracy == [0.75, 0.5, 0.25]
    assert [result.accuracy_at(e) for e in (0, 0.5, 1)] == [0.75, 0.5, 0.25]
    assert result.accuracy_at(torch.tensor(0.5)) == 0.5
    assert result.n_examples == 4


@pytest.mark.parametrize("epsilon", [0.3, 0.75, 2.0])
def test_accuracy_at_an_epsilon_the_sweep_did_not_attack_is_refused(epsilon):
    """Distances were never searched at an ε outside the sweep: an accuracy read from them would overstate it."""
    from rkhsreg._errors import ConfigurationError

    with pytest.raises(ConfigurationError, match=r"epsilon=.* is not allowed; pass one of the sweep's radii "
                                                 r"\(0, 0\.5, 1\)"):
        _result().accuracy_at(epsilon)


@pytest.mark.parametrize("epsilon, match", [(float("nan"), "epsilon=nan is not finite"),
                                            (-0.5, "epsilon=-0.5 is out of range; it must be >= 0"),
                                            ("0.5", "epsilon='0.5' is not a number"),
                                            (True, "epsilon=True is not a number")])
def test_accuracy_at_refuses_what_is_no_radius_by_its_declaration(epsilon, match):
    from rkhsreg._errors import ParameterError

    with pytest.raises(ParameterError, match=f"RobustnessResult.accuracy_at: {match}"):
        _result().accuracy_at(epsilon)


def test_save_refuses_to_replace_files_unless_overwrite(tmp_path):
    result = _result()
    paths = result.save(tmp_path / "curve", plot=False)
    paths["csv"].write_text("kept\n")
    paths["json"].unlink()
    from rkhsreg import OutputExistsError
    with pytest.raises(OutputExistsError, match=r"curve\.csv already exist.*overwrite=True") as refused:
        result.save(tmp_path / "curve", plot=False)
    assert isinstance(refused.value, FileExistsError)                       # what a user already catches
    assert paths["csv"].read_text() == "kept\n" and not paths["json"].exists()   # nothing written
    result.save(tmp_path / "curve", plot=False, overwrite=True)
    assert paths["csv"].read_text().startswith("epsilon,") and paths["json"].exists()
    from rkhsreg._errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="overwrite='yes' is not allowed"):
        result.save(tmp_path / "other", overwrite="yes")


def test_save_into_a_folder_is_refused(tmp_path):
    (tmp_path / "results").mkdir()
    (tmp_path / "run.json").mkdir()
    from rkhsreg._errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="is a folder"):
        _result().save(tmp_path / "results", plot=False)
    with pytest.raises(ConfigurationError, match=r"run\.json is a folder"):
        _result().save(tmp_path / "run", plot=False)


@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<?xml")])
def test_plot_writes_the_format_of_its_extension(tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    result = _result(certified_accuracy=[0.75, 0.25, 0.0])
    path = tmp_path / f"fig{suffix}"
    result.plot(path, label="regularized")
    assert path.read_bytes()[:len(magic)] == magic
    paths = result.save(tmp_path / f"run{suffix}")                  # save: the plot in the prefix's format
    assert sorted(p.name for p in paths.values()) == sorted(["run.json", "run.csv", f"run{suffix}"])
    from rkhsreg._errors import ConfigurationError
    with pytest.raises(ConfigurationError, match=r"\.png, \.pdf, \.svg"):
        result.plot(tmp_path / "fig.jpg")


@pytest.mark.parametrize("writer", ["to_json", "to_csv", "plot", "plot_results", "deformation.to_json",
                                    "deformation.to_csv", "deformation.plot"])
def test_every_writer_refuses_an_existing_file_unless_overwrite(tmp_path, writer):
    """One overwrite policy for every writer (as save and the CLI): an existing file is named and left intact."""
    from rkhsreg import OutputExistsError
    from rkhsreg.evaluation import DeformationResult, plot_results

    if "plot" in writer:
        pytest.importorskip("matplotlib")
    result = _result()
    deformation = DeformationResult(sizes=[1.0], max_displacement=[1.0], max_gradient=[0.3], clean_accuracy=1.0,
                                    random_accuracy=[0.5], adversarial_accuracy=None,
                                    jacobian_norms=torch.tensor([0.1]), displacement_norms=torch.tensor([0.2]),
                                    ratios=torch.tensor([0.3]), size_index=torch.tensor([0]), kinds=["random"],
                                    n_examples=2)
    owner, _, method = writer.rpartition(".")
    call = (lambda path, **kw: plot_results([result], path, **kw)) if writer == "plot_results" else \
        getattr(deformation if owner else result, method)
    path = tmp_path / ("keep.json" if "json" in writer else "keep.csv" if "csv" in writer else "keep.pdf")
    path.write_text("precious")
    with pytest.raises(OutputExistsError, match=rf"{path.name} already exists; pass another path, or "
                                                r"overwrite=True to replace it"):
        call(path)
    assert path.read_text() == "precious"
    call(path, overwrite=True)
    assert path.read_text(errors="replace") != "precious"


def test_plot_speaks_to_readers_and_overlays_results(tmp_path):
    pytest.importorskip("matplotlib")
    from rkhsreg.evaluation import plot_results

    one = _result(certified_accuracy=[0.75, 0.25, 0.0])
    fig = one.plot(label="regularized")
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.get_legend().get_texts()]
    assert texts == ["regularized: robust accuracy (attacks)", "regularized: certified accuracy"]
    assert ax.get_xlabel() == "ε (ℓ2 radius)" and ax.get_title() == ""
    assert not any("empirical" in t or "upper bound" in t for t in texts)
    far = torch.tensor([0.0, 0.7, 2.0, math.inf], dtype=torch.float64)
    two = _result(robust_accuracy=[0.75, 0.75, 0.5], distances=far, correct=far > 0)
    one.to_json(tmp_path / "plain.json")
    fig = plot_results([tmp_path / "plain.json", two], tmp_path / "both.pdf", labels=["plain", "δ"],
                       title="MNIST", xlabel="ε (pixels)")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "plain: robust accuracy (attacks)", "plain: certified accuracy", "δ: robust accuracy (attacks)"]
    assert ax.lines[0].get_color() == ax.lines[1].get_color() != ax.lines[2].get_color()
    assert list(ax.lines[2].get_ydata()) == [0.75, 0.75, 0.5] and ax.get_xlabel() == "ε (pixels)"
    assert (tmp_path / "both.pdf").read_bytes()[:4] == b"%PDF"
    from rkhsreg._errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="different norms"):
        plot_results([one, _result(norm="linf")])
    with pytest.raises(ConfigurationError, match="one label per result"):
        plot_results([one, two], labels=["a"])


@pytest.mark.parametrize("changes, parameter, key, pattern", [
    ({"clean_accuracy": 0.5, "robust_accuracy": [0.75, 0.75, 0.5]}, "robust_accuracy", "robust_acc",
     r"holds 0\.75 at ε=0\.0, above clean_accuracy=0\.5"),
    ({"robust_accuracy": [0.75, 0.25, 0.5]}, "robust_accuracy", "robust_acc",
     r"rises with ε: 0\.25 at ε=0\.5 but 0\.5 at ε=1\.0"),
    ({"robust_accuracy": [0.75, 0.25, 0.25]}, "robust_accuracy", "robust_acc",
     r"robust_accuracy\[1\]=0\.25 at ε=0\.5 disagrees with distances: 2 of 4 examples have a distance above ε"),
    ({"correct": torch.tensor([True, True, True, True])}, "correct", None,      # load derives correct from distances
     r"correct and distances disagree at 1 of 4 examples \(first: example 0"),
    ({"clean_accuracy": 1.0, "robust_accuracy": [1.0, 0.5, 0.25]}, "robust_accuracy", "robust_acc",
     r"robust_accuracy\[0\]=1\.0 at ε=0\.0 disagrees"),
])
def test_a_result_breaking_its_invariants_is_refused_built_or_loaded(tmp_path, changes, parameter, key, pattern):
    """robust <= clean, non-increasing in ε, and robust_accuracy[k] == (distances > ε_k).mean(): one check, run by
    the constructor and so by load (which names the file's key)."""
    from rkhsreg import ParameterError
    from rkhsreg._errors import InputError

    with pytest.raises(ParameterError, match=pattern) as info:
        _result(**changes)
    assert info.value.parameter == parameter
    if key is None:
        return
    record = _result().to_dict()
    record["clean_acc"] = changes.get("clean_accuracy", record["clean_acc"])
    record["robust_acc"] = dict(zip(record["robust_acc"], changes.get("robust_accuracy", record["robust_acc"].values())))
    (tmp_path / "edited.json").write_text(json.dumps(record))
    with pytest.raises(InputError, match=rf"edited\.json' is not a valid robustness result: its '{key}' is refused"):
        RobustnessResult.load(tmp_path / "edited.json")


def test_the_invariants_allow_a_distance_at_the_rounding_of_epsilon_and_unknown_distances():
    """A success found exactly at ε (a float32 distance rounded across it) counts on either side; without
    per-example distances (a file written with per_example=False) only robust <= clean and monotonicity apply."""
    d32 = torch.tensor([0.0, 0.5, 0.7, math.inf], dtype=torch.float32)
    d32[1] = torch.nextafter(torch.tensor(0.5), torch.tensor(1.0))
    for robust in ([0.75, 0.5, 0.25], [0.75, 0.75, 0.25]):
        _result(robust_accuracy=robust, distances=d32, correct=d32 > 0)
    unknown = torch.full((4,), math.nan, dtype=torch.float64)
    _result(robust_accuracy=[0.75, 0.75, 0.75], distances=unknown, correct=torch.ones(4, dtype=torch.bool))


def test_load_reads_back_what_save_wrote(tmp_path):
    from rkhsreg._errors import InputError

    result = _result(certified_accuracy=[0.75, 0.25, 0.0], certified_radii=torch.tensor([0.0, 0.1, 0.6, 2.0]),
                     lipschitz_constant=3.5, metadata={"model": "m"})
    back = RobustnessResult.load(result.to_json(tmp_path / "r.json"))
    assert back.to_dict() | {"versions": None} == result.to_dict() | {"versions": None}
    assert back.accuracy_at(0.5) == 0.5 and torch.equal(back.distances, result.distances)
    compact = RobustnessResult.load(result.to_json(tmp_path / "c.json", per_example=False))
    assert compact.robust_accuracy == result.robust_accuracy and compact.n_examples == 4
    (tmp_path / "bad.json").write_text('{"eps": [0.5]}')
    with pytest.raises(InputError, match=r"bad\.json' is not a robustness result: it lacks norm, clean_acc"):
        RobustnessResult.load(tmp_path / "bad.json")
    (tmp_path / "html.json").write_text("<html>")
    with pytest.raises(InputError, match="is not a JSON file"):
        RobustnessResult.load(tmp_path / "html.json")
    with pytest.raises(InputError, match="does not exist"):
        RobustnessResult.load(tmp_path / "none.json")


def test_json_has_robustbench_keys_and_no_inf(tmp_path):
    result = _result(certified_accuracy=[0.75, 0.25, 0.0])
    path = result.to_json(tmp_path / "r.json")
    text = path.read_text()
    record = json.loads(text)
    assert "Infinity" not in text and "NaN" not in text
    assert record["clean_acc"] == 0.75 and record["n_ex"] == 4 and record["threat_model"] == "L2"
    assert record["robust_acc"] == {"0": 0.75, "0.5": 0.5, "1": 0.25}
    assert record["certified_acc"] == {"0": 0.75, "0.5": 0.25, "1": 0.0}
    assert record["distances"] == [0.0, 0.3, 0.7, None]
    assert {"python", "torch", "rkhsreg"} <= set(record["versions"])
    compact = json.loads(result.to_json(tmp_path / "c.json", per_example=False).read_text())
    assert "distances" not in compact


def test_csv_rows_and_table(tmp_path):
    result = _result()
    lines = result.to_csv(tmp_path / "r.csv").read_text().splitlines()
    assert lines == ["epsilon,robust_acc,certified_acc", "0.0,0.75,", "0.5,0.5,", "1.0,0.25,"]
    table = _result(sanity={"warnings": ["gradients are masked"]}).table()
    assert "clean accuracy 75.00%" in table and "50.00%" in table and "warning: gradients are masked" in table


def test_save_writes_three_files_with_normal_permissions(tmp_path):
    pytest.importorskip("matplotlib")
    paths = _result(certified_accuracy=[0.75, 0.25, 0.0]).save(tmp_path / "out" / "curve")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["curve.csv", "curve.json", "curve.png"]
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    umask = os.umask(0)
    os.umask(umask)
    assert paths["json"].stat().st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    atomic_write(target, "old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "new")
    monkeypatch.undo()
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # no temporary file left behind


def test_atomic_write_never_changes_the_process_umask(tmp_path, monkeypatch):
    # setting the umask to read it opens a window in which other threads create world-writable files
    reference = tmp_path / "reference"
    reference.write_text("x")  # the permissions open() gives under the current umask

    def no_umask(mask):
        raise AssertionError("os.umask called")

    monkeypatch.setattr(os, "umask", no_umask)
    path = atomic_write(tmp_path / "sub" / "r.txt", b"data")
    assert path.read_bytes() == b"data"
    assert path.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777


def test_json_keys_tell_close_epsilons_apart():
    from rkhsreg.evaluation.result import epsilon_key

    eps = [0.1234567, 0.1234568, 1.0, 2.5e-05]
    between = torch.tensor([0.0, 0.12345675, 0.7, math.inf], dtype=torch.float64)
    result = _result(epsilons=eps, robust_accuracy=[0.75, 0.5, 0.25, 0.75], distances=between, correct=between > 0)
    record = result.to_dict()
    assert record["robust_acc"] == {"0.1234567": 0.75, "0.1234568": 0.5, "1": 0.25, "2.5e-05": 0.75}
    assert all(float(epsilon_key(e)) == e for e in eps)


def test_accuracy_at_takes_a_radius_given_or_stored_in_float32():
    """A sweep over float32 radii (a tensor, numpy scalars) is read back at their decimals, and the reverse."""
    import numpy as np

    from rkhsreg._errors import ConfigurationError

    result = _result()
    result.epsilons = [0.0, float(np.float32(0.1)), float(np.float32(0.2))]
    assert result.accuracy_at(0.1) == 0.5 and result.accuracy_at(np.float32(0.2)) == 0.25
    assert result.accuracy_at(torch.tensor(0.1)) == 0.5
    with pytest.raises(ConfigurationError, match="pass one of the sweep's radii"):
        result.accuracy_at(0.15)
