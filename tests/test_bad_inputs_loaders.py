"""Bad files given to the data loaders (MNIST, CIFAR-10, FASTA, SCOP, protein TSV, downloads): an ``InputError``
that names the file and what is wrong with it — never a bare ``EOFError``, ``UnicodeDecodeError``,
``AssertionError``, ``AttributeError``, nor "downloading failed" when nothing was downloaded."""

from __future__ import annotations

import gzip
import io
import os
import re
import tarfile
from pathlib import Path

import pytest
import torch

from rkhsreg._errors import InputError

pytest.importorskip("torchvision")

HTML = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head><body>Not Found</body></html>\n"
RECORDS = b">d1a_ a.1.1.1 (A:) Globin {Human}\nACDEFGHIKLMNPQRSTVWY\n>d2b_ a.1.1.2 (B:) Globin {Mouse}\nACDEFGH\n"


# ------------------------------------------------------------------------------------------------------- MNIST
def _idx(dims: tuple[int, ...], fill: int = 0) -> bytes:
    header = bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    size = 1
    for d in dims:
        size *= d
    return header + bytes([fill]) * size


def _mnist(root: Path, images: bytes, labels: bytes) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 6), ("t10k", 4)):
        (raw / f"{split}-images-idx3-ubyte").write_bytes(_idx((n, 28, 28)))
        (raw / f"{split}-labels-idx1-ubyte").write_bytes(_idx((n,), 3))
    (raw / "t10k-images-idx3-ubyte").write_bytes(images)
    (raw / "t10k-labels-idx1-ubyte").write_bytes(labels)
    return root


GOOD_IMAGES, GOOD_LABELS = _idx((4, 28, 28)), _idx((4,), 3)


@pytest.mark.parametrize("images, labels, file, match", [
    (GOOD_IMAGES[:1000], GOOD_LABELS, "t10k-images", "is truncated: its header declares 4×28×28 bytes"),
    (b"", GOOD_LABELS, "t10k-images", "is empty (0 bytes), not an MNIST idx file"),
    (HTML, GOOD_LABELS, "t10k-images", "is an HTML page"),
    (gzip.compress(GOOD_IMAGES), GOOD_LABELS, "t10k-images", "is gzip-compressed data (decompress it"),
    (GOOD_LABELS, GOOD_IMAGES, "t10k-images", "holds labels (idx with 1 dimension) where images"),
    (GOOD_IMAGES, GOOD_LABELS[:6], "t10k-labels", "is truncated: it ends inside its header"),
    (GOOD_IMAGES, _idx((6,), 3), "t10k-labels", "holds 6 labels for the 4 images"),          # the train labels
    (GOOD_IMAGES, _idx((4,), 12), "t10k-labels", "holds the label 12; MNIST's labels are 0 to 9"),
    (b"\x00\x00\x0d\x03" + GOOD_IMAGES[4:], GOOD_LABELS, "t10k-images", "not an MNIST idx file of unsigned bytes"),
], ids=["truncated", "empty", "html", "gzip", "swapped", "labels-truncated", "other-split", "label-12",
        "not-bytes"])
def test_mnist_files_that_are_not_what_their_names_say(tmp_path, images, labels, file, match):
    from rkhsreg.data import load_mnist

    root = _mnist(tmp_path, images, labels)
    with pytest.raises(InputError, match=re.escape(match)) as error:
        load_mnist(root, train=False, download=False)
    assert file in str(error.value) and "downloading" not in str(error.value)


@pytest.mark.parametrize("images, labels, file, match", [
    (_idx((6, 28, 28)), GOOD_LABELS, "t10k-images-idx3-ubyte", "holds 6 images, the size of MNIST's train split, "
                                                               "where the test split has 4"),
    (GOOD_IMAGES, _idx((6,), 3), "t10k-labels-idx1-ubyte", "holds 6 labels for the 4 images"),
], ids=["images-of-train", "labels-of-train"])
def test_mnist_file_of_the_other_split_is_the_one_named(tmp_path, monkeypatch, images, labels, file, match):
    """The test images replaced by the train images blamed the (correct) labels file."""
    from rkhsreg.data import load_mnist, mnist_files

    monkeypatch.setattr(mnist_files, "_SIZES", {"train": 6, "test": 4})  # the split sizes of this tiny copy
    with pytest.raises(InputError, match=re.escape(match)) as error:
        load_mnist(_mnist(tmp_path, images, labels), train=False, download=False)
    assert str(error.value).startswith(f"'{tmp_path / 'MNIST' / 'raw' / file}'")


def test_good_mnist_files_still_load(tmp_path):
    from rkhsreg.data import load_mnist

    x, y = load_mnist(_mnist(tmp_path, GOOD_IMAGES, GOOD_LABELS), train=False, download=False)
    assert x.shape == (4, 1, 28, 28) and y.tolist() == [3, 3, 3, 3]


def _gzipped_mnist(root: Path) -> Path:
    """MNIST's raw folder as distributed: every idx file gzip-compressed, none uncompressed."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n in (("train", 6), ("t10k", 4)):
        (raw / f"{split}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx((n, 28, 28))))
        (raw / f"{split}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx((n,), 3)))
    return root


def test_mnist_files_kept_gzip_compressed_are_decompressed_in_place(tmp_path):
    """Only .gz files: the loader said MNIST was not there; it reads them now, as torchvision does after a download."""
    from rkhsreg.data import load_mnist

    x, y = load_mnist(_gzipped_mnist(tmp_path), train=False, download=False)
    assert x.shape == (4, 1, 28, 28) and y.tolist() == [3, 3, 3, 3]
    assert (tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte").is_file()


def test_gzip_compressed_mnist_files_that_cannot_be_decompressed_say_how(tmp_path, monkeypatch):
    from rkhsreg.data import load_mnist

    root = _gzipped_mnist(tmp_path)

    def read_only(path, data):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("rkhsreg.data.root.atomic_write", read_only)
    with pytest.raises(InputError, match=r"holds MNIST's files gzip-compressed only .* could not be decompressed there "
                                         r"\(Permission denied\); decompress them yourself \(gunzip -k"):
        load_mnist(root, train=False, download=False)
    monkeypatch.undo()
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx((4,), 3))[:20])
    with pytest.raises(InputError, match=r"t10k-labels-idx1-ubyte.gz' could not be decompressed .* damaged"):
        load_mnist(root, train=False, download=False)


def test_the_cli_names_a_damaged_mnist_file(tmp_path, capsys):
    pytest.importorskip("torchattacks")
    from rkhsreg.cli import main

    root = _mnist(tmp_path, GOOD_IMAGES[:1000], GOOD_LABELS)
    code = main(["evaluate", "--model", "rkhsreg.models:mnist_vgg5", "--random-init", "--data", "mnist",
                 "--data-dir", str(root), "--epsilons", "0.5", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "t10k-images-idx3-ubyte' is truncated" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------------- CIFAR-10
def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize("content, match", [
    (HTML, "is an HTML page (a download that saved an error or login page?), not a tar archive"),
    (b"", "is empty (0 bytes), not a tar archive"),
    (_tar_gz({f"test/cat/{i}.jpg": os.urandom(20000) for i in range(4)})[:9000],
     "could not be extracted: it ends before its last member (truncated"),
    (b"\x1f\x8b\x08\x00" + bytes(range(256)) * 2, "could not be extracted: it is not a readable tar archive"),
    (b"hello\n", "is not a gzip archive (it starts with text 'hello\\n'), nor a tar archive"),    # was "truncated"
], ids=["html", "empty", "truncated", "garbled", "text"])
def test_cifar10_archives_that_are_not_archives(tmp_path, monkeypatch, content, match):
    from rkhsreg.data import find_cifar10, load_cifar10

    monkeypatch.setenv("RKHSREG_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "data" / "cifar10_jpeg" / "CIFAR-10-images_jpeg.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(content)
    for load in (lambda: find_cifar10(tmp_path / "data"), lambda: load_cifar10(tmp_path / "data")):
        with pytest.raises(InputError, match=re.escape(match)) as error:
            load()
        assert "CIFAR-10-images_jpeg.tar.gz" in str(error.value) and "downloading" not in str(error.value)
    cache = tmp_path / "cache"
    assert not cache.exists() or not any(p.name.startswith("CIFAR") for p in cache.iterdir())  # nothing half-left


@pytest.mark.parametrize("content, match", [
    (HTML, "is an HTML page"),
    (b"", "is empty (0 bytes), not an image"),
    ("truncate", "is truncated"),
    (b"GIF89a garbage", "is not a readable image"),
], ids=["html", "empty", "truncated", "garbled"])
def test_an_image_that_is_not_an_image_is_named(tmp_path, capsys, content, match):
    from rkhsreg.data import cifar10_datasets, load_cifar10
    from tests._cifar10_helpers import make_imagefolder

    tree = make_imagefolder(tmp_path / "data" / "cifar10_jpeg")
    bad = sorted((tree / "test" / "cat").glob("*.jpg"))[0]
    bad.write_bytes(bad.read_bytes()[:300] if content == "truncate" else content)
    with pytest.raises(InputError, match=re.escape(match)) as error:
        load_cifar10(tmp_path / "data")
    assert str(bad) in str(error.value)
    with pytest.raises(InputError, match=re.escape(match)):
        cifar10_datasets(tmp_path / "data")[1][6]                 # the LightningDataModule's datasets too
    pytest.importorskip("torchattacks")
    from rkhsreg.cli import main
    from tests._evaluation_helpers import tiny_cnn

    torch.save(tiny_cnn(num_classes=10).state_dict(), tmp_path / "w.pt")
    code = main(["evaluate", "--model", "tests._evaluation_helpers:tiny_cnn", "--model-kwargs", '{"num_classes": 10}',
                 "--weights", str(tmp_path / "w.pt"), "--data", "cifar10", "--data-dir", str(tmp_path / "data"),
                 "--epsilons", "0.5", "--no-progress", "--indices", "6"])
    err = capsys.readouterr().err
    assert code == 2 and str(bad) in err and "Traceback" not in err


@pytest.mark.parametrize("change, split, match", [
    ("rm test/airplane", "test", "test' has no class folder airplane; a CIFAR-10 split holds exactly the folders "
                                 "airplane, automobile"),
    ("mkdir test/zebra", "test", "test' has class folders that are not CIFAR-10 classes: zebra"),
    ("rm train/airplane", "train", "train' has no class folder airplane"),       # test/ has all ten: labels differ
    ("rm test/cat; mkdir test/kitten", "test", "has no class folder cat and class folders that are not CIFAR-10 "
                                               "classes: kitten"),
], ids=["missing", "extra", "train-only", "renamed"])
def test_cifar10_class_folders_other_than_the_ten_are_refused(tmp_path, change, split, match):
    """An ImageFolder numbers the folders it finds: a missing folder shifted every label silently (automobile
    became 0), an extra one made 11 classes, and train and test with different folders disagreed."""
    import shutil

    from rkhsreg.data import cifar10_datasets, load_cifar10
    from tests._cifar10_helpers import make_imagefolder

    tree = make_imagefolder(tmp_path / "data" / "cifar10_jpeg", train_per_class=1, test_per_class=1)
    for step in change.split("; "):
        verb, folder = step.split()
        if verb == "rm":
            shutil.rmtree(tree / folder)
        else:
            (tree / folder).mkdir()
            shutil.copy(next((tree / split / "dog").glob("*.jpg")), tree / folder)
    with pytest.raises(InputError, match=re.escape(match)):
        load_cifar10(tmp_path / "data", split=split)
    with pytest.raises(InputError, match=re.escape(match)):
        cifar10_datasets(tmp_path / "data")
    other = "train" if split == "test" else "test"
    assert load_cifar10(tmp_path / "data", split=other)[1].tolist() == list(range(10))  # the intact split loads


def test_a_cifar10_image_of_another_size_is_named(tmp_path):
    """It raised torch.stack's "stack expects each tensor to be equal size" without naming the file."""
    from PIL import Image

    from rkhsreg.data import load_cifar10
    from tests._cifar10_helpers import make_imagefolder

    tree = make_imagefolder(tmp_path / "data" / "cifar10_jpeg", train_per_class=1, test_per_class=1)
    Image.new("RGB", (64, 64)).save(tree / "test" / "dog" / "zzz_big.jpg")
    with pytest.raises(InputError, match=r"zzz_big\.jpg' is 64×64 pixels; CIFAR-10 images are 32×32"):
        load_cifar10(tmp_path / "data")


# ------------------------------------------------------------------------------------------------ FASTA, SCOP
def test_read_fasta_given_a_folder_says_it_is_one(tmp_path):
    """It said "does not exist" of a folder that exists."""
    from rkhsreg.data import read_fasta

    (tmp_path / "pos-train.a.1.fasta").write_bytes(RECORDS)
    with pytest.raises(IsADirectoryError, match=r"is a folder, not a file; FASTA files in it: pos-train.a.1.fasta"):
        read_fasta(tmp_path)


@pytest.mark.parametrize("content, match", [
    (b"", "is empty (0 bytes), not FASTA text"),
    (b"\n\n; a comment only\n", "holds no entry"),
    (gzip.compress(RECORDS), "is gzip-compressed data (decompress it, e.g. gunzip"),
    (HTML, "is an HTML page"),
    (RECORDS.replace(b"Human", b"Hum\xe4n"), "is not UTF-8 text: byte 0xe4 on line 1 (a Latin-1"),
    (RECORDS.decode().encode("utf-16"), "is UTF-16 text"),
    (b">d1a_ a.1.1.1 (A:) Globin\n", "has no sequence lines"),                # truncated after a header
], ids=["empty", "comments-only", "gzip", "html", "latin-1", "utf-16", "header-only"])
def test_fasta_files_that_are_not_fasta(tmp_path, content, match):
    from rkhsreg.data import read_fasta

    path = tmp_path / "pos-test.a.1.fasta"
    path.write_bytes(content)
    with pytest.raises(InputError, match=re.escape(match)) as error:
        read_fasta(path)
    assert "pos-test.a.1.fasta" in str(error.value)


def test_fasta_with_a_utf8_byte_order_mark_is_read(tmp_path):
    """A FASTA file saved with a UTF-8 byte-order mark (Windows editors) was refused as "sequence line before the
    first '>' header"; the BOM is dropped where loaders decode text (sniff.utf8_text) and by parse_fasta."""
    from rkhsreg.data import parse_fasta, read_fasta

    path = tmp_path / "bom.fasta"
    path.write_bytes("\ufeff>a desc\nACDE\n".encode())
    assert [(r.id, r.sequence) for r in read_fasta(path)] == [("a", "ACDE")]
    assert [(r.id, r.sequence) for r in parse_fasta(path.read_text(encoding="utf-8"))] == [("a", "ACDE")]


@pytest.mark.parametrize("given, match", [
    (lambda p: str(p), r"parse_fasta\(text='.*pos-test.a.1.fasta'\) was given the path of a file: parse_fasta takes "
                       r"FASTA text; to read a file use read_fasta\(path\)"),
    (lambda p: p, r"parse_fasta\(text='.*pos-test.a.1.fasta'\) was given the path of a file"),
    (lambda p: "data/missing.fasta", r"given what looks like a path, not FASTA text: .* use read_fasta\(path\)"),
    (lambda p: "ACDEFG\nHIK\n", r"<text>:1: sequence line before the first '>' header; parse_fasta takes FASTA text "
                                 r"\('>id description' header lines, each followed by its residues\); to read a file "
                                 r"use read_fasta\(path\)"),
], ids=["path-string", "Path", "missing-path", "no-header"])
def test_parse_fasta_given_a_path_or_text_without_a_header_points_to_read_fasta(tmp_path, given, match):
    """A path string was parsed as one sequence line ("sequence line before the first '>' header")."""
    from rkhsreg.data import parse_fasta

    path = tmp_path / "pos-test.a.1.fasta"
    path.write_bytes(RECORDS)
    with pytest.raises(InputError, match=match):
        parse_fasta(given(path))


@pytest.mark.parametrize("content, match", [
    (b"", "neg-test.a.1.1.fasta' is empty"),
    (gzip.compress(RECORDS), "neg-test.a.1.1.fasta' is gzip-compressed"),
], ids=["empty", "gzip"])
def test_a_scop_task_with_an_empty_or_compressed_file_is_refused(tmp_path, content, match):
    from rkhsreg.data import load_scop_task

    for sign in ("pos", "neg"):
        for split in ("train", "test"):
            (tmp_path / f"{sign}-{split}.a.1.1.fasta").write_bytes(RECORDS)
    (tmp_path / "neg-test.a.1.1.fasta").write_bytes(content)     # was: a task without test negatives
    with pytest.raises(InputError, match=re.escape(match)):
        load_scop_task(tmp_path, "a.1.1")


def test_a_scop_sequence_with_both_labels_is_dropped_with_one_warning(tmp_path):
    """load_scop_task kept a sequence of both pos-train and neg-train (contradictory labels) silently, where
    build_standin_tasks drops such sequences: one rule now (every copy dropped), with one warning here."""
    from rkhsreg import SequenceDataWarning  # noqa: F401 (exported)
    from rkhsreg.data import load_scop_task

    record = ">d{}_ c.1.1.1 (A:) p {{x}}\n{}\n".format
    files = {"pos-train": record(1, "ACDEFGHIK") + record(2, "KLMNPQRST"),
             "neg-train": record(3, "ACDEFGHIK") + record(4, "HIKLMNPQR"),
             "pos-test": record(5, "STVWY"), "neg-test": record(6, "FGHIK")}
    for name, text in files.items():
        (tmp_path / f"{name}.c.1.1.fasta").write_text(text)
    with pytest.warns(SequenceDataWarning, match=r"1 sequence appears with both labels \(positive and negative: "
                                                  r"d1_, d3_\); all 2 copies are dropped") as caught:
        task = load_scop_task(tmp_path, "c.1.1")
    assert len(caught) == 1
    assert list(zip(task.train_sequences, task.train_labels)) == [("KLMNPQRST", 1), ("HIKLMNPQR", 0)]
    assert task.meta["train_ids"] == ["d2_", "d4_"]


def test_list_scop_tasks_of_a_split_the_folder_does_not_hold_says_which_it_holds(tmp_path):
    """It returned [] for a folder holding only test files (default split='train'): a loop ran zero tasks."""
    from rkhsreg.data import list_scop_tasks
    from rkhsreg.data.root import DatasetNotFoundError

    for sign in ("pos", "neg"):
        (tmp_path / f"{sign}-test.a.1.1.fasta").write_bytes(RECORDS)
    with pytest.raises(DatasetNotFoundError, match=re.escape("holds no 'pos-train.<task>.fasta' file (split='train'); "
                                                             "its benchmark files are neg-test.*.fasta, "
                                                             "pos-test.*.fasta only; pass split='test'")):
        list_scop_tasks(tmp_path)
    assert list_scop_tasks(tmp_path, split="test") == ["a.1.1"]


@pytest.mark.parametrize("payload, match", [
    (HTML, "is an HTML page .*not the bzip2 tar archive"),
    (b"BZh91AY&SY" + b"\x00" * 40, "could not be unpacked"),
], ids=["html", "truncated"])
def test_a_scop_download_that_is_not_the_archive(tmp_path, monkeypatch, payload, match):
    from rkhsreg.data import scop

    class Response(io.BytesIO):
        def __enter__(self):
            return self

    monkeypatch.setattr(scop.urllib.request, "urlopen", lambda url, timeout: Response(payload))
    with pytest.raises(InputError, match=match):
        scop.download_scop167(tmp_path / "scop")
    assert not list((tmp_path / "scop").glob("*.tar.bz2"))      # the download is not left behind


# --------------------------------------------------------------------------------------------- protein (TSV)
_TSV = "entry\tgene\tsequence\tlabel\n" + "".join(
    f"P{i}\tg{i}\t{'ACDEFGHIKLMNPQRSTVWY'[i:] + 'ACDEFGHIKLMNPQRSTVWY'[:i]}\t{i % 2}\n" for i in range(20))


@pytest.mark.parametrize("content, match", [
    (b"", "is empty (0 bytes), not a tab-separated text file"),
    (HTML, "is an HTML page"),
    (gzip.compress(_TSV.encode()), "is gzip-compressed data"),
    (_TSV.encode()[:-30], ":21: 1 columns where the header has 4 (its last line: the file is truncated?)"),
    (_TSV.replace("P3", "P\u00e93").encode("latin-1"), "is not UTF-8 text: byte 0xe9 on line 5"),
    ("\n".join("\t".join([c[0], c[1], c[3], c[2]]) if n else "\t".join(c) for n, c in
               enumerate(line.split("\t") for line in _TSV.strip().split("\n"))).encode(),
     ":2: label 'ACDEFGHIKLMNPQRSTVWY' is not allowed; expected 0 or 1 (are the label and sequence columns "
     "swapped?)"),
], ids=["empty", "html", "gzip", "truncated", "latin-1", "swapped-columns"])
def test_protein_tables_that_are_not_tables(tmp_path, content, match):
    from rkhsreg.data.protein_tasks import read_labelled_tsv

    folder = tmp_path / "protein" / "aaanalysis"
    folder.mkdir(parents=True)
    (folder / "SEQ_TEST.tsv").write_bytes(content)
    with pytest.raises(InputError, match=re.escape(match)) as error:
        read_labelled_tsv(tmp_path, "SEQ_TEST")
    assert "SEQ_TEST.tsv" in str(error.value)


def test_a_good_protein_table_still_reads(tmp_path):
    from rkhsreg.data.protein_tasks import read_labelled_tsv

    folder = tmp_path / "protein" / "aaanalysis"
    folder.mkdir(parents=True)
    (folder / "SEQ_TEST.tsv").write_text(_TSV)
    sequences, labels = read_labelled_tsv(tmp_path, "SEQ_TEST")
    assert len(sequences) == 20 and labels[:4] == [0, 1, 0, 1]


def test_nucleotide_sequences_warn_when_encoded_and_are_refused_as_a_data_set(tmp_path):
    """encode_sequences one-hot-encoded DNA as protein silently (A, C, G, T are amino-acid letters) while the
    stand-in builder refused a small alphabet: one alphabet check (protein.check_alphabet) serves both."""
    import warnings

    from rkhsreg import SequenceDataWarning
    from rkhsreg.data import encode_sequences
    from rkhsreg.data.protein_tasks import read_labelled_tsv

    with pytest.warns(SequenceDataWarning, match="only the letters ACGT: they look like nucleotides") as caught:
        assert encode_sequences(["ACGTACGTTTGA", "GGCATTAC"], length=12).shape == (2, 21, 12)
    assert len(caught) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        encode_sequences(["MKVLAAGIVGACDE", "GGCATTAC"], length=12)     # proteins: no warning
    folder = tmp_path / "protein" / "aaanalysis"
    folder.mkdir(parents=True)
    (folder / "SEQ_DNA.tsv").write_text("entry\tgene\tsequence\tlabel\n" + "".join(
        f"P{i}\tg{i}\t{'ACGTTGCA'[i % 8:] + 'ACGTTGCA'}\t{i % 2}\n" for i in range(20)))
    with pytest.raises(InputError, match="SEQ_DNA: every sequence uses only the letters ACGT: they look like "
                                         "nucleotides"):
        read_labelled_tsv(tmp_path, "SEQ_DNA")


def test_load_mnist_refuses_a_split_given_as_a_string():
    """train="test" is truthy: it read the 60,000 training digits as if they were the test set."""
    from rkhsreg import ParameterError
    from rkhsreg.data import load_mnist

    with pytest.raises(ParameterError, match=r"load_mnist: train='test' is not allowed \(allowed: True or False\)"):
        load_mnist(None, train="test", download=False)
    with pytest.raises(ParameterError, match="download='no'"):
        load_mnist(None, train=False, download="no")


# ------------------------------------------------------------------------------------------ example selection
@pytest.mark.parametrize("kwargs, match", [
    (dict(n_examples=20), r"n_examples=20 is out of range: the split has 10 examples; pass n_examples <= 10"),
    (dict(first_n=11), r"first_n=11 is out of range: the split has 10 examples"),
])
def test_a_subset_larger_than_the_split_is_refused_not_clamped(kwargs, match):
    """select_indices returned all 10 examples for n_examples=20: an accuracy reported "on 20" computed on 10."""
    from rkhsreg import ParameterError
    from rkhsreg.data import select_indices

    with pytest.raises(ParameterError, match=match):
        select_indices(10, **kwargs)
    assert select_indices(10, n_examples=10) == select_indices(10, first_n=10) == list(range(10))


# ------------------------------------------------------------------------------------------------ data modules
@pytest.mark.parametrize("build, match", [
    (lambda m: m.MNISTSubset(val_size=0), r"MNISTSubset: val_size=0 is out of range; it must be >= 1"),
    (lambda m: m.MNISTSubset(val_size=60000), r"MNISTSubset: val_size=60000 is out of range; it must be <= 59999"),
    (lambda m: m.CIFAR10Data(train_examples=50001), r"train_examples=50001 is out of range; it must be <= 50000"),
    (lambda m: m.CIFAR10Data(test_examples=10001), r"test_examples=10001 is out of range; it must be <= 10000"),
])
def test_data_module_sizes_are_refused_by_their_declarations(build, match):
    """MNISTSubset(val_size=0) was accepted: an empty validation set, which Lightning skips without a word."""
    pytest.importorskip("pytorch_lightning")
    import rkhsreg.lightning
    from rkhsreg import ParameterError

    with pytest.raises(ParameterError, match=match):
        build(rkhsreg.lightning)
