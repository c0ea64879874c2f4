"""What the documentation's code blocks run with under ``make test`` (pytest-markdown-docs, ``--markdown-docs``).

Every ```python block of README.md and docs/ is a test. A block that says "your model", "your data" uses these
names, injected small so the whole page runs in seconds: ``model`` (the paper's MNIST net at 4 channels),
``x``/``y`` (16 MNIST test digits from ``$RKHSREG_DATA``; random digits if MNIST is absent), ``loader`` (a
DataLoader over them, batches of 8), ``optimizer`` (SGD on ``model``), ``x_probe``/``y_probe`` (8 of them) and
``train_loader`` (8 random CIFAR-size images in batches of 4, for the timm examples). Each page runs in its own
temporary working directory, shared by its blocks in page order (a block may read what an earlier one wrote).
Blocks marked ``{.python notest}`` need hardware a test machine lacks (several GPUs, a process group).
A block followed by an ``<!-- output -->`` comment and a fenced block must print that block
(``tests/docs_outputs.py``: same text, numbers within the tolerance the comment allows).

pytest-markdown-docs switches pytest's output capture off while a block runs; here it stays on, as for any
other test, so a page's prints and Lightning's progress bars appear in the report of a failing block only
(``-s`` shows them as they come).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

import pytest

# the MkDocs extension is not documentation to run (and needs the docs extra, griffe)
collect_ignore = ["docs/_ext"]

_SHARED = Path(__file__).resolve().parent.parent / "shared" / "data"
if "RKHSREG_DATA" not in os.environ and (_SHARED / "MNIST").is_dir():
    os.environ["RKHSREG_DATA"] = str(_SHARED)   # as the Makefile does


def _digits(n: int):
    import torch
    try:
        from rkhsreg.data import load_mnist
        x, y = load_mnist(None, train=False, download=False)
        return x[:n], y[:n]
    except Exception:  # noqa: BLE001 - no MNIST here: the blocks only need digit-shaped tensors
        g = torch.Generator().manual_seed(0)
        return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def pytest_markdown_docs_globals() -> dict:
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from rkhsreg.models import mnist_vgg5

    torch.manual_seed(0)
    model = mnist_vgg5(width=4)
    x, y = _digits(16)
    loader = DataLoader(TensorDataset(x, y), batch_size=8)
    g = torch.Generator().manual_seed(0)
    cifar = TensorDataset(torch.rand(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g))
    return {"model": model, "x": x, "y": y, "loader": loader, "optimizer": torch.optim.SGD(model.parameters(), lr=0.05),
            "x_probe": x[:8], "y_probe": y[:8], "train_loader": DataLoader(cifar, batch_size=4),
            "print": _recording_print}


_PAGE_DIRS: dict[str, Path] = {}
_PRINTED: list[str] = []   # what the running block printed (pytest-markdown-docs turns pytest's capture off)


def _recording_print(*args, sep=" ", end="\n", file=None, flush=False):
    """``print`` for the blocks: prints as usual and records what went to stdout."""
    import builtins
    import sys

    builtins.print(*args, sep=sep, end=end, file=file, flush=flush)
    if file is None or file is sys.stdout:
        _PRINTED.append(sep.join(str(a) for a in args) + end)


@pytest.fixture(autouse=True)
def _docs_page_directory(request, tmp_path_factory, monkeypatch):
    """A documentation block runs in its page's own temporary directory, and what it prints is compared with
    the output the page shows for it, if any; other tests are untouched."""
    path = Path(str(getattr(request.node, "path", "")))
    if path.suffix != ".md":
        yield
        return
    from tests.docs_outputs import compare_output, expected_output

    capture = request.config.pluginmanager.getplugin("capturemanager")
    if capture is not None:  # keep capturing what the block prints (the plugin would suspend it)
        monkeypatch.setattr(capture, "global_and_fixture_disabled", contextlib.nullcontext)
    key = str(path)
    if key not in _PAGE_DIRS:
        _PAGE_DIRS[key] = tmp_path_factory.mktemp(path.stem)
    monkeypatch.chdir(_PAGE_DIRS[key])
    line = re.search(r"\[line:(\d+)\]", request.node.name)
    expected = None if line is None else expected_output(path, int(line.group(1)))
    _PRINTED.clear()
    import torch

    threads = torch.get_num_threads()  # a page may set its own (torch.set_num_threads(1)): not for later tests
    yield
    torch.set_num_threads(threads)
    if expected is not None:
        printed = "".join(_PRINTED)
        problem = compare_output(expected, printed)
        if problem is not None:
            pytest.fail(f"{path.name}: {problem}", pytrace=False)
