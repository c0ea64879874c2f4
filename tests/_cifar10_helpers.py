"""A tiny synthetic CIFAR-10 ImageFolder (JPEG files) for fast tests: train/<class>/*.jpg, test/<class>/*.jpg."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def make_imagefolder(root: Path, train_per_class: int = 3, test_per_class: int = 2, classes=CLASSES,
                     seed: int = 0) -> Path:
    """Write 32×32 RGB JPEGs whose mean colour depends on the class (so a model can learn something)."""
    from PIL import Image

    rng = np.random.RandomState(seed)
    for split, count in (("train", train_per_class), ("test", test_per_class)):
        for k, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                base = np.array([25 * k, 255 - 25 * k, 128], dtype=np.float64)
                pixels = np.clip(base + rng.normal(0, 30, size=(32, 32, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(pixels).save(folder / f"{i:04d}.jpg", quality=95)
    return root


def make_archive(tree: Path, archive: Path) -> Path:
    """A .tar.gz of ``tree``'s train/ and test/ folders at the archive's top level (like the offline copy)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            tar.add(tree / split, arcname=split)
    return archive
