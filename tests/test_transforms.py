"""rkhsreg.transforms.RandomDeformation: replay of sampled parameters, own RNG, pipelines, workers."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from rkhsreg import ConfigurationError, InputError
from rkhsreg.functional.deformation import deform, sample_params
from rkhsreg.transforms import RandomDeformation

KW = dict(max_displacement=2.0, max_gradient=0.3, grid_size=3, translation=1.0)


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 2, 12, 10, generator=torch.Generator().manual_seed(seed))


def test_is_the_deformation_of_its_sampled_parameters():
    """Kornia-style: the transform = deform(sample_params(its generator)); replaying the state replays it."""
    x = _images()
    aug = RandomDeformation(**KW, seed=3)
    g = torch.Generator().set_state(aug.get_state())
    params = sample_params(4, (12, 10), generator=g, **KW)
    torch.testing.assert_close(aug(x), deform(x, params), rtol=0, atol=0)


def test_single_image_batch_and_different_per_example():
    aug = RandomDeformation(**KW, seed=0)
    one = aug(_images(1)[0])
    assert one.shape == (2, 12, 10) and one.dtype == torch.float32
    same = _images(1).expand(3, -1, -1, -1)
    out = aug(same)
    assert out.shape == same.shape
    assert not torch.allclose(out[0], out[1]) and not torch.allclose(out[1], out[2])
    assert not torch.allclose(aug(same), out)  # a new draw at each call (each epoch)


def test_seed_state_dict_and_global_rng():
    x = _images()
    rng = torch.get_rng_state()
    a, b = RandomDeformation(**KW, seed=7), RandomDeformation(**KW, seed=7)
    assert torch.equal(a(x), b(x))
    state = a.state_dict()
    first = a(x)
    c = RandomDeformation(**KW, seed=99)
    c.load_state_dict(state)
    assert torch.equal(c(x), first)
    saved = a.get_state()
    again = a(x)
    a.set_state(saved)
    assert torch.equal(a(x), again)
    assert torch.equal(torch.get_rng_state(), rng)
    assert not torch.equal(RandomDeformation(**KW, seed=8)(x), RandomDeformation(**KW, seed=7)(x))


def test_probability_and_integer_images():
    x = _images()
    torch.testing.assert_close(RandomDeformation(**KW, p=0.0, seed=0)(x), x, rtol=0, atol=0)
    half = RandomDeformation(**KW, p=0.5, seed=1)(_images(64))
    kept = (half == _images(64)).flatten(1).all(1).float().mean()
    assert 0.25 < kept < 0.75
    img = (x * 255).round().to(torch.uint8)
    out = RandomDeformation(**KW, seed=0)(img)
    assert out.dtype == torch.uint8 and out.shape == img.shape


def test_in_a_torchvision_pipeline():
    transforms = pytest.importorskip("torchvision.transforms")
    pipeline = transforms.Compose([RandomDeformation(**KW, seed=0), transforms.Normalize((0.5, 0.5), (0.2, 0.2))])
    assert pipeline(_images(1)[0]).shape == (2, 12, 10)


class _Same(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(torch.ones(1, 8, 8).cumsum(-1) / 8)

    transform = RandomDeformation(**KW, seed=0)


def test_dataloader_workers_do_not_repeat_each_other():
    loader = DataLoader(_Same(), batch_size=1, num_workers=2, generator=torch.Generator().manual_seed(0))
    batches = [b[0] for b in loader]
    # workers 0 and 1 each get a copy of the transform: without re-seeding, items 0 and 1 would be equal
    assert not torch.allclose(batches[0], batches[1])
    again = [b[0] for b in DataLoader(_Same(), batch_size=1, num_workers=2,
                                      generator=torch.Generator().manual_seed(0))]
    assert all(torch.equal(a, b) for a, b in zip(batches, again))


def test_bad_arguments():
    with pytest.raises(ConfigurationError, match=r"p=1.5 is out of range; it must be <= 1"):
        RandomDeformation(p=1.5)
    with pytest.raises(ConfigurationError, match=r"max_displacement=-2.0 is out of range"):
        RandomDeformation(max_displacement=-2.0)
    with pytest.raises(ConfigurationError, match="max_gradient=inf is not finite"):
        RandomDeformation(max_gradient=float("inf"))
    with pytest.raises(ConfigurationError, match="seed=1 and generator were both given"):
        RandomDeformation(seed=1, generator=torch.Generator())
    aug = RandomDeformation(seed=0)
    with pytest.raises(InputError, match=r"\(C, H, W\) or \(N, C, H, W\)"):
        aug(torch.rand(8, 8))
    with pytest.raises(InputError, match="after ToTensor"):
        aug([[0.0]])
