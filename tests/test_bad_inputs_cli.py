"""Bad inputs that reach the CLI and the results files: exit 2 with one line, nothing lost or overwritten."""

from __future__ import annotations

import os
import struct
import warnings
import zipfile
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchattacks")
pytest.importorskip("torchvision")

from recipes._common.results import append_line, read_runs  # noqa: E402
from rkhsreg.cli import main  # noqa: E402
from rkhsreg.evaluation import evaluate_robustness  # noqa: E402
from rkhsreg.evaluation.result import atomic_write  # noqa: E402
from rkhsreg.evaluation.settings import AttackSettings  # noqa: E402
from tests._evaluation_helpers import tiny_cnn, write_image_folder  # noqa: E402

TINY = "tests._evaluation_helpers:tiny_cnn"


@pytest.fixture
def setup(tmp_path):
    write_image_folder(tmp_path / "images")
    weights = tmp_path / "w.pt"
    torch.save(tiny_cnn().state_dict(), weights)
    base = ["evaluate", "--model", TINY, "--data", f"imagefolder:{tmp_path / 'images'}", "--epsilons", "0.5",
            "--steps", "2", "--n-examples", "4", "--no-progress", "--no-sanity", "--attacks", "apgd-ce"]
    return tmp_path, weights, base


def _error(capsys, argv: list[str]) -> str:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_flipped_bit_in_a_checkpoint_is_refused(capsys, setup):
    tmp_path, weights, base = setup
    data = bytearray(weights.read_bytes())
    with zipfile.ZipFile(weights) as archive:  # one bit inside the largest tensor's bytes
        entry = max(archive.infolist(), key=lambda info: info.file_size)
    name_len, extra_len = struct.unpack("<HH", data[entry.header_offset + 26:entry.header_offset + 30])
    start = entry.header_offset + 30 + name_len + extra_len
    data[start + entry.file_size // 2] ^= 0x04
    bad = tmp_path / "bad.pt"
    bad.write_bytes(bytes(data))
    line = _error(capsys, [*base, "--weights", str(bad)])
    assert "bad.pt" in line and "CRC-32" in line


@pytest.mark.parametrize("content, match", [
    (b"not a torch file\n", "is not a torch checkpoint (a text file? It starts with text 'not a torch file"),
    (b"<!DOCTYPE html><html>", "is not a torch checkpoint: it is an HTML page"),
    (b"", "is not a torch checkpoint: it is empty (0 bytes)"),
    (b"\x00\x01\x02", "is not a torch checkpoint (it starts with the bytes 00 01 02)"),
    (b"\x80\x02garbage", "is not a readable torch checkpoint (UnpicklingError)"),
], ids=["text", "html", "empty", "binary", "bad-pickle"])
def test_a_file_that_is_not_a_checkpoint_is_named_without_torchs_unpickling_advice(capsys, setup, content, match):
    """A text file passed as --weights relayed torch's "Re-running torch.load with weights_only set to False will
    likely succeed", which would not succeed and contradicts the CLI's no-unpickling policy."""
    tmp_path, _, base = setup
    (tmp_path / "text.pt").write_bytes(content)
    line = _error(capsys, [*base, "--weights", str(tmp_path / "text.pt")])
    assert match in line and "text.pt" in line and "weights_only" not in line


def test_an_unwritable_out_fails_before_the_evaluation(capsys, setup, monkeypatch):
    tmp_path, weights, base = setup
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    called = []
    monkeypatch.setattr("rkhsreg.evaluation.sweep.evaluate_robustness", lambda *a, **k: called.append(1))
    line = _error(capsys, [*base, "--weights", str(weights), "--out", str(blocker / "eval")])
    assert "--out" in line and "cannot write" in line and not called


def test_existing_results_are_not_overwritten_without_asking(capsys, setup):
    tmp_path, weights, base = setup
    out = str(tmp_path / "run_eps0.5")
    assert main([*base, "--weights", str(weights), "--out", out, "--no-plot"]) == 0
    capsys.readouterr()
    assert sorted(p.name for p in tmp_path.glob("run_eps0.5*")) == ["run_eps0.5.csv", "run_eps0.5.json"]
    line = _error(capsys, [*base, "--weights", str(weights), "--out", out, "--no-plot"])
    assert "run_eps0.5.json" in line and "--overwrite" in line
    assert main([*base, "--weights", str(weights), "--out", out, "--no-plot", "--overwrite"]) == 0


def test_out_without_matplotlib_writes_json_and_csv(capsys, setup, monkeypatch):
    import sys
    tmp_path, weights, base = setup
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main([*base, "--weights", str(weights), "--out", str(tmp_path / "r")]) == 0
    assert "matplotlib is not installed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.glob("r.*")) == ["r.csv", "r.json"]


def test_model_kwargs_that_are_not_an_object(capsys, setup):
    _, weights, base = setup
    line = _error(capsys, [*base, "--weights", str(weights), "--model-kwargs", "[8]"])
    assert "model_kwargs=[8]" in line and "JSON object" in line


@pytest.mark.parametrize("kwargs, match", [
    ('{"width": "4"}', ("raised TypeError: not all arguments converted",
                        "width='4' is a JSON string, but the factory's width defaults to 64 (a number)",
                        """e.g. --model-kwargs '{"width": 4}'""")),
    ('{"width": 2.5}', ("raised ValueError: out_channels must be divisible by groups",
                        "Check the keys and values of --model-kwargs against that signature")),
    ('{"width": -2}', ("raised RuntimeError: Trying to create tensor with negative dimension -2",
                       "Check the keys and values of --model-kwargs against that signature")),
], ids=["string-for-int", "value-error", "runtime-error"])
def test_model_kwargs_the_factory_refuses_name_the_option_the_key_and_the_signature(capsys, setup, kwargs, match):
    """The factory's own TypeError/ValueError (from deep inside it) was the message, or a traceback."""
    _, _, base = setup
    line = _error(capsys, [*base[:2], "rkhsreg.models:mnist_vgg5", *base[3:], "--random-init",
                           "--model-kwargs", kwargs])
    assert f"--model-kwargs {kwargs}: model='rkhsreg.models:mnist_vgg5' could not be built; " in line
    assert "mnist_vgg5(num_classes: int = 10, in_chans: int = 1, width: int = 64," in line
    assert all(part in line for part in match), line


def test_negative_borderline_restarts_are_refused_naming_the_flag(capsys, setup):
    _, weights, base = setup
    with pytest.raises(SystemExit) as stop:                 # argparse refuses it before anything loads
        main([*base, "--weights", str(weights), "--borderline-restarts", "-1"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "--borderline-restarts=-1 is out of range; it must be >= 0" in line


@pytest.mark.parametrize("prefix, names", [
    ("run_eps0.5", ["run_eps0.5.csv", "run_eps0.5.json"]),
    ("run_eps1.5", ["run_eps1.5.csv", "run_eps1.5.json"]),
    ("run.json", ["run.csv", "run.json"]),
])
def test_save_appends_suffixes_to_the_whole_prefix(tmp_path, prefix, names):
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
    result = evaluate_robustness(tiny_cnn().eval(), (x, y), epsilons=[0.1], attack=AttackSettings(steps=1),
                                 sanity=False)
    paths = result.save(tmp_path / prefix, plot=False)
    assert sorted(p.name for p in paths.values()) == names
    assert all(p.exists() for p in paths.values())


def test_an_interrupted_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "results.json"
    target.write_text("old\n")

    def interrupted(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, "new\n")
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.parametrize("torn", ["wd,300,0,91.2,2026-12-0", "wd,300,1,9"])
def test_a_torn_last_line_is_cut_and_never_merged_or_read(tmp_path, torn):
    path = Path(tmp_path / "runs.csv")
    columns = ["row", "n", "seed", "test_acc", "finished_at"]
    append_line(path, {"row": "wd", "n": 300, "seed": 0, "test_acc": 90.1, "finished_at": "2026-12-06"}, columns)
    with open(path, "a", encoding="utf-8") as f:
        f.write(torn)  # a writer killed midway: no final newline
    assert [r["seed"] for r in read_runs(path)] == ["0"]  # the torn line is not a finished run
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        append_line(path, {"row": "wd", "n": 300, "seed": 2, "test_acc": 92.0, "finished_at": "2026-12-07"}, columns)
    assert any("torn last line" in str(w.message) for w in caught)
    rows = read_runs(path)
    assert [(r["seed"], r["test_acc"]) for r in rows] == [("0", "90.1"), ("2", "92.0")]
    assert path.read_text().count("\n") == 3


# ------------------------------------------------------------------ checkpoints: no tensor dropped or missed silently
def _evaluate_not_called(monkeypatch) -> list:
    called: list = []
    monkeypatch.setattr("rkhsreg.evaluation.sweep.evaluate_robustness", lambda *a, **k: called.append(1))
    return called


def _ckpt(path: Path, state: dict) -> Path:
    torch.save({"state_dict": state, "epoch": 3}, path)
    return path


def test_a_checkpoint_with_tensors_the_model_does_not_load_is_refused(capsys, setup):
    """A LightningModule's net holding normalisation buffers next to the network: evaluating the bare network
    would drop them and give other numbers."""
    import json

    from tests._evaluation_helpers import normalized_tiny_cnn

    tmp_path, _, base = setup
    ckpt = _ckpt(tmp_path / "norm.ckpt", {f"net.{k}": v for k, v in normalized_tiny_cnn().state_dict().items()})
    line = _error(capsys, [*base, "--checkpoint", str(ckpt)])
    assert "holds 2 tensors the model does not load ('net.mean', 'net.std')" in line
    assert "--non-strict" in line and "norm.ckpt" in line
    out = tmp_path / "r"
    assert main([*base, "--checkpoint", str(ckpt), "--non-strict", "--out", str(out), "--no-plot"]) == 0
    err = capsys.readouterr().err
    assert "2 tensors of the file not loaded (net.mean, net.std), 0 of the model's" in err
    assert json.loads(out.with_suffix(".json").read_text())["run"]["weights"] == {
        "prefix": "net.model.", "not_loaded": ["net.mean", "net.std"], "not_found": []}
    right = [*base[:2], "tests._evaluation_helpers:normalized_tiny_cnn", *base[3:]]   # the factory that holds them
    assert main([*right, "--checkpoint", str(ckpt)]) == 0


def test_a_checkpoint_missing_some_of_the_models_tensors_is_refused(capsys, setup):
    tmp_path, _, base = setup
    state = {f"model.{k}": v for k, v in tiny_cnn().state_dict().items() if k != "4.bias"}
    line = _error(capsys, [*base, "--checkpoint", str(_ckpt(tmp_path / "part.ckpt", state))])
    assert "1 of its 4 tensors are not in the file ('4.bias', looked up under prefix 'model.')" in line
    assert "--non-strict" in line
    assert main([*base, "--checkpoint", str(tmp_path / "part.ckpt"), "--non-strict"]) == 0
    assert "1 of the model's left at their initial values (4.bias)" in capsys.readouterr().err


def test_a_wrong_architecture_names_the_files_and_the_models_prefixes(capsys, setup):
    tmp_path, _, base = setup
    state = {"net.stem.weight": torch.zeros(8, 1, 3, 3), "net.blocks.0.conv.weight": torch.zeros(8, 8, 3, 3),
             "net.classifier.weight": torch.zeros(10, 8)}
    line = _error(capsys, [*base, "--checkpoint", str(_ckpt(tmp_path / "other.ckpt", state))])
    assert "none of the model's tensors is in the file" in line
    assert "The file holds 3 tensors under 'net.': 'stem.', 'blocks.', 'classifier.'" in line
    assert "the model expects 4 tensors: '0.', '4.'" in line
    line = _error(capsys, [*base, "--weights", str(tmp_path / "other.ckpt"), "--non-strict"])
    assert "none of the model's tensors is in the file" in line        # nothing to load: refused even so
    # names that happen to end like the model's ('features.0.weight'): the prefixes are named all the same
    state = {"net.features.0.weight": torch.zeros(8, 1, 3, 3), "net.features.3.weight": torch.zeros(8, 8, 3, 3),
             "net.classifier.weight": torch.zeros(10, 8)}
    line = _error(capsys, [*base, "--checkpoint", str(_ckpt(tmp_path / "vgg.ckpt", state)), "--non-strict"])
    assert "3 of its 4 tensors are not in the file" in line and "'net.features.0.weight' is (8, 1, 3, 3)" in line
    assert "The file holds 3 tensors under 'net.': 'features.', 'classifier.'" in line


def test_a_checkpoint_of_another_width_names_the_tensor_and_both_shapes(capsys, setup):
    tmp_path, _, base = setup
    torch.save(tiny_cnn(num_classes=10).state_dict(), tmp_path / "ten.pt")
    line = _error(capsys, [*base, "--weights", str(tmp_path / "ten.pt")])
    assert "'4.weight' is (10, 16) in the file, '4.weight' is (4, 16) in the model" in line


def test_several_complete_models_in_one_file_are_listed(capsys, setup):
    tmp_path, _, base = setup
    state = {f"{p}{k}": v for p in ("model.", "ema.") for k, v in tiny_cnn().state_dict().items()}
    ckpt = _ckpt(tmp_path / "ema.ckpt", state)
    line = _error(capsys, [*base, "--checkpoint", str(ckpt)])
    assert "holds 2 complete copies of the model, under prefixes 'model.', 'ema.'" in line and "--prefix" in line
    assert main([*base, "--checkpoint", str(ckpt), "--prefix", "ema."]) == 0
    line = _error(capsys, [*base, "--checkpoint", str(ckpt), "--prefix", "swa."])
    assert "holds no tensor under prefix 'swa.'" in line


# ------------------------------------------------------------------------- options refused before any work
@pytest.mark.parametrize("extra, match", [
    ([], "needs its trained tensors: pass --weights (a state-dict file) or --checkpoint"),
    (["--weights", "{w}", "--random-init"], "--random-init and --weights contradict each other"),
    (["--random-init", "--non-strict"], "--non-strict applies to a weights file"),
    (["--random-init", "--prefix", "net."], "--prefix applies to a weights file"),
    (["--weights", "{w}", "--num-classes", "10"], "--num-classes 10 has no effect on --model "
                                                  "tests._evaluation_helpers:tiny_cnn (only timm: models take it)"),
    (["--weights", "{w}", "--first-n", "3", "--subset-seed", "7"],
     "--subset-seed 7 has no effect with --first-n (it seeds the subset --n-examples draws)"),
    (["--weights", "{w}", "--indices", "0,1", "--subset-seed", "7"], "--subset-seed 7 has no effect with --indices"),
    (["--weights", "{w}", "--out", ""], "--out '' names no file"),
    (["--weights", "{w}", "--out", " "], "--out ' ' names no file"),
    (["--weights", "{w}", "--out", "{folder}"], "is a folder; pass a file prefix inside it"),
    (["--weights", "{w}", "--out", "{folder}/r.json"], "r.json is a folder, where a file would be written"),
])
def test_options_that_contradict_or_do_nothing_are_refused_before_any_work(capsys, setup, monkeypatch, extra, match):
    tmp_path, weights, base = setup
    (tmp_path / "results" / "r.json").mkdir(parents=True)
    extra = [e.replace("{w}", str(weights)).replace("{folder}", str(tmp_path / "results")) for e in extra]
    called = _evaluate_not_called(monkeypatch)
    line = _error(capsys, [*base, *extra])
    assert match in line and not called


@pytest.mark.parametrize("option, value, match", [
    ("--epsilons", "0.5,,1", "--epsilons '0.5,,1' has an empty entry (between two commas)"),
    ("--indices", "1,,2", "--indices '1,,2' has an empty entry (between two commas)"),
    ("--attacks", "apgd-ce,", "--attacks 'apgd-ce,' has an empty entry (at its end)"),
    ("--bounds", ",1", "--bounds ',1' has an empty entry (at its start)"),
    ("--attacks", "default,default", "attacks=['default', 'default'] lists 'default' more than once"),
    ("--seed", "-1", "--seed=-1 is out of range; it must be >= 0"),
    ("--subset-seed", "-1", "--subset-seed=-1 is out of range; it must be >= 0"),
    ("--norm", "l1", "--norm='l1' is not allowed (allowed: one of 'l2', 'linf')"),
    ("--split", "val", "--split='val' is not allowed (allowed: one of 'test', 'train')"),
    ("--steps", "2.5", "--steps '2.5': '2.5' is not an integer (allowed: an int >= 1)"),
    ("--device", "gpu0", "--device='gpu0' is not a device"),
])
def test_comma_lists_and_declared_options_are_refused_by_the_parser(capsys, setup, option, value, match):
    """One reader for every comma-separated option (an empty entry was dropped: 0.5,,1 evaluated 0.5 and 1), and
    the API parameter's own declaration for every option that sets one (the same values accepted and refused)."""
    _, weights, base = setup
    with pytest.raises(SystemExit) as stop:
        main([*base, "--weights", str(weights), f"{option}={value}"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and match in line, line


def test_duplicate_indices_are_refused_by_the_parser(capsys, setup):
    _, weights, base = setup
    with pytest.raises(SystemExit) as stop:
        main([*base, "--weights", str(weights), "--indices", "3,1,3,2,1"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "--indices=[3, 1, 3, 2, 1] is not allowed: it lists 3, 1 more than once" in line


@pytest.mark.parametrize("model, kwargs, match", [
    ("tests._evaluation_helpers:tiny_cnn", '{"in_chans": 1}', "model takes 1 channel (its first convolution), data "
                                                              "imagefolder:"),
    ("tests._evaluation_helpers:fixed_size_net", None, "model takes 3 channels of 32×32, data imagefolder:"),
    ("rkhsreg.models:mnist_vgg5", '{"width": 2}', "model takes 1 channel of 28×28, data imagefolder:"),
])
def test_a_model_that_does_not_take_the_datas_images_names_both_shapes(capsys, setup, monkeypatch, model, kwargs,
                                                                       match):
    _, _, base = setup
    called = _evaluate_not_called(monkeypatch)
    argv = [*base[:2], model, *base[3:], "--random-init", *(["--model-kwargs", kwargs] if kwargs else [])]
    line = _error(capsys, argv)
    assert match in line and "has 3 channels of 8×8" in line and not called


# ----------------------------------------------------------------------------------- --certify: checked first
def test_certify_on_a_model_it_cannot_bound_fails_before_any_attack(capsys, setup, monkeypatch):
    tmp_path, _, base = setup
    called = _evaluate_not_called(monkeypatch)
    argv = [*base[:2], "tests._evaluation_helpers:residual_cnn", *base[3:], "--random-init", "--certify"]
    line = _error(capsys, argv)
    assert line.startswith("rkhsreg evaluate: error: --certify: no certified accuracy for this model")
    assert "Drop --certify" in line and "certify=False" not in line and not called


def test_evaluate_robustness_refuses_certify_before_attacking(monkeypatch):
    from rkhsreg._errors import InputError
    from tests._evaluation_helpers import residual_cnn

    attacked = []
    monkeypatch.setattr("rkhsreg.evaluation.sweep._Sweep.stage", lambda *a, **k: attacked.append(1))
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 2, 3])
    with pytest.raises(InputError, match="no certified accuracy for this model"):
        evaluate_robustness(residual_cnn().eval(), (x, y), epsilons=[0.1], certify=True, sanity=False)
    assert not attacked


def test_a_late_certify_failure_still_writes_the_attack_curve(capsys, setup, monkeypatch):
    import json

    tmp_path, weights, base = setup

    def broken(*args, **kwargs):
        raise RuntimeError("out of memory")

    monkeypatch.setattr("rkhsreg.evaluation.certified.attach_certified", broken)
    out = tmp_path / "late"
    line = _error(capsys, [*base, "--weights", str(weights), "--certify", "--out", str(out), "--no-plot"])
    assert "--certify failed after the attacks: out of memory (the attack curve was written to --out)" in line
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["certified_acc"] is None and record["robust_acc"]["0.5"] is not None


@pytest.mark.parametrize("options, named", [(["--first-n", "4", "--n-examples", "5"], "--first-n and --n-examples"),
                                            (["--indices", "0,1", "--n-examples", "5"], "--indices and --n-examples")])
def test_two_ways_of_choosing_the_examples_are_refused(capsys, tmp_path, options, named):
    """--first-n (or --indices) with --n-examples: one of them was ignored, silently."""
    from rkhsreg.cli import main
    from tests._evaluation_helpers import write_image_folder

    write_image_folder(tmp_path / "images")
    code = main(["evaluate", "--model", "tests._evaluation_helpers:tiny_cnn", "--random-init", "--data",
                 f"imagefolder:{tmp_path / 'images'}", "--epsilons", "0.5", *options])
    assert code == 2 and f"pass one of --first-n, --indices and --n-examples, not {named}" in capsys.readouterr().err


@pytest.mark.parametrize("options, match", [
    (["--n-examples", "20"], "--n-examples 20 is more than the 12 examples of the test split of --data imagefolder:"),
    (["--first-n", "13"], "--first-n 13 is more than the 12 examples of the test split"),
])
def test_more_examples_than_the_split_holds_are_refused(capsys, tmp_path, options, match):
    """--n-examples 20000 on MNIST's 10000 test digits evaluated 10000 and said nothing."""
    write_image_folder(tmp_path / "images")       # 4 classes × 3 images
    argv = ["evaluate", "--model", TINY, "--random-init", "--data", f"imagefolder:{tmp_path / 'images'}",
            "--epsilons", "0.5", "--steps", "1", "--no-progress", "--no-sanity", "--attacks", "apgd-ce"]
    assert match in _error(capsys, [*argv, *options])
    assert main(argv) == 0                         # the default (1000) takes a smaller split whole
    assert "n = 12," in capsys.readouterr().out


# ------------------------------------------------------------------------------------ result files: save and load
def _small_result():
    x, y = torch.rand(4, 3, 8, 8), torch.tensor([0, 1, 0, 1])
    return evaluate_robustness(tiny_cnn().eval(), (x, y), epsilons=[0.1, 0.3], attack=AttackSettings(steps=1),
                               sanity=False)


@pytest.mark.parametrize("prefix", ["b.jpg", "b.JPEG", "b.txt", "b.pt"])
def test_a_save_prefix_ending_in_another_file_type_is_refused(tmp_path, prefix):
    """save('b.jpg') wrote b.jpg.json, b.jpg.csv and b.jpg.png."""
    from rkhsreg import ConfigurationError

    suffix = prefix.rsplit(".", 1)[1].lower()
    with pytest.raises(ConfigurationError, match=rf"ends in \.{suffix}, a file type save does not write: it writes "
                                                 r"<prefix>\.json, <prefix>\.csv and the plot as <prefix>\.png"):
        _small_result().save(tmp_path / prefix)
    assert list(tmp_path.iterdir()) == []


def test_out_ending_in_another_file_type_is_refused_before_any_work(capsys, setup, monkeypatch):
    tmp_path, weights, base = setup
    called = _evaluate_not_called(monkeypatch)
    line = _error(capsys, [*base, "--weights", str(weights), "--out", str(tmp_path / "b.jpg")])
    assert "--out" in line and "ends in .jpg, a file type save does not write" in line and not called


@pytest.mark.parametrize("edit, key, match", [
    (lambda d: d["robust_acc"].update({k: 1.5 for k in d["robust_acc"]}), "robust_acc",
     r"robust_accuracy\[0\]=1.5 is out of range; it must be <= 1"),
    (lambda d: d.update(clean_acc=-0.2), "clean_acc", r"clean_accuracy=-0.2 is out of range; it must be >= 0"),
    (lambda d: d.update(clean_acc=float("nan")), "clean_acc", r"clean_accuracy=nan is not finite"),
    (lambda d: d.update(norm="l1"), "norm", r"norm='l1' is not allowed"),
    (lambda d: d["attack"].update(bounds=[1, 0]), "attack.bounds", r"it breaks low < high"),
    (lambda d: d.update(distances=d["distances"][:2]), "distances", r"holds 2 values where n_ex=4 numbers"),
    (lambda d: d.update(distances=[-1.0] * 4), "distances", r"distances holds 4 negative value"),
    (lambda d: d.update(n_ex=0), "n_ex", r"n_ex=0 is out of range; it must be >= 1"),
])
def test_an_edited_result_file_is_refused_naming_the_file_and_the_field(tmp_path, edit, key, match):
    """load accepted a robust accuracy of 1.5: a file is checked against the declarations a result is built with."""
    import json
    import re

    from rkhsreg import InputError
    from rkhsreg.evaluation import RobustnessResult

    path = _small_result().save(tmp_path / "r", plot=False)["json"]
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))
    with pytest.raises(InputError) as info:
        RobustnessResult.load(path)
    message = str(info.value)
    assert message.startswith(f"{str(path)!r} is not a valid robustness result: ") and key in message, message
    assert re.search(match, message), message


def test_loading_a_folder_says_it_is_one(tmp_path):
    from rkhsreg import InputError
    from rkhsreg.evaluation import RobustnessResult

    with pytest.raises(InputError, match=r"is a folder; pass the \.json file that RobustnessResult\.save wrote"):
        RobustnessResult.load(tmp_path)
