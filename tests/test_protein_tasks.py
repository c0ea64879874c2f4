"""Stand-in SCOP-like tasks built from the real aaanalysis protein sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.data.protein_tasks import build_standin_tasks, read_labelled_tsv
from rkhsreg.data.root import DatasetNotFoundError

ROOT = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not (ROOT / "protein" / "aaanalysis" / "SEQ_DISULFIDE.tsv").is_file(),
                                reason="aaanalysis sets not present")
SMALL = dict(datasets=["SEQ_DISULFIDE"], train_size=20, test_positives=10, test_negatives=60)


def test_cleaning_keeps_letters_only_and_no_duplicates():
    seqs, labels = read_labelled_tsv(ROOT, "SEQ_DISULFIDE")
    assert len(seqs) == len(set(seqs)) and set(labels) == {0, 1}
    assert all(s.isalpha() and s.isupper() for s in seqs)
    assert 2400 < len(seqs) < 2547        # '!' sequences and duplicates dropped from the 2,547


def test_tasks_are_balanced_disjoint_split_and_deterministic():
    tasks = build_standin_tasks(ROOT, tasks_per_dataset=4, seed=0, **SMALL)
    assert [t.name for t in tasks] == ["disulfide-0", "disulfide-1", "disulfide-2", "disulfide-3"]
    assert [t.meta["half"] for t in tasks] == ["tune", "tune", "report", "report"]
    seen: set[str] = set()
    for t in tasks:
        assert sum(t.train_labels) == 10 and len(t.train_labels) == 20
        assert sum(t.test_labels) == 10 and t.test_labels.count(0) == 60
        pool = set(t.train_sequences) | set(t.test_sequences)
        assert len(pool) == 90 and not pool & seen       # no sequence shared within or across tasks
        seen |= pool
    again = build_standin_tasks(ROOT, tasks_per_dataset=4, seed=0, **SMALL)
    other = build_standin_tasks(ROOT, tasks_per_dataset=4, seed=1, **SMALL)
    assert again[2].train_sequences == tasks[2].train_sequences != other[2].train_sequences


def test_reduced_alphabet_set_is_refused():
    with pytest.raises(InputError, match="reduced alphabet"):
        build_standin_tasks(ROOT, datasets=["SEQ_LOCATION"])


def test_errors():
    with pytest.raises(ConfigurationError, match="tasks need"):
        build_standin_tasks(ROOT, datasets=["SEQ_DISULFIDE"], tasks_per_dataset=20)
    with pytest.raises(ConfigurationError, match="train_size=11"):
        build_standin_tasks(ROOT, datasets=["SEQ_DISULFIDE"], train_size=11)
    with pytest.raises(ConfigurationError, match="tasks_per_dataset=1"):
        build_standin_tasks(ROOT, tasks_per_dataset=1)
    with pytest.raises(DatasetNotFoundError, match="SEQ_NOPE.tsv"):
        build_standin_tasks(ROOT, datasets=["SEQ_NOPE"])
