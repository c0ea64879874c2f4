"""CIFAR-10 files (ImageFolder, archive extracted once, errors), CIFAR10Data and the CIFAR networks."""

from __future__ import annotations

import io
import math
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.cifar_models import ChannelNormalize, cifar_resnet18, cifar_vgg11
from rkhsreg.data.cifar10_files import (CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, DatasetNotFoundError,
                                        cifar10_datasets, extract_once, find_cifar10, load_cifar10_tensors)
from tests._cifar10_helpers import make_archive, make_imagefolder


@pytest.fixture
def tree(tmp_path):
    return make_imagefolder(tmp_path / "data" / "cifar10_jpeg")


def test_imagefolder_found_and_labels_in_cifar_order(tree):
    where = find_cifar10(tree.parent)
    assert where.kind == "imagefolder" and where.path == tree
    train, test = cifar10_datasets(tree.parent)
    assert (len(train), len(test)) == (30, 20)
    assert tuple(train.classes) == CIFAR10_CLASSES
    x, y = train[0]
    assert x.shape == (3, 32, 32) and 0 <= float(x.min()) and float(x.max()) <= 1
    # the file itself, through PIL: ToTensor is pixels / 255
    expected = torch.from_numpy(np.array(Image.open(train.samples[0][0]).convert("RGB"))).permute(2, 0, 1) / 255
    torch.testing.assert_close(x, expected.float())
    assert y == CIFAR10_CLASSES.index("airplane")


def test_archive_extracted_once_atomically(tmp_path, tree, monkeypatch):
    data = tmp_path / "ro"
    archive = make_archive(tree, data / "cifar10_jpeg" / "CIFAR-10-images_jpeg.tar.gz")
    cache = tmp_path / "cache"
    where = find_cifar10(data, cache_dir=cache)
    assert where.kind == "imagefolder" and where.path.parent == cache
    assert (where.path / ".complete").is_file()
    assert sorted(p.name for p in (where.path / "train").iterdir()) == sorted(CIFAR10_CLASSES)
    assert [p.name for p in cache.iterdir()] == [where.path.name]  # no temporary folder left behind
    assert where.path.name.endswith(str(archive.stat().st_size))

    def refuse(*args, **kwargs):
        raise AssertionError("the archive was opened a second time")
    monkeypatch.setattr(tarfile, "open", refuse)
    assert find_cifar10(data, cache_dir=cache).path == where.path


def test_incomplete_extraction_is_redone(tmp_path, tree):
    archive = make_archive(tree, tmp_path / "a" / "x.tar.gz")
    cache = tmp_path / "cache"
    stale = cache / f"x-{archive.stat().st_size}"
    (stale / "train").mkdir(parents=True)  # a tree without its .complete marker (killed extraction)
    target = extract_once(archive, cache)
    assert target == stale and (target / ".complete").is_file() and (target / "test").is_dir()


def test_unsafe_archive_refused(tmp_path):
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../escape.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(DatasetNotFoundError, match="escape.txt"):
        extract_once(archive, tmp_path / "cache")
    assert not (tmp_path / "escape.txt").exists()


def test_missing_data_and_bad_arguments(tmp_path, tree):
    with pytest.raises(DatasetNotFoundError, match="cifar10_jpeg"):
        find_cifar10(tmp_path / "nothing")
    with pytest.raises(ConfigurationError, match="source='jpeg'"):
        find_cifar10(tree.parent, source="jpeg")
    with pytest.raises(DatasetNotFoundError, match="cifar-10-batches-py"):
        find_cifar10(tree.parent, source="torchvision")
    odd = make_imagefolder(tmp_path / "odd", classes=("a", "b"))
    with pytest.raises(InputError, match="no class folder airplane, automobile"):
        cifar10_datasets(odd)


def test_load_tensors_mixes_classes(tree):
    x, y = load_cifar10_tensors(tree.parent, train=True, limit=12)
    assert x.shape == (12, 3, 32, 32) and x.dtype == torch.float32
    assert len(set(y.tolist())) > 3  # a fixed shuffle, not the first class's files


def test_datamodule_subsets_and_augmentation(tree):
    from rkhsreg.lightning import CIFAR10Data

    plain = CIFAR10Data(data_dir=str(tree.parent), train_examples=10, test_examples=7, batch_size=4, augment=False)
    plain.setup("fit")
    assert (len(plain.train_set), len(plain.test_set)) == (10, 7)
    larger = CIFAR10Data(data_dir=str(tree.parent), train_examples=20, augment=False)
    larger.setup()
    assert list(larger.train_set.indices[:10]) == list(plain.train_set.indices)  # the paper's nested subsets
    x, y = next(iter(plain.train_dataloader()))
    assert x.shape == (4, 3, 32, 32) and y.shape == (4,)
    batches = list(plain.test_dataloader())
    assert sum(len(b[1]) for b in batches) == 7

    aug = CIFAR10Data(data_dir=str(tree.parent), augment=True)
    aug.setup()
    base = plain.train_set.dataset[0][0]
    torch.manual_seed(0)
    shifted = [aug.train_set[0][0] for _ in range(8)]
    assert any(not torch.equal(s, base) for s in shifted)  # random crop / flip moved pixels
    for s in shifted:  # each is the image, flipped or not, translated by at most 4 pixels (zero padding)
        assert s.shape == base.shape
        assert any(_is_translation(s, b) for b in (base, base.flip(-1)))


def _is_translation(img: torch.Tensor, base: torch.Tensor) -> bool:
    padded = torch.nn.functional.pad(base, (4, 4, 4, 4))
    return any(torch.equal(img, padded[:, i:i + 32, j:j + 32]) for i in range(9) for j in range(9))


def test_datamodule_argument_errors(tree):
    from rkhsreg.lightning import CIFAR10Data

    with pytest.raises(ConfigurationError, match="train_examples=0"):
        CIFAR10Data(train_examples=0)
    dm = CIFAR10Data(data_dir=str(tree.parent), train_examples=31)
    with pytest.raises(ConfigurationError, match="train_examples=31 is out of range"):
        dm.setup()
    with pytest.raises(ConfigurationError, match="setup"):
        CIFAR10Data(data_dir=str(tree.parent)).train_dataloader()


def test_vgg11_matches_the_reference_architecture():
    net = cifar_vgg11()
    # convs 3-64-128-256-256-512-512-512-512 (3x3, biases) + linear 512-512-512-10 (biases), counted by hand
    convs = [(3, 64), (64, 128), (128, 256), (256, 256), (256, 512), (512, 512), (512, 512), (512, 512)]
    expected = sum(i * o * 9 + o for i, o in convs) + (512 * 512 + 512) * 2 + 512 * 10 + 10
    assert sum(p.numel() for p in net.parameters()) == expected == 9_750_922
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in net.modules()) == 5
    conv = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]  # N(0, 2 / (9 * 512)) initialisation
    assert conv.out_channels == 512 and float(conv.bias.detach().abs().max()) == 0.0
    assert abs(conv.weight.detach().std().item() - math.sqrt(2 / (9 * 512))) < 0.02 * math.sqrt(2 / (9 * 512))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_normalisation_is_inside_the_model():
    norm = ChannelNormalize()
    x = torch.rand(2, 3, 4, 4)
    expected = (x - torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)) / torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    torch.testing.assert_close(norm(x), expected)
    assert not list(norm.parameters()) and norm.state_dict() == {}
    small = cifar_vgg11(width=4, num_classes=3)
    assert small(torch.rand(1, 3, 32, 32)).shape == (1, 3)
    with pytest.raises(ConfigurationError, match="pool='sum'"):
        cifar_vgg11(pool="sum")


def test_resnet18_cifar_stem():
    pytest.importorskip("timm")
    net = cifar_resnet18()
    stem = net[1].conv1
    assert stem.kernel_size == (3, 3) and stem.stride == (1, 1)
    assert isinstance(net[1].maxpool, torch.nn.Identity)
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


# ------------------------------------------------------------------------ load_cifar10: the CLI's examples
def test_load_cifar10_selects_as_the_command_line_does(tree):
    from rkhsreg.data import load_cifar10, select_indices

    _, test = cifar10_datasets(tree.parent)
    x, y = load_cifar10(tree.parent, n_examples=5, seed=3)
    chosen = select_indices(20, n_examples=5, seed=3)
    assert x.shape == (5, 3, 32, 32) and chosen == sorted(chosen) and len(set(chosen)) == 5
    torch.testing.assert_close(x, torch.stack([test[i][0] for i in chosen]))
    assert y.tolist() == [test[i][1] for i in chosen] and y.dtype == torch.long
    assert load_cifar10(tree.parent, first_n=3)[1].tolist() == [0, 0, 1]        # sorted by class: the first n
    assert load_cifar10(tree.parent, indices=[19, 0])[1].tolist() == [9, 0]
    assert load_cifar10(tree.parent, split="train")[0].shape[0] == 30           # default: the whole split
    assert select_indices(20, n_examples=5, seed=4) != chosen


@pytest.mark.parametrize("kwargs, match", [
    (dict(first_n=2, indices=[1]), "first_n and indices were both given"),
    (dict(n_examples=2, first_n=1), "n_examples and first_n were both given"),
    (dict(indices=[3, 3]), r"indices=\[3, 3\] is not allowed: it lists 3 more than once"),
    (dict(indices=[20]), "indices: 20 is not an example of this split; pass ints from 0 to 19"),
    (dict(indices=[-1]), r"indices=\[-1\] is not allowed: element 0 = -1 is out of range; it must be >= 0"),
    (dict(n_examples=0), "n_examples=0 is out of range; it must be >= 1"),
    (dict(n_examples=21), "n_examples=21 is out of range: the split has 20 examples"),
    (dict(first_n=True), "first_n=True is not an integer"),
    (dict(n_examples=3, seed="0"), "seed='0' is not an integer"),
    (dict(split="val"), "split='val' is not allowed"),
])
def test_load_cifar10_refuses_bad_selections(tree, kwargs, match):
    from rkhsreg.data import load_cifar10

    with pytest.raises(ConfigurationError, match=match):
        load_cifar10(tree.parent, **kwargs)
