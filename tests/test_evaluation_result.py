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
    assert result.accuracy_at(0.3) == 0.5 and result.accuracy_at(0.2999) == 0.75
    assert result.n_examples == 4


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
    result = _result(epsilons=eps, robust_accuracy=[0.75, 0.5, 0.25, 0.75])
    record = result.to_dict()
    assert record["robust_acc"] == {"0.1234567": 0.75, "0.1234568": 0.5, "1": 0.25, "2.5e-05": 0.75}
    assert all(float(epsilon_key(e)) == e for e in eps)
