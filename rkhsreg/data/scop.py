"""The SCOP 1.67 superfamily benchmark (remote homology detection), in its published file layout.

The archive ``SCOP167-superfamily.tar.bz2`` (Hochreiter, Heusel & Obermayer 2007, used by the seed
paper) holds, for each of its 102 superfamily tasks, four FASTA files::

    pos-train.<task>.fasta  neg-train.<task>.fasta  pos-test.<task>.fasta  neg-test.<task>.fasta

with ASTRAL headers (``>d1tph1_ c.1.1.1 (1:) Triosephosphate isomerase {...}``). ``<task>`` names the
superfamily (e.g. ``c.1.1``): its positives are its members, one family held out for the test set;
its negatives come from other folds. The files may sit directly in the root or in one sub-folder
(the archive's own top folder).

Example:
    >>> names = list_scop_tasks("data/SCOP167-superfamily")                # doctest: +SKIP
    >>> task = load_scop_task("data/SCOP167-superfamily", names[0], train_size=100, seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import random
import tarfile
import tempfile
import urllib.error
import urllib.request
from numbers import Integral
from pathlib import Path

from rkhsreg._checks import check_choice
from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg._params import PATH, SEED, InstanceOf, Interval, validates
from rkhsreg.data.fasta import FastaRecord, read_fasta
from rkhsreg.data.protein import SequenceTask, drop_conflicting_labels
from rkhsreg.data.root import DatasetNotFoundError
from rkhsreg.data.sniff import head_of, what_it_is

__all__ = ["SCOP167_URL", "SPLITS", "scop_file", "find_scop_root", "list_scop_tasks", "read_scop_split",
           "load_scop_task", "download_scop167"]

#: Where the full benchmark is published (about 12 MB, bzip2 tar).
SCOP167_URL = "http://www.bioinf.jku.at/software/LSTM_protein/jLSTM_protein/datasets/SCOP167-superfamily.tar.bz2"
SPLITS = ("train", "test")
_SIGNS = ("pos", "neg")


def scop_file(root: str | os.PathLike[str], sign: str, split: str, task: str) -> Path:
    """``root/<sign>-<split>.<task>.fasta``."""
    check_choice("sign", sign, _SIGNS)
    check_choice("split", split, SPLITS)
    return Path(root) / f"{sign}-{split}.{task}.fasta"


def find_scop_root(root: str | os.PathLike[str]) -> Path:
    """``root`` if it holds benchmark files, else its only sub-folder that does.

    Raises:
        DatasetNotFoundError: no ``{pos,neg}-{train,test}.*.fasta`` file in ``root`` or one level below.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetNotFoundError(f"SCOP 1.67 folder {str(root)!r} does not exist; download the benchmark "
                                   f"({SCOP167_URL}) and unpack it there (rkhsreg.data.download_scop167).")
    if any(root.glob("*-*.*.fasta")):
        return root
    below = sorted(p for p in root.iterdir() if p.is_dir() and any(p.glob("*-*.*.fasta")))
    if len(below) == 1:
        return below[0]
    raise DatasetNotFoundError(f"no '{{pos,neg}}-{{train,test}}.<task>.fasta' file in {str(root)!r}"
                               + (f" (several candidate folders: {[p.name for p in below]})" if below else "")
                               + f"; download {SCOP167_URL} and unpack it there.")


def list_scop_tasks(root: str | os.PathLike[str], split: str = "train") -> list[str]:
    """Task names with a ``pos-<split>.<task>.fasta`` file, sorted (102 for the full benchmark).

    Raises:
        DatasetNotFoundError: no benchmark file in ``root`` (see :func:`find_scop_root`), or files of other splits
            only (a loop over the tasks would silently run none): the kinds of file found are named.
    """
    check_choice("split", split, SPLITS)
    base = find_scop_root(root)
    prefix = f"pos-{split}."
    names = sorted(p.name[len(prefix):-len(".fasta")] for p in base.glob(f"{prefix}*.fasta"))
    if not names:
        found = sorted({p.name.split(".")[0] for p in base.glob("*-*.*.fasta")})
        others = [s for s in SPLITS if s != split and any(base.glob(f"pos-{s}.*.fasta"))]
        hint = f"; pass split={others[0]!r} to list its tasks" if others else ""
        raise DatasetNotFoundError(f"{str(base)!r} holds no 'pos-{split}.<task>.fasta' file (split={split!r}); "
                                   f"its benchmark files are {', '.join(f + '.*.fasta' for f in found)} only{hint}.")
    return names


def read_scop_split(root: str | os.PathLike[str], task: str,
                    split: str) -> tuple[list[FastaRecord], list[int]]:
    """The records of one split of one task, positives first, with labels 1 (pos) / 0 (neg).

    Raises:
        DatasetNotFoundError: one of the two files is missing (both missing names are listed).
    """
    check_choice("split", split, SPLITS)
    base = find_scop_root(root)
    paths = [scop_file(base, sign, split, task) for sign in _SIGNS]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise DatasetNotFoundError(f"task {task!r}: missing {missing} in {str(base)!r}; the benchmark has four "
                                   "files per task: {pos,neg}-{train,test}.<task>.fasta.")
    pos, neg = (read_fasta(p) for p in paths)
    return pos + neg, [1] * len(pos) + [0] * len(neg)


def _balanced(records: list[FastaRecord], labels: list[int], size: int, rng: random.Random,
              task: str) -> tuple[list[FastaRecord], list[int]]:
    pos = [r for r, y in zip(records, labels) if y == 1]
    neg = [r for r, y in zip(records, labels) if y == 0]
    n_pos = min(len(pos), size // 2)
    n_neg = size - n_pos
    if n_neg > len(neg):
        raise ConfigurationError(f"train_size={size} is too large for task {task!r}: {len(pos)} positive and "
                                 f"{len(neg)} negative training sequences.")
    picked = rng.sample(pos, n_pos) + rng.sample(neg, n_neg)
    return picked, [1] * n_pos + [0] * n_neg


@validates({"root": PATH, "task": InstanceOf(str, doc="a name from list_scop_tasks"),
            "train_size": [None, Interval(Integral, 2, None, doc="training sequences kept")], "seed": SEED})
def load_scop_task(root: str | os.PathLike[str], task: str, *, train_size: int | None = None,
                   seed: int = 0) -> SequenceTask:
    """One task of the benchmark as a :class:`SequenceTask` (sequences kept as letters).

    Args:
        root: the unpacked benchmark (see :func:`find_scop_root`).
        task: a name from :func:`list_scop_tasks`.
        train_size: keep a balanced random subset of this many training sequences (half positives,
            or all positives when fewer, negatives for the rest), as in the paper's small-data
            setting; ``None`` keeps the whole training set. The test set is always kept whole.
        seed: seed of that subset.

    A sequence in both the positive and the negative file of a split (contradictory labels) is dropped, every
    copy, with one :class:`~rkhsreg._errors.SequenceDataWarning` counting them (the rule of
    :func:`rkhsreg.data.build_standin_tasks`).

    Raises:
        DatasetNotFoundError: a file of the task is missing.
        ConfigurationError: ``train_size`` is not an int >= 2 or exceeds what the task has.
    """
    splits = {}
    for split in SPLITS:
        records, labels = read_scop_split(root, task, split)
        kept = drop_conflicting_labels([r.sequence for r in records], labels, ids=[r.id for r in records],
                                       source=f"task {task!r}, pos-{split} and neg-{split}")
        splits[split] = [records[i] for i in kept], [labels[i] for i in kept]
    (train, y_train), (test, y_test) = splits["train"], splits["test"]
    if train_size is not None:   # checked by its declaration
        train, y_train = _balanced(train, y_train, train_size, random.Random(seed), task)
    return SequenceTask(task, [r.sequence for r in train], y_train, [r.sequence for r in test], y_test,
                        group=task.split(".")[0], meta={"train_ids": [r.id for r in train],
                                                        "test_ids": [r.id for r in test], "seed": seed})


def download_scop167(root: str | os.PathLike[str], url: str = SCOP167_URL, timeout: float = 60.0) -> Path:
    """Download and unpack the benchmark into ``root`` (skipped when its files are already there).

    Returns:
        The folder holding the task files.

    Raises:
        DatasetNotFoundError: the download failed (no internet access); the message says what to fetch
            and where to unpack it by hand.
        InputError: what was downloaded is not the archive (an HTML page, a truncated file).
    """
    root = Path(root)
    try:
        return find_scop_root(root)
    except DatasetNotFoundError:
        pass
    root.mkdir(parents=True, exist_ok=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, \
                tempfile.NamedTemporaryFile(dir=root, suffix=".tar.bz2", delete=False) as tmp:
            while chunk := response.read(1 << 20):
                tmp.write(chunk)
            archive = tmp.name
    except (urllib.error.URLError, OSError, TimeoutError) as err:
        raise DatasetNotFoundError(f"could not download {url} ({err}); this machine seems offline. Fetch the file "
                                   f"elsewhere and unpack it into {str(root)!r} (tar xjf SCOP167-superfamily.tar.bz2)."
                                   ) from err
    try:
        kind = what_it_is(head_of(archive))
        if kind is not None and not kind.startswith("bzip2"):
            raise InputError(f"the file downloaded from {url} is {kind}, not the bzip2 tar archive of the "
                             f"benchmark; fetch it by hand and unpack it into {str(root)!r}.")
        try:
            with tarfile.open(archive, "r:bz2") as tar:
                tar.extractall(root, filter="data")
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise InputError(f"the file downloaded from {url} could not be unpacked ({exc}: truncated?); fetch it "
                             f"again, or by hand, and unpack it into {str(root)!r}.") from None
    finally:
        os.unlink(archive)
    return find_scop_root(root)
