"""SCOP-like small-data tasks built from real offline protein sets (the aaanalysis TSV benchmarks).

The SCOP 1.67 archive cannot be fetched without internet access. This module builds a stand-in with
the same shape: many balanced binary tasks with ``train_size`` training sequences each (100 in the
paper) and a held-out test set, split into a tuning half and a reporting half.

How (deterministic given ``seed``):

1. read ``<root>/protein/aaanalysis/<DATASET>.tsv`` (columns ``entry, gene, sequence, label``);
   drop sequences with characters that are not letters; drop exact duplicate sequences (all copies
   when they carry both labels: :func:`rkhsreg.data.protein.drop_conflicting_labels`, the rule
   :func:`rkhsreg.data.load_scop_task` applies too);
2. refuse a set whose alphabet is not the amino-acid one (SEQ_LOCATION uses a reduced alphabet of
   14 letters: its letters are not residues, so a one-hot of the 20 would mislead; nucleotides neither:
   :func:`rkhsreg.data.protein.check_alphabet`, which ``encode_sequences`` applies too);
3. shuffle positives and negatives with ``random.Random(seed, dataset)`` and cut disjoint chunks:
   task j of a set gets ``train_size/2`` positives and negatives for training, ``test_positives``
   positives and ``test_negatives`` negatives for testing, never shared with another task of that
   set. The test sets have more negatives than positives, like SCOP's, and more than 50 negatives
   so that ROC50 (first 50 false positives) and auROC50 (FPR ≤ 0.5) measure different things;
4. the first half of each set's tasks (rounded down) form the tuning half, the rest the reporting
   half, so both halves mix the sets alike.

Example:
    >>> tasks = build_standin_tasks("../shared/data", tasks_per_dataset=4)  # doctest: +SKIP
    >>> [t.name for t in tasks if t.meta["half"] == "tune"][:2]             # doctest: +SKIP
    ['capsid-0', 'capsid-1']
"""

from __future__ import annotations

import csv
import io
import os
import random
from collections.abc import Sequence
from numbers import Integral
from pathlib import Path

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg._params import PATH, SEED, InstanceOf, Interval, Tuple, validates
from rkhsreg.data.protein import SequenceTask, check_alphabet, drop_conflicting_labels
from rkhsreg.data.root import DatasetNotFoundError, resolve_data_root
from rkhsreg.data.sniff import utf8_text, what_it_is

__all__ = ["STANDIN_DATASETS", "read_labelled_tsv", "build_standin_tasks"]

#: The sequence-level aaanalysis sets usable as stand-ins (full amino-acid alphabet, thousands of sequences).
STANDIN_DATASETS = ("SEQ_CAPSID", "SEQ_TAIL", "SEQ_SOLUBLE", "SEQ_DISULFIDE")
_MIN_STANDARD_LETTERS = 18


def _tsv_path(root: str | os.PathLike[str] | None, dataset: str) -> Path:
    return resolve_data_root(root) / "protein" / "aaanalysis" / f"{dataset}.tsv"


def read_labelled_tsv(root: str | os.PathLike[str] | None, dataset: str) -> tuple[list[str], list[int]]:
    """The cleaned, de-duplicated sequences of one aaanalysis set and their 0/1 labels, in file order.

    Args:
        root: the data root holding ``protein/aaanalysis`` (None: ``$RKHSREG_DATA``, else ``./data``).
        dataset: the file stem, e.g. ``"SEQ_CAPSID"``.

    Raises:
        DatasetNotFoundError: the file is missing.
        InputError: an empty, compressed, HTML or non-UTF-8 file, missing columns, a truncated line, a label
            other than 0/1, or a reduced alphabet (fewer than 18 of the 20 amino-acid letters present).
    """
    path = _tsv_path(root, dataset)
    if not path.is_file():
        raise DatasetNotFoundError(f"{str(path)!r} does not exist; pass the data root that holds "
                                   "protein/aaanalysis/<DATASET>.tsv (e.g. ../shared/data).")
    data = path.read_bytes()
    kind = what_it_is(data[:512])
    if kind is not None:
        raise InputError(f"{str(path)!r} is {kind}, not a tab-separated text file; fetch or decompress it again.")
    text = utf8_text(data, repr(str(path)), "; save it as UTF-8.")
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter="\t")
    if not {"sequence", "label"} <= set(reader.fieldnames or ()):
        raise InputError(f"{str(path)!r} has columns {reader.fieldnames}; 'sequence' and 'label' are needed "
                         "(a tab-separated file with a header line).")
    rows = list(reader)
    width = len(reader.fieldnames or ())
    sequences: list[str] = []
    labels: list[int] = []
    for line, row in enumerate(rows, start=2):
        if row.get("label") is None or row.get("sequence") is None or None in row:
            cells = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or ())
            last = " (its last line: the file is truncated?)" if line == len(rows) + 1 else ""
            raise InputError(f"{str(path)}:{line}: {cells} columns where the header has {width}{last}; every line "
                             "needs the header's tab-separated columns.")
        label = row["label"].strip()
        if label not in ("0", "1"):
            shown = label if len(label) <= 20 else f"{label[:20]}… ({len(label)} characters)"
            swapped = " (are the label and sequence columns swapped?)" if label.isalpha() and len(label) > 1 else ""
            raise InputError(f"{str(path)}:{line}: label {shown!r} is not allowed; expected 0 or 1{swapped}.")
        seq = row["sequence"].strip().upper()
        if not seq.isalpha() or not seq.isascii():
            continue
        sequences.append(seq)
        labels.append(int(label))
    try:
        check_alphabet(sequences, dataset, min_standard_letters=_MIN_STANDARD_LETTERS)
    except InputError as exc:
        raise InputError(f"{exc} Use one of {', '.join(STANDIN_DATASETS)}.") from None
    seen: set[str] = set()
    kept: list[int] = []
    for i in drop_conflicting_labels(sequences, labels, source=dataset, warn=False):  # documented: no warning
        if sequences[i] not in seen:
            seen.add(sequences[i])
            kept.append(i)
    return [sequences[i] for i in kept], [labels[i] for i in kept]


@validates({"root": [None, PATH],
            "datasets": Tuple(InstanceOf(str), length=(1, None), unique=True, doc="aaanalysis set names"),
            "tasks_per_dataset": Interval(Integral, 2, None, doc="one tuning task and one reporting task at least"),
            "train_size": Interval(Integral, 2, None, doc="even: half positive"),
            "test_positives": Interval(Integral, 1, None), "test_negatives": Interval(Integral, 1, None),
            "seed": SEED})
def build_standin_tasks(root: str | os.PathLike[str] | None = None, *,
                        datasets: Sequence[str] = STANDIN_DATASETS, tasks_per_dataset: int = 4,
                        train_size: int = 100, test_positives: int = 50, test_negatives: int = 150,
                        seed: int = 0) -> list[SequenceTask]:
    """Balanced binary small-data tasks from real protein sets, tuning half first (see the module docstring).

    Args:
        root: the data root holding ``protein/aaanalysis``.
        datasets: aaanalysis set names (default: :data:`STANDIN_DATASETS`).
        tasks_per_dataset: tasks cut from each set (>= 2: one tuning, one reporting at least).
        train_size: training sequences per task (even; half positive).
        test_positives: positive test sequences per task.
        test_negatives: negative test sequences per task.
        seed: seed of the shuffles.

    Returns:
        Tasks named ``<set>-<j>`` (``capsid-0``…), ``group`` the set, ``meta["half"]`` ``"tune"`` or
        ``"report"``; the tuning tasks of every set come first, then the reporting tasks.

    Raises:
        ConfigurationError: bad sizes, or a set too small for the tasks asked.
    """
    if train_size % 2:   # every argument is checked by its declaration first
        raise ConfigurationError(f"train_size={train_size} is not allowed; pass an even int (balanced classes).")
    half_train = train_size // 2
    need = {1: tasks_per_dataset * (half_train + test_positives), 0: tasks_per_dataset * (half_train + test_negatives)}
    tune: list[SequenceTask] = []
    report: list[SequenceTask] = []
    for dataset in datasets:
        sequences, labels = read_labelled_tsv(root, dataset)
        rng = random.Random(f"{seed}:{dataset}")
        pools = {c: [s for s, y in zip(sequences, labels) if y == c] for c in (1, 0)}
        for c, pool in pools.items():
            if len(pool) < need[c]:
                raise ConfigurationError(f"{dataset} has {len(pool)} usable sequences of class {c}; "
                                         f"tasks_per_dataset={tasks_per_dataset} tasks need {need[c]}. "
                                         "Ask for fewer or smaller tasks.")
            rng.shuffle(pool)
        short = dataset.removeprefix("SEQ_").lower()
        for j in range(tasks_per_dataset):
            chunk = {c: pools[c][j * need[c] // tasks_per_dataset:(j + 1) * need[c] // tasks_per_dataset]
                     for c in (1, 0)}
            train = chunk[1][:half_train] + chunk[0][:half_train]
            test = chunk[1][half_train:] + chunk[0][half_train:]
            half = "tune" if j < tasks_per_dataset // 2 else "report"
            task = SequenceTask(f"{short}-{j}", train, [1] * half_train + [0] * half_train,
                                test, [1] * test_positives + [0] * test_negatives, group=dataset,
                                meta={"half": half, "seed": seed, "index": j})
            (tune if half == "tune" else report).append(task)
    return tune + report
