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


def test_negative_borderline_restarts_are_refused_naming_the_flag(capsys, setup):
    _, weights, base = setup
    with pytest.raises(SystemExit) as stop:                 # argparse refuses it before anything loads
        main([*base, "--weights", str(weights), "--borderline-restarts", "-1"])
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code == 2 and "--borderline-restarts" in line and "'-1' must be >= 0" in line


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
