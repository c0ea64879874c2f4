"""recipes/protein_small_data/run.py: the table of Table 3, a tiny end-to-end run, resume and summary."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from rkhsreg.training import build_constraints, build_penalties
from tests._recipe_helpers import read_rows, recipe_module

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes" / "protein_small_data"
_CANDIDATES = [p for p in (os.environ.get("RKHSREG_DATA"), "/work/shared/data", str(ROOT.parent / "shared" / "data"))
               if p]
DATA = next((p for p in _CANDIDATES if (Path(p) / "protein" / "aaanalysis" / "SEQ_DISULFIDE.tsv").is_file()), None)
# Table 3 of the paper (mean auROC50, no DA / DA), from /work/shared/PAPER.md.
PAPER = {"none": (.446, .500), "wd": (.501, .546), "sn_proj": (.591, .632), "pgd_l2": (.575, .595),
         "grad_l2": (.540, .552), "delta": (.600, .608), "grad_norm": (.585, .611), "pgd_l2_sn": (.596, .627),
         "grad_l2_sn": (.592, .624), "delta_sn": (.630, .644), "grad_norm_sn": (.603, .625)}


@pytest.fixture(scope="module")
def run_module():
    with recipe_module("protein_small_data_run", RECIPE / "run.py") as module:
        yield module


@pytest.fixture(scope="module")
def summary_module():
    with recipe_module("protein_small_data_summary_for_tests", RECIPE / "summary.py") as module:
        yield module


def test_table_has_every_row_of_table3_with_buildable_configs(run_module):
    table = run_module.load_table()
    assert list(table["rows"]) == list(PAPER)
    for name, row in table["rows"].items():
        assert (row["paper"]["no_da"], row["paper"]["da"]) == PAPER[name]
        model = row["cfg"]["model"]
        build_penalties(model["penalties"])
        build_constraints(model["constraints"])
        cfg = run_module.resolved(row["cfg"], True, 0.1, None)
        for key, values in (row.get("grid") or {}).items():
            run_module.set_key(cfg, key, values[0])          # every grid key exists in the row's config
        for key, source in (row.get("inherit") or {}).items():
            assert key in table["rows"][source]["grid"]       # inherited from a row that tunes that key
            run_module.set_key(cfg, key, 1.0)
    assert table["augment"]["substitution_p"] == 0.1


def test_config_hash_tracks_hyper_parameters_and_augmentation(run_module):
    cfg = run_module.load_table()["rows"]["delta"]["cfg"]
    base = run_module.resolved(cfg, False, 0.1, None)
    assert run_module.config_hash(base) != run_module.config_hash(run_module.resolved(cfg, True, 0.1, None))
    other = run_module.resolved(cfg, False, 0.1, None)
    run_module.set_key(other, "model.penalties.adversarial_perturbation.epsilon", 2.0)
    assert run_module.config_hash(base) != run_module.config_hash(other)
    with pytest.raises(KeyError, match="does not exist"):
        run_module.set_key(other, "model.penalties.nope.epsilon", 1.0)


@pytest.mark.skipif(DATA is None, reason=f"protein/aaanalysis not found under {_CANDIDATES}")
def test_tiny_run_resumes_and_summarizes(run_module, tmp_path, capsys):
    meta = yaml.safe_load((RECIPE / "table3.yaml").read_text())
    meta["tasks"].update(datasets=["SEQ_DISULFIDE"], tasks_per_dataset=2, train_size=10, test_positives=5,
                         test_negatives=55)
    keep = {"none", "sn_proj"}
    meta["rows"] = [dict(r, config=str(RECIPE / r["config"])) for r in meta["rows"] if r["name"] in keep]
    meta["rows"][1]["grid"] = {"model.constraints.spectral_norm_projection.radius": [0.5, 2.0]}
    table = tmp_path / "table.yaml"
    table.write_text(yaml.safe_dump(meta, allow_unicode=True))
    results = tmp_path / "results"
    argv = ["--table", str(table), "--results", str(results), "--data-dir", DATA, "--epochs", "2"]

    assert run_module.main(argv) == 0
    runs, tuning = read_rows(results / "runs.csv"), read_rows(results / "tuning.csv")
    assert len(tuning) == 2 and {r["half"] for r in tuning} == {"tune"}          # 2 radii × 1 tuning task
    assert sorted((r["row"], r["augment"]) for r in runs) == [("none", "0"), ("none", "1"), ("sn_proj", "0"),
                                                               ("sn_proj", "1")]
    assert {r["task"] for r in runs} == {"disulfide-1"} and {r["half"] for r in runs} == {"report"}
    for r in runs + tuning:
        assert 0.0 <= float(r["auroc50"]) <= 1.0 and 0.0 <= float(r["roc50"]) <= 1.0 and r["finished_at"]
    best = max(tuning, key=lambda r: float(r["auroc50"]))["hparams"]
    chosen = next(r for r in runs if r["row"] == "sn_proj" and r["augment"] == "0")["hparams"]
    assert best.split('"radius":')[1][:3] == chosen.split('"radius":')[1][:3]    # the tuning choice is reported
    assert '"augment_p":0.1' in next(r for r in runs if r["augment"] == "1")["hparams"]

    # a torn last line (killed writer) is ignored, and a rerun trains nothing new
    with open(results / "runs.csv", "a") as f:
        f.write("sn_proj,1,disulfide-1,rep")
    capsys.readouterr()
    assert run_module.main(argv) == 0
    assert "[done]" not in capsys.readouterr().out
    assert len([r for r in read_rows(results / "runs.csv") if r["finished_at"]]) == 4
    text = (results / "table.md").read_text()
    assert "| No regularization | 0.446 |" in text and "(1)" in text
    assert "| SN proj | " in text.split("Paired differences")[1]          # the paired section lists the rows
    summary = read_rows(results / "table.csv")
    assert [r["row"] for r in summary] == ["none", "sn_proj"] and summary[0]["tasks_no_da"] == "1"


def test_bad_arguments(run_module):
    with pytest.raises(SystemExit, match="unknown row"):
        run_module.main(["--rows", "nope", "--summary"])
    with pytest.raises(SystemExit, match="--augment='2'"):
        run_module.main(["--augment", "2"])
    with pytest.raises(SystemExit, match="--scop-root"):
        run_module.main(["--source", "scop"])


def test_paired_differences(summary_module):
    a, b = {"t1": 0.5, "t2": 0.7, "t3": 0.4, "x": 0.9}, {"t1": 0.4, "t2": 0.7, "t3": 0.6}
    mean, sem, win, tie, loss = summary_module.paired(a, b)          # diffs +0.1, 0, -0.2 on the common tasks
    assert mean == pytest.approx(-0.1 / 3) and (win, tie, loss) == (1, 1, 1)
    assert sem == pytest.approx(0.152752523 / 3 ** 0.5)
    assert summary_module.paired({"a": 1.0}, {"b": 1.0}) is None


SCOP_SAMPLE = ROOT.parent / "shared" / "data" / "protein" / "scop167_sample"


@pytest.mark.skipif(not (SCOP_SAMPLE / "pos-test.c.1.1.fasta").is_file(), reason="SCOP sample not present")
def test_scop_source_on_real_benchmark_files(run_module, tmp_path, capsys):
    """Two tasks in the benchmark's layout, made of the real sample files (the first tunes, the second reports)."""
    import shutil

    scop = tmp_path / "SCOP167-superfamily"
    scop.mkdir()
    for task in ("c.1.1", "c.1.1b"):
        for sign in ("pos", "neg"):
            for split in ("train", "test"):
                shutil.copy(SCOP_SAMPLE / f"{sign}-test.c.1.1.fasta", scop / f"{sign}-{split}.{task}.fasta")
    results = tmp_path / "results"
    argv = ["--source", "scop", "--scop-root", str(tmp_path), "--rows", "none", "--augment", "0", "--epochs", "1",
            "--results", str(results)]
    assert run_module.main(argv) == 0
    runs = read_rows(results / "runs.csv")
    assert [(r["task"], r["half"]) for r in runs] == [("c.1.1b", "report")]
    assert 0.0 <= float(runs[0]["auroc50"]) <= 1.0
    for path in scop.glob("*.c.1.1.fasta"):       # one task left: it reports, nothing can tune
        path.unlink()
    with pytest.raises(SystemExit, match="choose hyper-parameters on tuning tasks"):
        run_module.main(argv[:4] + ["--rows", "wd"] + argv[6:])
