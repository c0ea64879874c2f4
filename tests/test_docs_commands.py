"""The shell commands of the tutorial run as written (flags, paths and output files), on a stand-in checkpoint.

The python blocks of every page run under ``make test`` (pytest-markdown-docs, ``conftest.py``); a shell block
is not Python, so the tutorial's ``rkhsreg evaluate`` command is taken from the page here and run through the
installed console script, in a folder holding a checkpoint of the shape step 1 writes (an untrained network:
the numbers are step 3's business; this checks that the command a reader copies works and writes what the
page says).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_outputs import _fences

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "howto" / "evaluate-checkpoint.md"

pytest.importorskip("torchvision")
pytest.importorskip("pytorch_lightning")


def _bash_blocks(page: Path) -> list[str]:
    lines = page.read_text(encoding="utf-8").splitlines()
    return ["\n".join(lines[start:end - 1]) for start, end, info in _fences(lines) if info == "bash"]


def _mnist_root() -> str:
    root = os.environ.get("RKHSREG_DATA")
    if not root or not (Path(root) / "MNIST").is_dir():
        pytest.skip("MNIST is not available offline ($RKHSREG_DATA)")
    return root


@pytest.mark.slow
def test_the_tutorials_evaluate_command_runs_as_written(tmp_path: Path) -> None:
    import torch

    from rkhsreg.lightning import RegularizedClassifier
    from rkhsreg.models import mnist_vgg5

    command = _bash_blocks(TUTORIAL)[0]
    assert command.startswith("rkhsreg evaluate") and "runs/vgg8.ckpt" in command and "--out results/vgg8" in command
    torch.manual_seed(0)
    clf = RegularizedClassifier(mnist_vgg5(width=8), num_classes=10)
    (tmp_path / "runs").mkdir()
    torch.save({"state_dict": clf.state_dict()}, tmp_path / "runs" / "vgg8.ckpt")
    script = shutil.which("rkhsreg", path=str(Path(sys.executable).parent)) or shutil.which("rkhsreg")
    if script is None:
        pytest.skip("the rkhsreg console script is not installed (pip install -e .)")
    path = f"{Path(script).parent}{os.pathsep}{os.environ['PATH']}"
    env = {**os.environ, "RKHSREG_DATA": _mnist_root(), "PATH": path}
    proc = subprocess.run(["bash", "-c", command + " --no-progress"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].startswith("l2 threat model, n = 200, clean accuracy ")
    assert [line.split()[0] for line in out[2:6]] == ["0.5", "1", "1.5", "2"]
    assert out[-1] == "wrote results/vgg8.json, results/vgg8.csv, results/vgg8.png"
    assert all((tmp_path / "results" / f"vgg8.{ext}").is_file() for ext in ("json", "csv", "png"))
