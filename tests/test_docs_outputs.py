"""The check of the outputs the documentation shows (``tests/docs_outputs.py``, run by ``conftest.py``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs_outputs import _fences, compare_output, expected_output

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]

PAGE = """# A page

```python
print("clean accuracy 79.50%")
print([1, 2.5])
```

Printed:

<!-- output: atol=2 -->
```text
clean accuracy 79.50%
[1, 2.5]
```

```python
x = 1
```

```text
not an output
```
"""


@pytest.fixture
def page(tmp_path: Path) -> Path:
    path = tmp_path / "page.md"
    path.write_text(PAGE)
    return path


def test_the_marked_block_is_the_output_of_the_python_block_above(page: Path) -> None:
    spec = expected_output(page, 3)
    assert spec is not None and spec.text == "clean accuracy 79.50%\n[1, 2.5]" and spec.atol == 2.0
    assert expected_output(page, 17) is None       # a text block without the marker is not an output


def test_a_number_changed_beyond_the_tolerance_fails(page: Path) -> None:
    spec = expected_output(page, 3)
    assert compare_output(spec, "clean accuracy 79.50%\n[1, 2.5]\n") is None
    assert compare_output(spec, "clean accuracy 81.00%\n[1, 2.5]\n") is None       # within atol=2
    problem = compare_output(spec, "clean accuracy 82.00%\n[1, 2.5]\n")
    assert problem is not None and "82.00" in problem and "79.50" in problem


def test_exact_numbers_without_a_tolerance_and_text_compared_exactly(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text(PAGE.replace("<!-- output: atol=2 -->", "<!-- output -->"))
    spec = expected_output(path, 3)
    assert compare_output(spec, "clean accuracy 79.51%\n[1, 2.5]\n") is not None
    assert compare_output(spec, "robust accuracy 79.50%\n[1, 2.5]\n") is not None
    assert compare_output(spec, "clean accuracy 79.50%\n[1, 2.5]\nmore\n") is not None
    assert compare_output(spec, "clean accuracy 79.50%\n") is not None
    assert compare_output(spec, "clean accuracy nan%\n[1, 2.5]\n") is not None


def test_lines_some_machines_print_can_be_left_out(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text(PAGE.replace("<!-- output: atol=2 -->", "<!-- output: skip=warning: -->"))
    spec = expected_output(path, 3)
    assert spec.skip == ("warning:",)
    printed = "clean accuracy 79.50%\nwarning: APGD-CE missed 7.2%\n[1, 2.5]\n"
    assert compare_output(spec, printed) is None
    assert compare_output(spec, printed.replace("warning:", "note:")) is not None


def test_an_unknown_option_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text(PAGE.replace("atol=2", "tol=2"))
    with pytest.raises(ValueError, match="tol=2"):
        expected_output(path, 3)


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_output_marker_follows_a_python_block_that_runs(path: Path) -> None:
    """A marker after a bash block (or a notest block) would show an output nothing checks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    fences = _fences(lines)
    for i, line in enumerate(lines, 1):
        if not re.match(r"^<!--\s*output\b", line.strip()):
            continue
        before = [f for f in fences if f[1] < i]
        assert before, f"{path.name}:{i}: an output marker with no code block above it"
        start, _, info = before[-1]
        assert info == "python", (f"{path.name}:{i}: the output marker follows a ```{info} block; only a "
                                  "```python block that runs under make test can have a checked output")
        assert expected_output(path, start) is not None


QUIET_PAGE = """# A page that prints and trains

```python
print("printed by the first block")
```

<!-- output -->
```text
printed by the first block
```

```python
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

class Net(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(2, 2)
    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self.layer(batch[0]), batch[1])
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

data = DataLoader(TensorDataset(torch.rand(8, 2), torch.randint(0, 2, (8,))), batch_size=4)
pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False).fit(Net(), data)
print("trained")
```
"""


def test_a_passing_page_prints_pytests_report_only(tmp_path: Path) -> None:
    """The blocks' prints and Lightning's progress bar are captured like any test's output; the output check
    still sees the prints, and a failing block shows them in its report."""
    pytest.importorskip("pytorch_lightning")
    import os
    import subprocess
    import sys

    page = tmp_path / "page.md"
    page.write_text(QUIET_PAGE, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest", "--markdown-docs",
               "-W", "ignore", str(page)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output
    assert "2 passed" in output
    for noise in ("printed by the first block", "trained", "Epoch 0", "it/s]"):
        assert noise not in output, f"{noise!r} reached the terminal:\n{output}"
    page.write_text(QUIET_PAGE.split("```python\nimport pytorch_lightning")[0].replace(
        "<!-- output -->\n```text\nprinted by the first block", "<!-- output -->\n```text\nsomething else"),
        encoding="utf-8")
    run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    output = run.stdout + run.stderr
    assert run.returncode == 1 and "1 error" in output, output
    assert "--- printed\nprinted by the first block" in output  # the output check still compares what was printed
    assert "Captured stdout call" in output  # and the report of the failing block shows it
