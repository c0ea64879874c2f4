"""rkhsreg.functional.deformation (+ its search helpers): exact identities, derivatives, budgets, RNG hygiene."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rkhsreg import ConfigurationError, InputError
from rkhsreg.functional.deformation import (DeformationParams, deform, displacement, displacement_norm,
                                            image_gradient, jacobian_norm, project_params, sample_params,
                                            tangent_vectors)
from rkhsreg.functional.deformation_search import coefficient_gradient, first_step_gain, maximize_deformation
from rkhsreg.functional.subsets import pick_examples


def _params(n: int, g: int, seed: int, scale: float = 1.0, dtype=torch.float32) -> DeformationParams:
    gen = torch.Generator().manual_seed(seed)
    return DeformationParams(torch.randn(n, 2, g, g, generator=gen, dtype=dtype) * scale,
                             torch.randn(n, 2, generator=gen, dtype=dtype) * scale)


@pytest.mark.parametrize("shape", [(3, 1, 8, 8), (2, 3, 16, 12), (1, 2, 5, 9)])
def test_identity_is_exact(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    out = deform(x, DeformationParams.zeros(shape[0], grid_size=4))
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


@pytest.mark.parametrize("padding_mode", ["border", "zeros"])
def test_integer_translation_matches_roll_in_the_interior(padding_mode):
    x = torch.rand(2, 3, 16, 12, generator=torch.Generator().manual_seed(1))
    # translation (+2 px along the width, -1 px along the height): content moves right and up
    params = DeformationParams(torch.zeros(2, 2, 3, 3), torch.tensor([[2.0, -1.0], [2.0, -1.0]]))
    expected = torch.roll(x, shifts=(-1, 2), dims=(2, 3))
    out = deform(x, params, padding_mode=padding_mode)
    torch.testing.assert_close(out[..., 1:-1, 2:], expected[..., 1:-1, 2:], rtol=0, atol=1e-6)
    assert not torch.allclose(out, x)


def test_constant_field_is_a_translation():
    x = torch.rand(1, 1, 12, 12, generator=torch.Generator().manual_seed(2))
    field = torch.tensor([1.0, 0.0])[None, :, None, None].expand(1, 2, 4, 4).clone()
    by_field = deform(x, DeformationParams(field, torch.zeros(1, 2)))
    by_shift = deform(x, DeformationParams(torch.zeros(1, 2, 4, 4), torch.tensor([[1.0, 0.0]])))
    torch.testing.assert_close(by_field, by_shift, rtol=0, atol=1e-6)
    torch.testing.assert_close(by_field[..., 1:], x[..., :-1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("padding_mode", ["border", "zeros"])
def test_first_order_tangents_match_finite_differences_of_deform(padding_mode):
    x = torch.rand(3, 2, 12, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    params = _params(3, 4, seed=4, dtype=torch.float64)
    t = tangent_vectors(x, params, padding_mode=padding_mode)
    h = 1e-7
    fd = (deform(x, params.scale(h), padding_mode=padding_mode) - x) / h
    inner = (..., slice(3, -3), slice(3, -3))  # the field can reach ~3 px: stay off the padding
    torch.testing.assert_close(t[inner], fd[inner], rtol=0, atol=1e-5 * t.abs().max().item())
    # and the library's own finite-difference method agrees everywhere (same padding on both sides)
    t_fd = tangent_vectors(x, params, method="finite_difference", padding_mode=padding_mode)
    torch.testing.assert_close(t_fd[inner], t[inner], rtol=0, atol=1e-4 * t.abs().max().item())


def test_plain_central_differences_would_not_match():
    """The bicubic kernel's derivative at the nodes is 1.5× the central difference: check we use it."""
    x = torch.rand(1, 1, 10, 10, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    grad = image_gradient(x)
    central = (x[..., 2:] - x[..., :-2]) / 2
    torch.testing.assert_close(grad[:, :, 0, :, 1:-1], 1.5 * central)


def test_tangents_per_example_and_dtype():
    x = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(6))
    tau = displacement(_params(6, 3, seed=7), (8, 8)).view(2, 3, 2, 8, 8)
    t = tangent_vectors(x, tau)
    assert t.shape == (2, 3, 3, 8, 8) and t.dtype == torch.float32
    torch.testing.assert_close(t[:, 1], tangent_vectors(x, tau[:, 1]))
    assert tangent_vectors(x.bfloat16(), tau).dtype == torch.bfloat16


@pytest.mark.parametrize("at_zero", [True, False])
def test_deform_gradient_matches_finite_differences(at_zero):
    """gradcheck in float64 — also at τ = 0, where a bilinear resampling would fail (one-sided derivatives)."""
    x = torch.rand(2, 2, 7, 7, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    p = _params(2, 3, seed=9, scale=0.0 if at_zero else 0.7, dtype=torch.float64)
    field, shift = p.field.requires_grad_(True), p.translation.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda f, t: deform(x, DeformationParams(f, t)), (field, shift),
                                    eps=1e-6, atol=1e-5)


def test_norms_on_known_fields():
    p = DeformationParams(torch.zeros(1, 2, 3, 3), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(displacement_norm(p, (8, 8)), torch.tensor([5.0]))
    torch.testing.assert_close(jacobian_norm(p, (8, 8)), torch.tensor([0.0]))
    # a linear field τ(u) = A u: finite differences are exact, the norm is the spectral norm of A
    a = torch.tensor([[0.1, 0.2], [-0.05, 0.3]])
    ys, xs = torch.meshgrid(torch.arange(9.0), torch.arange(11.0), indexing="ij")
    tau = torch.einsum("ij,jhw->ihw", a, torch.stack([xs, ys]))[None]
    torch.testing.assert_close(jacobian_norm(tau), torch.linalg.matrix_norm(a, 2)[None])
    corner = torch.linalg.vector_norm(a @ torch.tensor([10.0, 8.0]))
    torch.testing.assert_close(displacement_norm(tau), corner[None])


def test_project_params_satisfies_both_budgets_and_keeps_feasible_params():
    size = (16, 16)
    big = _params(6, 4, seed=10, scale=3.0)
    out = project_params(big, size, 1.5, 0.2)
    d, j = displacement_norm(out, size), jacobian_norm(out, size)
    assert bool((d <= 1.5 * (1 + 1e-5)).all()) and bool((j <= 0.2 * (1 + 1e-5)).all())
    # radial: one budget is tight for every example, and the direction is kept
    assert bool((torch.isclose(d, torch.tensor(1.5)) | torch.isclose(j, torch.tensor(0.2))).all())
    ratio = out.field.flatten(1) / big.field.flatten(1)
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))
    small = out.scale(0.5)
    again = project_params(small, size, 1.5, 0.2)
    assert torch.equal(again.field, small.field) and torch.equal(again.translation, small.translation)
    only_d = project_params(big, size, 1.5, None)
    torch.testing.assert_close(displacement_norm(only_d, size), torch.full((6,), 1.5))


def test_sample_params_budgets_reproducibility_and_rng_hygiene():
    size = (16, 12)
    rng = torch.get_rng_state()
    kw = dict(max_displacement=2.0, max_gradient=0.25, grid_size=4, translation=1.0)
    a = sample_params(64, size, generator=torch.Generator().manual_seed(0), **kw)
    b = sample_params(64, size, generator=torch.Generator().manual_seed(0), **kw)
    c = sample_params(64, size, generator=torch.Generator().manual_seed(1), **kw)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(a.field, b.field) and torch.equal(a.translation, b.translation)
    assert not torch.equal(a.field, c.field)
    d, j = displacement_norm(a, size), jacobian_norm(a, size)
    assert bool((d <= 2.0 * (1 + 1e-5)).all()) and bool((j <= 0.25 * (1 + 1e-5)).all())
    assert bool((a.translation.norm(dim=1) <= 1.0 + 1e-6).all())
    assert d.std() > 0.1 and j.max() > 0.2  # random magnitudes that do reach the budget
    edge = sample_params(16, size, generator=torch.Generator().manual_seed(0), random_magnitude=False,
                         **{**kw, "translation": 0.0})
    on_budget = torch.isclose(displacement_norm(edge, size), torch.tensor(2.0)) | \
        torch.isclose(jacobian_norm(edge, size), torch.tensor(0.25))
    assert bool(on_budget.all())
    assert sample_params(2, size, generator=torch.Generator(), dtype=torch.float64, **kw).field.dtype == torch.float64


def test_params_container():
    p = _params(5, 3, seed=11)
    assert len(p) == 5 and p.grid_size == 3
    assert torch.equal(p[2].field, p.field[2:3]) and torch.equal(p[-1].translation, p.translation[-1:])
    assert len(DeformationParams.cat([p, p[1:3]])) == 7
    scaled = p.scale(torch.arange(5.0))
    torch.testing.assert_close(scaled.translation, p.translation * torch.arange(5.0)[:, None])
    assert p.to(torch.float64).field.dtype == torch.float64
    torch.testing.assert_close(displacement(p + p, (6, 6)), 2 * displacement(p, (6, 6)))


def test_coefficient_gradient_is_the_gradient_of_deform_at_zero():
    x = torch.rand(3, 2, 10, 10, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    w = torch.randn(2, 10, 10, generator=torch.Generator().manual_seed(13), dtype=torch.float64)
    zero = DeformationParams.zeros(3, 4, dtype=torch.float64).requires_grad_(True)
    (deform(x, zero) * w).sum().backward()
    got = coefficient_gradient(w.expand(3, 2, 10, 10), x, 4)
    torch.testing.assert_close(got.field.double(), zero.field.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.translation.double(), zero.translation.grad, rtol=1e-5, atol=1e-6)
    gain = first_step_gain(got, (10, 10), max_displacement=1.0, max_gradient=0.3, step_size=0.5)
    assert bool((gain > 0).all())


def test_maximize_deformation_stays_feasible_and_increases():
    x = F.interpolate(torch.rand(4, 1, 4, 4, generator=torch.Generator().manual_seed(14)), size=(12, 12),
                      mode="bilinear", align_corners=True)
    w = torch.randn(12, 12, generator=torch.Generator().manual_seed(15))

    def objective(z):
        return (z[:, 0] * w).sum((1, 2))

    theta = maximize_deformation(objective, x, max_displacement=1.0, max_gradient=0.3, steps=5, step_size=0.3,
                                 grid_size=3, max_translation=0.5)
    assert bool((displacement_norm(theta, (12, 12)) <= 1.0 + 1e-5).all())
    assert bool((jacobian_norm(theta, (12, 12)) <= 0.3 + 1e-5).all())
    assert bool((theta.translation.norm(dim=1) <= 0.5 + 1e-6).all())
    assert bool((objective(deform(x, theta)) > objective(x)).all())


def test_pick_examples():
    g = torch.Generator().manual_seed(0)
    rows = pick_examples(10, 4, g)
    assert rows.numel() == 4 and torch.equal(rows, rows.sort().values) and rows.unique().numel() == 4
    assert torch.equal(pick_examples(3, 8, g), torch.arange(3))


def test_bfloat16_close_to_float32():
    x = torch.rand(2, 1, 12, 12, generator=torch.Generator().manual_seed(16))
    p = _params(2, 3, seed=17, scale=0.5)
    out = deform(x.bfloat16(), p)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), deform(x, p), rtol=0, atol=2e-2)


def test_bad_input():
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(InputError, match=r"field has shape \(2, 3, 4, 4\)"):
        DeformationParams(torch.zeros(2, 3, 4, 4), torch.zeros(2, 2))
    with pytest.raises(InputError, match=r"translation has shape \(3, 2\)"):
        DeformationParams(torch.zeros(2, 2, 4, 4), torch.zeros(3, 2))
    with pytest.raises(InputError, match="float images"):
        deform(x.to(torch.uint8), DeformationParams.zeros(2))
    with pytest.raises(InputError, match="float images"):
        deform(x[0], DeformationParams.zeros(2))
    with pytest.raises(InputError, match=r"\(2, 2, 8, 8\) is needed"):
        deform(x, DeformationParams.zeros(3))
    with pytest.raises(ConfigurationError, match="padding_mode='reflection'"):
        deform(x, DeformationParams.zeros(2), padding_mode="reflection")
    with pytest.raises(InputError, match="at least 2x2"):
        deform(torch.rand(1, 1, 1, 8), DeformationParams.zeros(1))
    kw = dict(grid_size=4, generator=torch.Generator())
    with pytest.raises(ConfigurationError, match=r"max_displacement=-1.0 is out of range; it must be >= 0"):
        sample_params(2, (8, 8), max_displacement=-1.0, max_gradient=0.1, **kw)
    with pytest.raises(ConfigurationError, match="max_gradient=nan is not finite"):
        sample_params(2, (8, 8), max_displacement=1.0, max_gradient=float("nan"), **kw)
    with pytest.raises(ConfigurationError, match="max_gradient=-0.5 is out of range"):
        project_params(DeformationParams.zeros(2), (8, 8), 1.0, -0.5)
    with pytest.raises(InputError, match="not a CPU torch.Generator"):
        sample_params(2, (8, 8), max_displacement=1.0, max_gradient=0.1, grid_size=4, generator=None)
    with pytest.raises(ConfigurationError, match="method='jvp'"):
        tangent_vectors(x, DeformationParams.zeros(2), method="jvp")
