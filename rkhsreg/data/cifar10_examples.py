"""CIFAR-10 examples as tensors, chosen and read exactly as ``rkhsreg evaluate --data cifar10`` reads them.

The offline JPEG copy (an ImageFolder tree, or its archive extracted once into the cache, see
:func:`rkhsreg.data.find_cifar10`), ``ToTensor()`` pixels in [0, 1] with no normalisation (it belongs inside
the model, so ε is in pixel units), and the examples picked by :func:`rkhsreg.data.examples.select_indices`.

Example:
    >>> from rkhsreg.data import load_cifar10
    >>> x, y = load_cifar10(None, split="test", n_examples=1000, seed=0)  # doctest: +SKIP
    >>> x.shape, y.shape                                                   # doctest: +SKIP
    (torch.Size([1000, 3, 32, 32]), torch.Size([1000]))
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch

from rkhsreg._params import PATH, Options, validates
from rkhsreg.data.examples import SELECT_PARAMETERS, select_indices

__all__ = ["cifar10_split", "load_cifar10"]


#: ``split`` of the CIFAR-10 readers.
SPLIT = Options(("test", "train"))


@validates({"data_dir": [None, PATH], "split": SPLIT, "cache_dir": [None, PATH]})
def cifar10_split(data_dir: str | os.PathLike[str] | None = None, *, split: str = "test",
                  cache_dir: str | os.PathLike[str] | None = None) -> Any:
    """One split of the CIFAR-10 JPEG copy as an ImageFolder dataset of ``(image in [0, 1], label)`` pairs.

    Raises:
        DatasetNotFoundError: no CIFAR-10 JPEG copy under the data root (the message says where it looked).
        InputError: the split's folder holds no images, or its class folders are not CIFAR-10's ten (the missing
            and extra ones are named); when read, an image that is not a readable 32×32 image (named).
    """
    try:
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise ImportError("reading CIFAR-10 needs torchvision: pip install 'rkhsreg[data]'.") from exc
    from rkhsreg.data.cifar10_files import cifar10_imagefolder, find_cifar10

    return cifar10_imagefolder(find_cifar10(data_dir, cache_dir=cache_dir, source="imagefolder").path / split)


@validates({"data_dir": [None, PATH], "split": SPLIT, "cache_dir": [None, PATH],
            **{name: SELECT_PARAMETERS[name] for name in ("n_examples", "first_n", "indices", "seed")}})
def load_cifar10(data_dir: str | os.PathLike[str] | None = None, *, split: str = "test",
                 n_examples: int | None = None, first_n: int | None = None, indices: Sequence[int] | None = None,
                 seed: int = 0, cache_dir: str | os.PathLike[str] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 images (N, 3, 32, 32) in [0, 1] and int64 labels, the examples ``rkhsreg evaluate`` evaluates.

    ``load_cifar10(root, n_examples=1000, seed=s)`` returns the examples of ``rkhsreg evaluate --data cifar10
    --data-dir root --n-examples 1000 --subset-seed s`` (the command's default is ``--n-examples 1000`` with
    seed 0); ``first_n=`` and ``indices=`` those of ``--first-n`` and ``--indices``. Labels are the classes in
    CIFAR-10's order (airplane = 0 … truck = 9).

    Args:
        data_dir: the data root (default ``$RKHSREG_DATA``, else ``./data``); it holds ``cifar10_jpeg/``.
        split: ``"test"`` or ``"train"``.
        n_examples: a seeded subset of that many examples (default: the whole split, in order).
        first_n: the split's first ``first_n`` examples instead.
        indices: exactly these examples, in this order.
        seed: the seed of the ``n_examples`` subset.
        cache_dir: where the archive is extracted (default: the shared cache, see
            :func:`rkhsreg.data.find_cifar10`).

    Raises:
        ConfigurationError: a bad argument (named), e.g. both ``first_n`` and ``indices``, or an index out of range.
        DatasetNotFoundError: no CIFAR-10 JPEG copy under the data root.
    """
    dataset = cifar10_split(data_dir, split=split, cache_dir=cache_dir)
    chosen = select_indices(len(dataset), n_examples=n_examples, first_n=first_n, indices=indices, seed=seed)
    pairs = [dataset[i] for i in chosen]
    return torch.stack([p[0] for p in pairs]), torch.tensor([int(p[1]) for p in pairs], dtype=torch.long)
