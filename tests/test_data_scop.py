"""SCOP 1.67 benchmark layout loader, on the two real sample files."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rkhsreg._errors import ConfigurationError
from rkhsreg.data.fasta import parse_astral_header
from rkhsreg.data.root import DatasetNotFoundError
from rkhsreg.data.scop import download_scop167, find_scop_root, list_scop_tasks, load_scop_task, read_scop_split

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "protein" / "scop167_sample"
pytestmark = pytest.mark.skipif(not (SAMPLE / "pos-test.c.1.1.fasta").is_file(), reason="SCOP sample not present")


@pytest.fixture
def full_layout(tmp_path):
    """The sample's test files also serving as the train files of the task, in an archive-like sub-folder."""
    root = tmp_path / "SCOP167-superfamily"
    root.mkdir()
    for sign in ("pos", "neg"):
        src = SAMPLE / f"{sign}-test.c.1.1.fasta"
        shutil.copy(src, root / src.name)
        shutil.copy(src, root / f"{sign}-train.c.1.1.fasta")
    return tmp_path


def test_test_split_of_the_real_sample():
    records, labels = read_scop_split(SAMPLE, "c.1.1", "test")
    assert len(records) == 270 and sum(labels) == 15
    assert all(parse_astral_header(r.description).superfamily == "c.1.1" for r, y in zip(records, labels) if y)
    assert list_scop_tasks(SAMPLE, split="test") == ["c.1.1"]


def test_missing_train_files_are_named():
    with pytest.raises(DatasetNotFoundError, match=r"missing \['pos-train.c.1.1.fasta', 'neg-train.c.1.1.fasta'\]"):
        load_scop_task(SAMPLE, "c.1.1")


def test_root_in_a_subfolder_and_balanced_subset(full_layout):
    assert find_scop_root(full_layout).name == "SCOP167-superfamily"
    assert list_scop_tasks(full_layout) == ["c.1.1"]
    task = load_scop_task(full_layout, "c.1.1", train_size=40, seed=3)
    # 15 positives exist: all of them, negatives for the rest
    assert sum(task.train_labels) == 15 and len(task.train_labels) == 40
    assert len(task.test_sequences) == 270 and sum(task.test_labels) == 15
    again = load_scop_task(full_layout, "c.1.1", train_size=40, seed=3)
    other = load_scop_task(full_layout, "c.1.1", train_size=40, seed=4)
    assert again.meta["train_ids"] == task.meta["train_ids"] != other.meta["train_ids"]
    assert load_scop_task(full_layout, "c.1.1").train_labels.count(0) == 255


def test_train_size_too_large_is_refused(full_layout):
    with pytest.raises(ConfigurationError, match="train_size=1000 is too large"):
        load_scop_task(full_layout, "c.1.1", train_size=1000)


def test_missing_folder_says_how_to_get_the_data(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist; download"):
        list_scop_tasks(tmp_path / "absent")
    with pytest.raises(DatasetNotFoundError, match="no '{pos,neg}-{train,test}"):
        list_scop_tasks(tmp_path)


def test_download_offline_gives_a_clear_message(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="seems offline"):
        download_scop167(tmp_path / "scop", url="http://127.0.0.1:9/SCOP167-superfamily.tar.bz2", timeout=2)


def test_download_is_skipped_when_files_are_there(full_layout):
    assert download_scop167(full_layout, url="http://127.0.0.1:9/never-fetched").name == "SCOP167-superfamily"


def test_download_unpacks_the_archive(full_layout, tmp_path):
    import tarfile

    archive = tmp_path / "SCOP167-superfamily.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(full_layout / "SCOP167-superfamily", arcname="SCOP167-superfamily")
    base = download_scop167(tmp_path / "fresh", url=archive.as_uri())
    assert base == tmp_path / "fresh" / "SCOP167-superfamily"
    assert list_scop_tasks(tmp_path / "fresh") == ["c.1.1"]
    assert not list((tmp_path / "fresh").glob("*.tar.bz2"))   # the archive is removed after unpacking
