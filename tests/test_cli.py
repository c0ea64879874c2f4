"""``rkhsreg evaluate``: one-line errors with a non-zero exit, and a full run writing JSON/CSV/PNG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchattacks")
pytest.importorskip("torchvision")

from rkhsreg.cli import build_parser, main  # noqa: E402
from rkhsreg.cli.datasets import cifar10_folder  # noqa: E402
from tests._evaluation_helpers import tiny_cnn, write_image_folder, write_quadrant_folder  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RKHSREG_DATA") or ROOT.parent / "shared" / "data")
TINY = "tests._evaluation_helpers:tiny_cnn"



@pytest.fixture
def folder(tmp_path):
    write_image_folder(tmp_path / "images")
    return tmp_path / "images"


@pytest.fixture
def weights(tmp_path):
    path = tmp_path / "w.pt"
    torch.save(tiny_cnn().state_dict(), path)
    return path


def _run(capsys, *args):
    try:
        code = main(["evaluate", *args])
    except SystemExit as stop:     # refused by the parser (an option's declaration): argparse exits with 2
        code = stop.code
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, match: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {err!r}"
    assert "Traceback" not in err
    assert match in lines[0], lines[0]


@pytest.mark.parametrize("args, match", [
    (["--model", TINY, "--weights", "missing.pt"], "--weights 'missing.pt': no such file"),
    (["--model", TINY, "--checkpoint", "missing.ckpt"], "--checkpoint 'missing.ckpt': no such file"),
    (["--model", "tests._evaluation_helpers:nope", "--random-init"], "has no attribute 'nope'"),
    (["--model", "no_such_package.models:net", "--random-init"], "cannot import module 'no_such_package.models'"),
    (["--model", "tiny_cnn", "--random-init"], "is not allowed; pass 'package.module:factory'"),
    (["--model", "timm:resnet18"], "needs its trained tensors: pass --weights"),
    (["--model", TINY], "needs its trained tensors: pass --weights"),
    (["--model", TINY, "--model-kwargs", "{width: 2}", "--random-init"], "is not valid JSON"),
    (["--model", TINY, "--model-kwargs", '{"width": 2}', "--random-init"], "could not be built"),
])
def test_bad_model_is_one_line_error(capsys, folder, args, match):
    code, out, err = _run(capsys, *args, "--data", f"imagefolder:{folder}", "--epsilons", "0.5", "--no-progress")
    assert code != 0 and out == ""
    _one_line_error(err, match)


@pytest.mark.parametrize("epsilons, match", [
    ("0.5,abc", "--epsilons '0.5,abc': 'abc' is not a number (allowed: a non-empty list of finite radii >= 0"),
    ("-1", "--epsilons[0]=-1.0 is out of range; it must be >= 0"),
    (",", "--epsilons ',' has an empty entry (at its start)"),
    ("inf", "--epsilons[0]=inf is not finite"),
    ("0.5,,1", "--epsilons '0.5,,1' has an empty entry (between two commas); pass values separated by single commas"),
    ("0.5,1,", "--epsilons '0.5,1,' has an empty entry (at its end)"),
])
def test_bad_epsilon_list_is_one_line_error(capsys, folder, epsilons, match):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--model", TINY, "--data", f"imagefolder:{folder}", "--epsilons", epsilons])
    assert exit_.value.code == 2
    _one_line_error(capsys.readouterr().err, match)


def test_attack_names_on_the_command_line(capsys, tmp_path):
    from rkhsreg.evaluation import attack_names

    write_quadrant_folder(tmp_path / "images")
    base = ["--model", "tests._evaluation_helpers:quadrant_net", "--data", f"imagefolder:{tmp_path / 'images'}",
            "--epsilons", "20", "--steps", "3", "--no-progress", "--no-sanity",
            "--random-init"]  # the factory sets the weights; noise breaks all: Square idle
    code, out, err = _run(capsys, *base, "--attacks", "default,sqare")
    assert code == 2 and out == ""
    _one_line_error(err, "unknown attack 'sqare'; did you mean 'square'?")
    code, _, _ = _run(capsys, *base, "--attacks", "noise, square", "--out", str(tmp_path / "r"))
    assert code == 0
    ensemble = json.loads((tmp_path / "r.json").read_text())["attack"]["ensemble"]
    assert [a["name"] for a in ensemble] == ["noise", "square"] and ensemble[1]["queries"] == 5000
    help_text = build_parser()._subparsers._group_actions[0].choices["evaluate"].format_help()
    assert all(name in " ".join(help_text.split()) for name in attack_names())   # the built-ins are all named


@pytest.mark.parametrize("data, match", [
    ("svhn", "data='svhn' is not allowed"),
    ("imagefolder:/no/such/folder", "is not a folder"),
])
def test_bad_data_is_one_line_error(capsys, weights, data, match):
    code, _, err = _run(capsys, "--model", TINY, "--weights", str(weights), "--data", data, "--epsilons", "0.5")
    assert code == 2
    _one_line_error(err, match)


@pytest.mark.parametrize("extra, match", [
    (["--model", "timm:resnet1800"], "unknown timm model 'resnet1800'; did you mean"),
    (["--model", TINY, "--checkpoint", "{w}"], "pass --checkpoint or --weights, not both"),
    (["--model", TINY, "--device", "cuda:7"] if not torch.cuda.is_available() else ["--model", TINY, "--device",
                                                                                     "nonsense"], "--device"),
])
def test_other_user_errors(capsys, folder, weights, extra, match):
    extra = [e.replace("{w}", str(weights)) for e in extra]
    code, _, err = _run(capsys, *extra, "--weights", str(weights), "--data", f"imagefolder:{folder}",
                        "--epsilons", "0.5", "--no-progress")
    assert code == 2
    _one_line_error(err, match)


def test_weights_that_do_not_fit_or_hold_objects(capsys, tmp_path, folder):
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv.weight": torch.zeros(2)}, wrong)
    code, _, err = _run(capsys, "--model", TINY, "--weights", str(wrong), "--data", f"imagefolder:{folder}",
                        "--epsilons", "0.5")
    assert code == 2
    _one_line_error(err, "does not fit the model")
    pickled = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": tiny_cnn().state_dict(), "hparams": argparse_namespace()}, pickled)
    code, _, err = _run(capsys, "--model", TINY, "--checkpoint", str(pickled), "--data", f"imagefolder:{folder}",
                        "--epsilons", "0.5")
    assert code == 2
    _one_line_error(err, "holds pickled objects besides tensors")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a checkpoint")
    code, _, err = _run(capsys, "--model", TINY, "--weights", str(garbage), "--data", f"imagefolder:{folder}",
                        "--epsilons", "0.5")
    assert code == 2
    _one_line_error(err, "is not a torch checkpoint (a text file? It starts with text 'not a checkpoint')")


def argparse_namespace():
    import argparse
    return argparse.Namespace(lr=0.1)


def test_run_on_image_folder_writes_json_csv_png(capsys, tmp_path, folder):
    # a Lightning-style checkpoint: the network under a 'model.' prefix, extra non-tensor entries
    ckpt = tmp_path / "last.ckpt"
    torch.save({"state_dict": {f"model.{k}": v for k, v in tiny_cnn().state_dict().items()}, "epoch": 3}, ckpt)
    out = tmp_path / "results" / "robustness"
    code, stdout, _ = _run(capsys, "--model", TINY, "--checkpoint", str(ckpt), "--data", f"imagefolder:{folder}",
                           "--epsilons", "0.02,0.05,0.2", "--steps", "3", "--n-examples", "10", "--batch-size", "4",
                           "--out", str(out), "--certify")
    assert code == 0
    assert "robust acc" in stdout and "certified" in stdout and "wrote" in stdout
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["n_ex"] == 10 and record["threat_model"] == "L2"
    assert set(record["robust_acc"]) == {"0.02", "0.05", "0.2"}
    assert 0 <= record["clean_acc"] <= 1 and record["certified_acc"] is not None
    assert record["versions"]["torchattacks"] and record["versions"]["torch"]
    assert [a["name"] for a in record["attack"]["ensemble"]] == ["fab-t", "apgd-ce", "apgd-t"]
    assert record["attack"]["ensemble"][1]["steps"] == 3
    assert record["run"]["checkpoint"] == str(ckpt)
    # the command as given to main(), not the test runner's sys.argv
    assert record["run"]["command"].startswith(f"rkhsreg evaluate --model {TINY} --checkpoint {ckpt} ")
    assert record["run"]["command"].endswith(f"--out {out} --certify")
    assert out.with_suffix(".csv").read_text().splitlines()[0] == "epsilon,robust_acc,certified_acc"
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["robustness.csv", "robustness.json", "robustness.png"]


@pytest.mark.skipif(not (SHARED / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists(), reason="no MNIST copy")
def test_run_on_mnist_with_paper_network(capsys, tmp_path):
    from rkhsreg.models import mnist_vgg5

    torch.manual_seed(0)
    weights = tmp_path / "vgg.pt"
    torch.save(mnist_vgg5(width=2).state_dict(), weights)
    code, stdout, _ = _run(capsys, "--model", "rkhsreg.models:mnist_vgg5", "--model-kwargs", '{"width": 2}',
                           "--weights", str(weights), "--data", "mnist", "--data-dir", str(SHARED),
                           "--epsilons", "0.5,1", "--steps", "2", "--n-examples", "6", "--no-progress", "--no-sanity")
    assert code == 0 and "n = 6" in stdout


def _fake_cifar_archive(folder: Path) -> Path:
    src = folder / "src"
    for split in ("train", "test"):
        write_image_folder(src / split, classes=2, per_class=2, size=4)
    archive = folder / "CIFAR-10-images_jpeg.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(src / split, arcname=split)
    return archive


def test_cifar10_archive_is_extracted_once_outside_the_repo(tmp_path, monkeypatch):
    from rkhsreg.data.cifar10_files import find_cifar10

    root = tmp_path / "data"
    (root / "cifar10_jpeg").mkdir(parents=True)
    _fake_cifar_archive(root / "cifar10_jpeg")
    monkeypatch.setenv("RKHSREG_CACHE", str(tmp_path / "cache"))
    split = cifar10_folder(root, "test")
    assert split.parent.parent == tmp_path / "cache" and split.name == "test"
    assert sorted(p.name for p in split.iterdir()) == ["class0", "class1"]
    stamp = (split.parent / ".complete").stat().st_mtime_ns
    assert cifar10_folder(root, "test") == split and (split.parent / ".complete").stat().st_mtime_ns == stamp
    # one cache: the recipes' loader finds the very same tree
    assert find_cifar10(root, source="imagefolder").path == split.parent


def test_cifar10_never_unpacked_into_the_data_folder(tmp_path, monkeypatch):
    """Even a writable data folder (e.g. run as root) stays as it was: the tree goes to the user cache."""
    monkeypatch.delenv("RKHSREG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    root = tmp_path / "data"
    (root / "cifar10_jpeg").mkdir(parents=True)
    _fake_cifar_archive(root / "cifar10_jpeg")
    before = sorted(str(p) for p in root.rglob("*"))
    split = cifar10_folder(root, "test")
    assert str(split).startswith(str(tmp_path / "xdg" / "rkhsreg")) and not str(split).startswith(str(ROOT))
    assert sorted(str(p) for p in root.rglob("*")) == before


def test_console_entry_exits_nonzero_without_traceback(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "rkhsreg.cli", "evaluate", "--model", TINY, "--weights",
                           str(tmp_path / "none.pt"), "--data", "mnist", "--epsilons", "0.5"],
                          capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [f"rkhsreg evaluate: error: --weights '{tmp_path / 'none.pt'}': "
                                                "no such file"]


def _volatile_free(record: dict) -> dict:
    """The JSON of a run without what legitimately differs between two runs (times, world size, command line)."""
    record = json.loads(json.dumps(record))
    record["budget"].pop("seconds")
    for stage in record["budget"]["stages"]:
        stage.pop("seconds")
    for key in ("world_size", "command"):
        record["run"].pop(key)
    return record


@pytest.mark.slow
def test_torchrun_two_processes_write_the_one_process_json(capsys, tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    write_quadrant_folder(tmp_path / "images")  # 12 images the quadrant network classifies correctly
    args = ["--model", "tests._evaluation_helpers:quadrant_net", "--data", f"imagefolder:{tmp_path / 'images'}",
            "--epsilons", "0.5,1.5,1.7", "--steps", "3", "--batch-size", "4", "--n-examples", "10", "--certify",
            "--no-progress", "--random-init"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "rkhsreg.cli", "evaluate", *args, "--out", str(tmp_path / "two")],
                          capture_output=True, text=True, timeout=120, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("threat model, n = 10") == 1, proc.stdout  # rank 0 alone prints the table
    code, _, _ = _run(capsys, *args, "--out", str(tmp_path / "one"))
    assert code == 0
    two = json.loads((tmp_path / "two.json").read_text())
    one = json.loads((tmp_path / "one.json").read_text())
    assert two["run"]["world_size"] == 2 and one["run"]["world_size"] == 1
    # stages of up to 3 batches (4, 4, 2 examples): each process attacked its share, the reductions gave the whole
    assert max(s["attacked"] for s in two["budget"]["stages"]) > 4
    assert 0 < two["robust_acc"]["1.7"] < two["robust_acc"]["0.5"] == 1.0
    assert _volatile_free(two) == _volatile_free(one)
    assert (tmp_path / "two.csv").read_text() == (tmp_path / "one.csv").read_text()


# ---------------------------------------------------------------------------------- a new user's code and examples
def test_model_from_the_current_directory_and_import_path(capsys, tmp_path, monkeypatch):
    """`--model mypkg.nets:build` finds mypkg/ in the current directory, as `python -m` would; others need
    --import-path."""
    import shutil

    for root in (tmp_path / "here", tmp_path / "elsewhere"):
        (root / "mypkg").mkdir(parents=True)
        (root / "mypkg" / "__init__.py").write_text("")
    shutil.copy(ROOT / "tests" / "_evaluation_helpers.py", tmp_path / "here" / "mypkg" / "helpers.py")
    (tmp_path / "here" / "mypkg" / "nets.py").write_text("from mypkg.helpers import tiny_cnn as build\n")
    (tmp_path / "elsewhere" / "mypkg").rename(tmp_path / "elsewhere" / "otherpkg")
    (tmp_path / "elsewhere" / "otherpkg" / "nets.py").write_text("from mypkg.helpers import tiny_cnn as build\n")
    write_image_folder(tmp_path / "images")
    torch.save(tiny_cnn().state_dict(), tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(tmp_path / "here"))])
    common = ["--weights", str(tmp_path / "w.pt"), "--data", f"imagefolder:{tmp_path / 'images'}",
              "--epsilons", "0.5", "--steps", "2", "--first-n", "3", "--no-progress", "--no-sanity",
              "--attacks", "apgd-ce", "--threads", "1"]
    code, out, err = _run(capsys, "--model", "mypkg.nets:build", *common, "--out", str(tmp_path / "r"))
    assert code == 0, err
    assert json.loads((tmp_path / "r.json").read_text())["run"]["indices"] == [0, 1, 2]
    code, _, err = _run(capsys, "--model", "otherpkg.nets:build", *common)
    assert code == 2 and "cannot import module 'otherpkg.nets'" in err
    code, _, err = _run(capsys, "--model", "otherpkg.nets:build", "--import-path", str(tmp_path / "elsewhere"), *common)
    assert code == 0, err


def test_examples_by_index_and_a_subset_seed_apart_from_the_attack_seed(capsys, tmp_path, weights, folder):
    base = ["--model", TINY, "--weights", str(weights), "--data", f"imagefolder:{folder}", "--epsilons", "0.5",
            "--steps", "2", "--no-progress", "--no-sanity", "--attacks", "apgd-ce"]
    assert _run(capsys, *base, "--indices", "4,1,7", "--out", str(tmp_path / "a"))[0] == 0
    assert json.loads((tmp_path / "a.json").read_text())["run"]["indices"] == [4, 1, 7]
    drawn = []
    for name, extra in (("b", ["--seed", "0"]), ("c", ["--seed", "1", "--subset-seed", "0"]), ("d", ["--seed", "1"])):
        assert _run(capsys, *base, "--n-examples", "5", *extra, "--out", str(tmp_path / name))[0] == 0
        drawn.append(json.loads((tmp_path / f"{name}.json").read_text())["run"]["indices"])
    assert drawn[0] == drawn[1] != drawn[2]  # --subset-seed fixes the examples whatever the attack seed
    code, _, err = _run(capsys, *base, "--indices", "0,99999")
    assert code == 2 and "--indices: 99999 is out of range" in err
    code, _, err = _run(capsys, *base, "--indices", "0", "--first-n", "2")
    assert code == 2 and "not --first-n and --indices" in err


def test_version(capsys):
    from rkhsreg import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"rkhsreg {__version__}"


def test_help_lists_every_subcommand(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    text = capsys.readouterr().out
    assert exit_.value.code == 0
    listed = {line.split()[0] for line in text.splitlines() if line.startswith("    ") and line.split()}
    assert {"fit", "validate", "test", "predict", "evaluate", "plot"} <= listed, text


def _saved(path: Path, robust: list[float], certified: list[float] | None = None) -> Path:
    from rkhsreg.evaluation import RobustnessResult

    # distances that give the robust curve (robust_acc[k] == (distances > eps[k]).mean())
    distances = torch.tensor([0.0, 0.4 if robust[0] == 0.5 else 0.8, 0.8 if robust[1] == 0.25 else 2.0, 2.0],
                             dtype=torch.float64)
    RobustnessResult(norm="l2", epsilons=[0.5, 1.0], clean_accuracy=0.75, robust_accuracy=robust,
                     distances=distances, correct=distances > 0, certified_accuracy=certified).to_json(path)
    return path


def test_plot_overlays_saved_results_in_the_format_of_out(capsys, tmp_path):
    a = _saved(tmp_path / "plain.json", [0.5, 0.25])
    b = _saved(tmp_path / "delta.json", [0.75, 0.5], certified=[0.25, 0.0])
    fig = tmp_path / "fig.pdf"
    assert main(["plot", str(a), str(b), "--out", str(fig), "--label", "plain", "--label", "‖f‖²_δ"]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {fig}" and fig.read_bytes()[:4] == b"%PDF"
    assert main(["plot", str(a), "--out", str(tmp_path / "one.svg")]) == 0
    assert b"plain: robust accuracy (attacks)" in (tmp_path / "one.svg").read_bytes()   # default label: file name
    capsys.readouterr()
    for argv, match in (
            ([str(a), "--out", str(fig)], "already exists; pass another --out, or --overwrite"),
            ([str(a), "--out", str(tmp_path / "fig.jpg")], "end the file name with .png, .pdf, .svg"),
            ([str(a), "--out", str(tmp_path)], "end the file name with .png, .pdf, .svg"),
            ([str(a), str(b), "--out", str(tmp_path / "f.png"), "--label", "x"], "--label given 1 times for 2"),
            ([str(tmp_path / "none.json"), "--out", str(tmp_path / "f.png")], "none.json' does not exist"),
    ):
        assert main(["plot", *argv]) == 2
        _one_line_error(capsys.readouterr().err, match)
    assert main(["plot", str(a), "--out", str(fig), "--overwrite"]) == 0


def test_evaluate_out_with_a_pdf_or_svg_suffix_writes_that_plot(capsys, tmp_path):
    write_quadrant_folder(tmp_path / "images")
    argv = ["--model", "tests._evaluation_helpers:quadrant_net", "--random-init", "--data",
            f"imagefolder:{tmp_path / 'images'}", "--epsilons", "0.5", "--steps", "2", "--first-n", "4",
            "--no-progress", "--no-sanity", "--attacks", "apgd-ce", "--out", str(tmp_path / "out" / "run.svg")]
    assert _run(capsys, *argv)[0] == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run.csv", "run.json", "run.svg"]
    assert (tmp_path / "out" / "run.svg").read_bytes().lstrip()[:5] == b"<?xml"


@pytest.mark.parametrize("cli, python", [
    (["--n-examples", "6", "--subset-seed", "3", "--seed", "1"], dict(n_examples=6, seed=3)),
    (["--n-examples", "6", "--seed", "2"], dict(n_examples=6, seed=2)),
    (["--first-n", "4"], dict(first_n=4)),
    (["--indices", "17,2,9"], dict(indices=[17, 2, 9])),
])
def test_cifar10_from_python_is_what_the_cli_evaluates(capsys, tmp_path, monkeypatch, cli, python):
    """rkhsreg.data.load_cifar10 returns the very tensors `rkhsreg evaluate --data cifar10` attacks."""
    from rkhsreg.data import load_cifar10
    from rkhsreg.evaluation._data import collect
    from tests._cifar10_helpers import make_imagefolder

    root = tmp_path / "data"
    make_imagefolder(root / "cifar10_jpeg")                     # 10 classes × 2 test images
    seen = []

    def capture(model, data, **kwargs):
        seen.append(collect(data))
        raise RuntimeError("captured")

    monkeypatch.setattr("rkhsreg.evaluation.sweep.evaluate_robustness", capture)
    torch.save(tiny_cnn(num_classes=10).state_dict(), tmp_path / "w.pt")
    code, _, err = _run(capsys, "--model", TINY, "--model-kwargs", '{"num_classes": 10}', "--weights",
                        str(tmp_path / "w.pt"), "--data", "cifar10", "--data-dir", str(root), "--epsilons", "0.5",
                        "--no-progress", *cli)
    assert code == 1 and "captured" in err
    x, y = load_cifar10(root, **python)
    torch.testing.assert_close(seen[0][0], x, rtol=0, atol=0)
    assert seen[0][1].tolist() == y.tolist()


def test_a_folder_whose_classes_are_not_the_models_outputs_is_refused(capsys, tmp_path, weights):
    """An ImageFolder root holding train/ and test/ reads as two classes: the labels would index the wrong outputs
    and every accuracy would be wrong, silently. Refused before any attack, naming both counts."""
    write_image_folder(tmp_path / "root" / "train")
    write_image_folder(tmp_path / "root" / "test")
    code, out, err = _run(capsys, "--model", TINY, "--weights", str(weights), "--data",
                          f"imagefolder:{tmp_path / 'root'}", "--epsilons", "0.5", "--no-progress")
    assert code == 2 and out == ""
    _one_line_error(err, "has 2 classes (test, train), the model outputs 4 scores")
    code, _, _ = _run(capsys, "--model", TINY, "--weights", str(weights), "--data",
                      f"imagefolder:{tmp_path / 'root' / 'test'}", "--epsilons", "0.5", "--steps", "2",
                      "--no-progress", "--no-sanity")
    assert code == 0
