"""Data sets of the paper's experiments.

Plain PyTorch only (split indices, data-root resolution, tensor loading, datasets): nothing here imports
Lightning. The LightningDataModules built on them are :class:`rkhsreg.lightning.MNISTSubset` and
:class:`rkhsreg.lightning.CIFAR10Data`.

Example:
    >>> from rkhsreg.data import subset_indices
    >>> train, val = subset_indices(300, seed=0)
"""

from __future__ import annotations

from typing import Any

from rkhsreg.data.examples import select_indices
from rkhsreg.data.root import ENV_VAR, DatasetNotFoundError, load_mnist, mnist_files_present, resolve_data_root
from rkhsreg.data.splits import MNIST_TRAIN_SIZE, VALIDATION_SIZE, check_subset_size, subset_indices

# Protein sequences (FASTA, one-hot, SCOP 1.67, offline stand-in tasks, BLOSUM62 augmentation), loaded on first use.
_PROTEIN = {
    "FastaRecord": "fasta", "AstralHeader": "fasta", "read_fasta": "fasta", "write_fasta": "fasta",
    "parse_fasta": "fasta", "parse_astral_header": "fasta",
    "AMINO_ACIDS": "protein", "SequenceTask": "protein", "sequence_indices": "protein",
    "one_hot_indices": "protein", "encode_sequences": "protein",
    "list_scop_tasks": "scop", "load_scop_task": "scop", "download_scop167": "scop", "SCOP167_URL": "scop",
    "build_standin_tasks": "protein_tasks", "STANDIN_DATASETS": "protein_tasks",
    "BlosumSubstitution": "substitutions",
}
# CIFAR-10 (ImageFolder JPEG copy extracted once into a cache, or torchvision's layout), loaded on first use.
_CIFAR10 = {
    "CIFAR10_CLASSES": "cifar10_files",
    "CIFAR10_MEAN": "cifar10_files", "CIFAR10_STD": "cifar10_files", "find_cifar10": "cifar10_files",
    "extract_once": "cifar10_files", "cifar10_datasets": "cifar10_files", "load_cifar10_tensors": "cifar10_files",
    "load_cifar10": "cifar10_examples", "cifar10_split": "cifar10_examples",
}

__all__ = ["DatasetNotFoundError", "ENV_VAR", "MNIST_TRAIN_SIZE", "VALIDATION_SIZE",
           "check_subset_size", "load_mnist", "mnist_files_present", "resolve_data_root", "select_indices",
           "subset_indices",
           *_PROTEIN, *_CIFAR10]


def __getattr__(name: str) -> Any:
    if name in _PROTEIN:
        import importlib
        return getattr(importlib.import_module(f"rkhsreg.data.{_PROTEIN[name]}"), name)
    if name in _CIFAR10:
        import importlib
        return getattr(importlib.import_module(f"rkhsreg.data.{_CIFAR10[name]}"), name)
    raise AttributeError(f"module 'rkhsreg.data' has no attribute {name!r}")
