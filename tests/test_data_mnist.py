"""rkhsreg.data: the paper's MNIST splits, data-root resolution and the (∗) augmentation hook."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rkhsreg._errors import ConfigurationError
from rkhsreg.data import (DatasetNotFoundError, check_subset_size, load_mnist, mnist_files_present,
                          resolve_data_root, subset_indices)

_SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
_CANDIDATES = [p for p in (os.environ.get("RKHSREG_DATA"), "/work/shared/data", str(_SHARED)) if p]
DATA = next((p for p in _CANDIDATES if mnist_files_present(p)), None)
needs_mnist = pytest.mark.skipif(DATA is None, reason=f"MNIST idx files not found under RKHSREG_DATA or "
                                                      f"{_CANDIDATES}; set RKHSREG_DATA to a folder with MNIST/raw")


# ----------------------------------------------------------------------------- pure parts

def test_subset_indices_follow_the_paper_permutation():
    train, val = subset_indices(300, seed=2)
    perm = np.random.RandomState(44).permutation(60000)
    assert train.tolist() == perm[:300].tolist()
    assert val.tolist() == perm[-10000:].tolist()
    assert train.dtype == val.dtype == torch.int64


def test_subset_indices_reproducible_nested_and_disjoint():
    a, va = subset_indices(300, seed=0)
    b, vb = subset_indices(300, seed=0)
    assert torch.equal(a, b) and torch.equal(va, vb)
    big, vbig = subset_indices(1000, seed=0)
    assert torch.equal(big[:300], a) and torch.equal(vbig, va)   # larger n extends the smaller subset
    assert not set(big.tolist()) & set(vbig.tolist())
    other, _ = subset_indices(300, seed=1)
    assert not torch.equal(other, a)
    full, vfull = subset_indices(50000, seed=0)
    assert len(set(full.tolist()) | set(vfull.tolist())) == 60000


@pytest.mark.parametrize("n", [0, -5, 50001, 2.5, "300", True])
def test_bad_n_is_refused_with_the_allowed_range(n):
    with pytest.raises(ConfigurationError, match=r"n=.*(\[1, 50000\]|integer)"):
        subset_indices(n)
    with pytest.raises(ConfigurationError, match="n="):
        check_subset_size(n)


def test_bad_seed_is_refused():
    with pytest.raises(ConfigurationError, match="seed=-1"):
        subset_indices(300, seed=-1)


def test_data_root_resolution(monkeypatch, tmp_path):
    monkeypatch.setenv("RKHSREG_DATA", str(tmp_path))
    assert resolve_data_root("/explicit") == Path("/explicit")
    assert resolve_data_root(None) == tmp_path
    monkeypatch.delenv("RKHSREG_DATA")
    assert resolve_data_root(None) == Path("data")


def test_missing_data_without_download_names_the_fix(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="RKHSREG_DATA") as info:
        load_mnist(tmp_path, download=False)
    assert isinstance(info.value, FileNotFoundError)
    assert str(tmp_path) in str(info.value)


def test_failed_download_names_the_fix(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz")
    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DatasetNotFoundError, match="Offline.*--data-dir"):
        load_mnist(tmp_path)


def test_package_import_does_not_import_lightning():
    code = ("import sys, rkhsreg.data; from rkhsreg.data import subset_indices; "
            "bad = [m for m in sys.modules if m.startswith(('pytorch_lightning', 'lightning'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# ----------------------------------------------------------------------------- the data module

@needs_mnist
def test_loaded_mnist_shapes_and_range():
    x, y = load_mnist(DATA, train=False)
    assert x.shape == (10000, 1, 28, 28) and y.shape == (10000,)
    assert x.dtype == torch.float32 and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert load_mnist(DATA, train=False)[0] is x   # cached


@needs_mnist
def test_mnist_subset_splits_and_shapes():
    from rkhsreg.lightning import MNISTSubset

    dm = MNISTSubset(n=300, seed=0, data_dir=DATA)
    dm.setup("fit")
    dm.setup("test")
    train_idx, val_idx = subset_indices(300, 0)
    assert torch.equal(dm.train_indices, train_idx) and torch.equal(dm.val_indices, val_idx)
    images, labels = load_mnist(DATA, train=True)
    assert torch.equal(dm.train_set.tensors[0], images[train_idx])
    assert len(dm.train_set) == 300 and len(dm.val_set) == 10000 and len(dm.test_set) == 10000
    batches = list(dm.train_dataloader())
    assert [len(b[1]) for b in batches] == [128, 128, 44]
    assert batches[0][0].shape == (128, 1, 28, 28)
    x_val, _ = next(iter(dm.val_dataloader()))
    assert torch.equal(x_val, images[val_idx[:1000]])


@needs_mnist
def test_shuffling_is_seeded():
    from rkhsreg.lightning import MNISTSubset

    first = [MNISTSubset(n=300, seed=3, data_dir=DATA) for _ in range(2)]
    for dm in first:
        dm.setup("fit")
    ya = torch.cat([y for _, y in first[0].train_dataloader()])
    yb = torch.cat([y for _, y in first[1].train_dataloader()])
    assert torch.equal(ya, yb)


@needs_mnist
def test_augmentation_deforms_training_batches_only():
    from rkhsreg.lightning import MNISTSubset
    from rkhsreg.transforms import RandomDeformation

    plain = MNISTSubset(n=300, seed=0, data_dir=DATA)
    aug = MNISTSubset(n=300, seed=0, data_dir=DATA, augment=True, augment_kwargs={"max_displacement": 2.0})
    for dm in (plain, aug):
        dm.setup("fit")
        dm.setup("test")
    assert isinstance(aug.deformation, RandomDeformation) and plain.deformation is None
    xp, yp = next(iter(plain.train_dataloader()))
    xa, ya = next(iter(aug.train_dataloader()))
    assert torch.equal(yp, ya)                       # same shuffling, same examples
    assert not torch.allclose(xp, xa)                # ... but deformed
    assert 0.0 <= float(xa.min()) and float(xa.max()) <= 1.0   # clamped to the pixel range
    assert torch.equal(next(iter(plain.val_dataloader()))[0], next(iter(aug.val_dataloader()))[0])
    assert torch.equal(next(iter(plain.test_dataloader()))[0], next(iter(aug.test_dataloader()))[0])


@needs_mnist
def test_augmentation_has_its_own_seeded_generator():
    from rkhsreg.lightning import MNISTSubset

    def first_batch(**kwargs):
        dm = MNISTSubset(n=300, seed=0, data_dir=DATA, augment=True, **kwargs)
        dm.setup("fit")
        return next(iter(dm.train_dataloader()))[0]

    state = torch.get_rng_state()
    a = first_batch()
    assert torch.equal(torch.get_rng_state(), state)   # the global RNG is not used
    torch.manual_seed(123)                               # ... nor does it influence the deformations
    assert torch.equal(first_batch(), a)
    assert not torch.equal(first_batch(augment_seed=7), a)


def test_data_module_argument_errors():
    from rkhsreg.lightning import MNISTSubset

    with pytest.raises(ConfigurationError, match=r"n=0 is out of range"):
        MNISTSubset(n=0)
    with pytest.raises(ConfigurationError, match="augment=False"):
        MNISTSubset(n=300, augment_kwargs={"max_displacement": 1.0})
    with pytest.raises(ConfigurationError, match="augment_seed"):
        MNISTSubset(n=300, augment=True, augment_kwargs={"seed": 1})
    dm = MNISTSubset(n=300)
    with pytest.raises(ConfigurationError, match=r"setup\('fit'\)"):
        dm.train_dataloader()
