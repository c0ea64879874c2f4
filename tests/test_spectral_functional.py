"""rkhsreg.functional.spectral: power iteration, conv operator norms, per-layer norms, Lipschitz bounds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rkhsreg import ConfigurationError, InputError
from rkhsreg.functional.lipschitz import lipschitz_upper_bound
from rkhsreg.functional.spectral import (_conv_operator, conv_operator_norm, layer_input_shapes,
                                         layer_spectral_norms, power_iteration, reshaped_weight)
from rkhsreg import Normalize



CONV = {1: F.conv1d, 2: F.conv2d}


def dense_conv(weight: torch.Tensor, shape: tuple[int, ...], **kw) -> torch.Tensor:
    """The conv as a dense (out_numel × in_numel) matrix, applied to the identity basis of the input."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=weight.dtype).reshape(n, *shape)
    return CONV[weight.dim() - 2](basis, weight, **kw).reshape(n, -1).T


def dense_module(module: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """Dense matrix of a linear module (bias removed) on inputs of ``shape``."""
    n = math.prod(shape)
    basis = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    with torch.no_grad():
        out = module(basis) - module(torch.zeros(1, *shape, dtype=torch.float64))
    return out.reshape(n, -1).T


def top_sv(matrix: torch.Tensor) -> float:
    return float(torch.linalg.svdvals(matrix)[0])


def with_spectrum(rows: int, cols: int, values: list[float], seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u, _ = torch.linalg.qr(torch.randn(rows, rows, generator=g, dtype=torch.float64))
    v, _ = torch.linalg.qr(torch.randn(cols, cols, generator=g, dtype=torch.float64))
    k = len(values)
    return u[:, :k] @ torch.diag(torch.tensor(values, dtype=torch.float64)) @ v[:, :k].T


# --------------------------------------------------------------------------------- power iteration
@pytest.mark.parametrize("shape", [(7, 5), (5, 9), (8, 3, 3, 3), (4, 2, 5)])
def test_power_iteration_matches_svdvals(shape):
    weight = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    rng = torch.get_rng_state()
    sigma, u, v = power_iteration(weight, iters=300)
    assert torch.equal(rng, torch.get_rng_state()), "the random start used the global RNG"
    expected = top_sv(reshaped_weight(weight))
    assert sigma.item() == pytest.approx(expected, rel=1e-3)
    assert u.shape == (shape[0],) and v.shape == (math.prod(shape[1:]),)
    assert u.norm().item() == pytest.approx(1.0, rel=1e-5) and v.norm().item() == pytest.approx(1.0, rel=1e-5)


def test_power_iteration_random_start_comes_from_the_generator():
    weight = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    a = power_iteration(weight, iters=0, generator=torch.Generator().manual_seed(5))
    b = power_iteration(weight, iters=0, generator=torch.Generator().manual_seed(5))
    c = power_iteration(weight, iters=0, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    assert torch.equal(power_iteration(weight, iters=0)[1], power_iteration(weight, iters=0)[1])  # fixed default


def test_warm_start_converges_in_fewer_iterations():
    weight = with_spectrum(12, 10, [1.0, 0.9, 0.5, 0.3])
    previous = weight + 1e-3 * torch.randn(12, 10, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, u0, v0 = power_iteration(previous, iters=500)
    warm = abs(power_iteration(weight, u0, v0, iters=1)[0].item() - 1.0)
    cold = [abs(power_iteration(weight, iters=n)[0].item() - 1.0) for n in (1, 3, 5)]
    assert warm < 1e-5
    assert all(warm < c for c in cold), (warm, cold)


def test_tol_stops_early_and_keeps_accuracy():
    weight = with_spectrum(9, 9, [2.0, 1.0, 0.5])  # fast convergence (ratio 1/4 per iteration)
    sigma, _, _ = power_iteration(weight, iters=1000, tol=1e-10)
    assert sigma.item() == pytest.approx(2.0, rel=1e-8)


def test_sigma_gradient_is_u_v_transpose_and_matches_finite_differences():
    weight = torch.randn(5, 2, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    weight.requires_grad_(True)
    sigma, u, v = power_iteration(weight, iters=500)
    sigma.backward()
    torch.testing.assert_close(weight.grad, torch.outer(u, v).reshape(weight.shape))
    direction = torch.randn(weight.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    h = 1e-5
    with torch.no_grad():
        plus = top_sv(reshaped_weight(weight + h * direction))
        minus = top_sv(reshaped_weight(weight - h * direction))
    assert (weight.grad * direction).sum().item() == pytest.approx((plus - minus) / (2 * h), rel=1e-5)


def test_sigma_is_not_differentiable_under_no_grad_and_vectors_are_detached():
    weight = torch.randn(4, 3, requires_grad=True)
    sigma, u, v = power_iteration(weight)
    assert sigma.requires_grad and not u.requires_grad and not v.requires_grad
    with torch.no_grad():
        assert not power_iteration(weight)[0].requires_grad


def test_power_iteration_low_precision_is_computed_in_float32():
    weight = torch.randn(6, 4, generator=torch.Generator().manual_seed(0))
    sigma, u, _ = power_iteration(weight.bfloat16(), iters=100)
    assert sigma.dtype == torch.float32 and u.dtype == torch.float32
    assert sigma.item() == pytest.approx(top_sv(weight), rel=1e-2)


def test_power_iteration_rejects_bad_start_vectors_and_iters():
    weight = torch.randn(4, 3)
    with pytest.raises(InputError, match="u has shape"):
        power_iteration(weight, u=torch.ones(5))
    with pytest.raises(ConfigurationError, match="iters=-1"):
        power_iteration(weight, iters=-1)
    with pytest.raises(InputError, match="rank >= 2"):
        reshaped_weight(torch.ones(3))


# --------------------------------------------------------------------------------- conv operator
CONV2D_CASES = [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=1, padding=1, dilation=1, groups=1),
    dict(stride=2, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=2),
    dict(stride=2, padding=2, dilation=2, groups=1),
]


@pytest.mark.parametrize("kw", CONV2D_CASES)
@pytest.mark.parametrize("shape, solver", [((2, 5, 5), "power"), ((2, 5, 5), "lanczos"), ((2, 6, 5), "lanczos")])
def test_conv_operator_norm_matches_dense_matrix(kw, shape, solver):
    g = torch.Generator().manual_seed(0)
    weight = torch.randn(4, 2 // kw["groups"], 3, 3, dtype=torch.float64, generator=g)
    rng = torch.get_rng_state()
    sigma, v = conv_operator_norm(weight, shape, iters=300 if solver == "power" else 100, tol=1e-10,
                                  solver=solver, **kw)
    assert torch.equal(rng, torch.get_rng_state()), "the random start used the global RNG"
    expected = top_sv(dense_conv(weight, shape, **kw))
    assert sigma.item() == pytest.approx(expected, rel=1e-3 if solver == "power" else 1e-8)
    assert sigma.item() <= expected * (1 + 1e-9)  # both approach from below
    assert v.shape == shape


def test_lanczos_converges_where_power_iteration_is_slow():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False).double()  # clustered top singular values
    shape = (1, 12, 12)
    expected = top_sv(dense_module(conv, shape))
    power, _ = conv_operator_norm(conv, shape, iters=60)
    lanczos, _ = conv_operator_norm(conv, shape, iters=60, solver="lanczos")
    assert abs(lanczos.item() - expected) < 1e-8 * expected
    assert abs(power.item() - expected) > 100 * abs(lanczos.item() - expected)


@pytest.mark.parametrize("kw", CONV2D_CASES)
def test_conv_adjoint_is_the_transpose(kw):
    shape = (2, 6, 5)  # odd/even sizes: stride 2 needs output_padding 1 on one side
    g = torch.Generator().manual_seed(1)
    weight = torch.randn(4, 2 // kw["groups"], 3, 3, dtype=torch.float64, generator=g)
    op = _conv_operator(weight, shape, kw["stride"], kw["padding"], kw["dilation"], kw["groups"], "zeros")
    x = torch.randn(1, *shape, dtype=torch.float64, generator=g)
    y = torch.randn(op.forward(x, weight).shape, dtype=torch.float64, generator=g)
    back = op.adjoint(y, weight)
    assert back.shape == x.shape
    assert (op.forward(x, weight) * y).sum().item() == pytest.approx((x * back).sum().item(), rel=1e-10)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("module", [
    nn.Conv1d(2, 3, 3, stride=2, padding=1),
    nn.Conv1d(2, 3, 4, padding="same"),              # asymmetric padding
    nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"),
    nn.Conv2d(2, 3, 3, padding=1, padding_mode="circular"),
])
def test_conv_operator_norm_of_modules_matches_dense_matrix(module):
    module = module.double()
    shape = (2, 9) if isinstance(module, nn.Conv1d) else (2, 5, 5)
    sigma, _ = conv_operator_norm(module, shape, iters=100, tol=1e-10, solver="lanczos")
    assert sigma.item() == pytest.approx(top_sv(dense_module(module, shape)), rel=1e-8)


def test_conv_operator_norm_gradient_matches_dense_svd():
    g = torch.Generator().manual_seed(4)
    weight = torch.randn(3, 2, 3, 3, dtype=torch.float64, generator=g, requires_grad=True)
    dense = dense_conv(weight, (2, 4, 4), padding=1)
    top_right = torch.linalg.svd(dense.detach())[2][0]  # exact top right singular vector as the start
    sigma, _ = conv_operator_norm(weight, (2, 4, 4), padding=1, v=top_right, iters=0)
    (grad,) = torch.autograd.grad(sigma, weight)
    (expected,) = torch.autograd.grad(torch.linalg.matrix_norm(dense, ord=2), weight)
    assert sigma.item() == pytest.approx(top_sv(dense.detach()), rel=1e-12)
    torch.testing.assert_close(grad, expected, rtol=1e-9, atol=1e-12)


def test_conv_operator_norm_warm_start_and_rng():
    conv = nn.Conv2d(2, 3, 3, padding=1)
    rng = torch.get_rng_state()
    sigma, v = conv_operator_norm(conv, (2, 6, 6), iters=200)
    assert torch.equal(rng, torch.get_rng_state())
    again, v2 = conv_operator_norm(conv, (2, 6, 6), v=v, iters=0)
    assert again.item() == pytest.approx(sigma.item(), rel=1e-6)
    torch.testing.assert_close(v, v2)


def test_conv_operator_norm_errors():
    conv = nn.Conv2d(2, 3, 3)
    with pytest.raises(InputError, match="3 channels"):
        conv_operator_norm(conv, (3, 5, 5))
    with pytest.raises(InputError, match="receptive field"):
        conv_operator_norm(conv, (2, 2, 2))
    with pytest.raises(ConfigurationError, match="stride=2 given with a module"):
        conv_operator_norm(conv, (2, 5, 5), stride=2)
    with pytest.raises(InputError, match="not an nn.Conv1d/2d/3d"):
        conv_operator_norm(nn.Linear(3, 2), (3,))
    with pytest.raises(ConfigurationError, match="input_shape"):
        conv_operator_norm(conv, (2, 0, 5))
    with pytest.raises(ConfigurationError, match="solver='svd'"):
        conv_operator_norm(conv, (2, 5, 5), solver="svd")


# --------------------------------------------------------------------------------- per-layer norms
def tiny_cnn() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Conv2d(3, 2, 3, stride=2), nn.Flatten(), nn.Linear(8, 3)).double()


def test_layer_spectral_norms_reshape_and_operator():
    model = tiny_cnn()
    model.train()
    buffers = [b.clone() for b in model.buffers()]
    reshaped = layer_spectral_norms(model)
    assert set(reshaped) == {"0", "3", "5"}
    for name in reshaped:
        weight = dict(model.named_modules())[name].weight.detach()
        assert reshaped[name] == pytest.approx(top_sv(reshaped_weight(weight)), rel=1e-6)
    state: dict = {}
    rng = torch.get_rng_state()
    operator = layer_spectral_norms(model, method="operator", input_shape=(1, 6, 6), state=state, tol=1e-10)
    assert torch.equal(rng, torch.get_rng_state())
    assert all(m.training for m in model.modules()), "modes not restored"
    for a, b in zip(buffers, model.buffers()):
        assert torch.equal(a, b), "BatchNorm statistics changed"
    assert set(state) == {"0", "3"} and state["3"].shape == (3, 6, 6)
    assert operator["0"] == pytest.approx(top_sv(dense_conv(model[0].weight.detach(), (1, 6, 6), padding=1)),
                                          rel=1e-6)
    assert operator["3"] == pytest.approx(top_sv(dense_conv(model[3].weight.detach(), (3, 6, 6), stride=2)),
                                          rel=1e-6)
    assert operator["5"] == pytest.approx(reshaped["5"], rel=1e-12)  # Linear: operator == reshaped


def test_layer_input_shapes_and_errors():
    model = tiny_cnn()
    assert layer_input_shapes(model, (1, 6, 6)) == {"0": (1, 6, 6), "3": (3, 6, 6), "5": (8,)}
    with pytest.raises(ConfigurationError, match="input_shape=None"):
        layer_spectral_norms(model, method="operator")
    with pytest.raises(ConfigurationError, match="method='svd'"):
        layer_spectral_norms(model, method="svd")
    shared = nn.Conv2d(1, 1, 3, padding=1)
    twice = nn.Sequential(shared, nn.AvgPool2d(2), shared)
    with pytest.raises(InputError, match="two different|input shapes"):
        layer_input_shapes(twice, (1, 4, 4))


# --------------------------------------------------------------------------------- Lipschitz bound
def test_lipschitz_of_a_linear_chain_is_the_product_of_svd_norms():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))
    expected = top_sv(model[0].weight.detach()) * top_sv(model[2].weight.detach())
    assert lipschitz_upper_bound(model, (5,)) == pytest.approx(expected, rel=1e-6)


def test_batchnorm_folding_matches_an_explicitly_folded_conv():
    torch.manual_seed(0)
    conv, bn = nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_var.copy_(torch.tensor([0.5, 2.0, 4.0]))
        bn.weight.copy_(torch.tensor([1.5, -0.3, 0.7]))
    folded = nn.Conv2d(2, 3, 3, padding=1)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * (bn.weight / torch.sqrt(bn.running_var + bn.eps)).view(-1, 1, 1, 1))
    model = nn.Sequential(conv, bn)
    model.train()
    bound = lipschitz_upper_bound(model, (2, 5, 5))
    assert model.training and bn.training
    assert bound == pytest.approx(lipschitz_upper_bound(nn.Sequential(folded), (2, 5, 5)), rel=1e-6)
    unfolded = lipschitz_upper_bound(model, (2, 5, 5), fold_batchnorm=False)
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).abs().max().item()
    assert unfolded == pytest.approx(lipschitz_upper_bound(nn.Sequential(conv), (2, 5, 5)) * scale, rel=1e-6)
    assert unfolded >= bound


@pytest.mark.parametrize("pool", [nn.AvgPool2d(2), nn.AvgPool2d(3, stride=2, padding=1),
                                  nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
                                  nn.AdaptiveAvgPool2d((2, 3))])
def test_average_pooling_constant_is_its_exact_norm(pool):
    shape = (1, 5, 7)
    bound = lipschitz_upper_bound(nn.Sequential(pool), shape)
    assert bound == pytest.approx(top_sv(dense_module(pool, shape)), rel=1e-9)
    assert bound <= 1.0 + 1e-12


@pytest.mark.parametrize("activation, constant", [
    (nn.ReLU(), 1.0), (nn.LeakyReLU(0.2), 1.0), (nn.LeakyReLU(3.0), 3.0), (nn.ELU(2.0), 2.0), (nn.Tanh(), 1.0),
    (nn.Sigmoid(), 0.25), (nn.GELU(), 1.129), (nn.SiLU(), 1.1), (nn.Softplus(), 1.0), (nn.Identity(), 1.0),
])
def test_activation_constants_are_tight_bounds_of_the_derivative(activation, constant):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), activation)
    bound = lipschitz_upper_bound(model, (3,))
    assert bound == pytest.approx(top_sv(model[0].weight.detach().double()) * constant, rel=1e-9)
    x = torch.linspace(-8, 8, 160001, dtype=torch.float64, requires_grad=True)
    (slope,) = torch.autograd.grad(activation(x).sum(), x)
    assert constant * (1 - 1e-3) <= slope.abs().max().item() <= constant


def test_max_pooling_constant_is_sqrt_of_the_overlap_and_is_attained():
    pool = nn.MaxPool2d(3, stride=1, padding=1)  # every input lies in up to 9 windows
    assert lipschitz_upper_bound(nn.Sequential(pool), (1, 5, 5)) == pytest.approx(3.0)
    assert lipschitz_upper_bound(nn.Sequential(nn.MaxPool2d(2)), (1, 6, 6)) == pytest.approx(1.0)
    assert lipschitz_upper_bound(nn.Sequential(nn.AdaptiveMaxPool1d(3)), (1, 7)) == pytest.approx(math.sqrt(2))
    x = torch.zeros(1, 1, 5, 5)
    x[0, 0, 2, 2] = 1.0
    y = x.clone()
    y[0, 0, 2, 2] = 1.5  # the centre is the max of all 9 windows: each output moves by 0.5
    assert ((pool(y) - pool(x)).norm() / (y - x).norm()).item() == pytest.approx(3.0)


def test_lipschitz_bound_dominates_empirical_ratios():
    torch.manual_seed(0)
    model = nn.Sequential(Normalize(0.5, 0.25), nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.AvgPool2d(2), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                          nn.MaxPool2d(3, stride=1, padding=1), nn.Tanh(), nn.Flatten(), nn.Dropout(0.5),
                          nn.Linear(16, 3), nn.Sigmoid())
    with torch.no_grad():
        model(torch.randn(32, 1, 8, 8))  # non-trivial running statistics
    bound = lipschitz_upper_bound(model, (1, 8, 8))
    model.eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(256, 1, 8, 8, generator=g)
    y = x + 1e-2 * torch.randn(256, 1, 8, 8, generator=g)
    with torch.no_grad():
        ratios = (model(x) - model(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert 0 < ratios.max().item() <= bound


class _Scale(nn.Module):
    """A user's layer the bound cannot know, declaring its constant through the protocol."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return x * self.factor

    def lipschitz_constant(self) -> float:
        return abs(self.factor)


def test_layers_declare_their_own_lipschitz_constant():
    torch.manual_seed(0)
    linear = nn.Linear(4, 3)
    exact = float(torch.linalg.matrix_norm(linear.weight.detach().double(), ord=2))
    assert lipschitz_upper_bound(nn.Sequential(_Scale(-3.0), linear), (4,)) == pytest.approx(3.0 * exact)
    with pytest.raises(InputError, match="layer '0'.*lipschitz_constant\\(\\) returned nan"):
        lipschitz_upper_bound(nn.Sequential(_Scale(math.nan), linear), (4,))


@pytest.mark.parametrize("factory, shape, kwargs", [("rkhsreg.models:mnist_vgg5", (1, 28, 28), {"width": 8}),
                                                    ("rkhsreg.cifar_models:cifar_vgg11", (3, 32, 32), {"width": 8}),
                                                    ("rkhsreg.cifar_models:cifar_resnet18", (3, 32, 32), {})])
def test_the_library_image_models_are_bounded(factory, shape, kwargs):
    """Every image model the library ships is bounded (its normalisation layer declares 1/std; the ResNet's blocks
    are bounded as main path + shortcut)."""
    import importlib

    module, name = factory.split(":")
    torch.manual_seed(0)
    model = getattr(importlib.import_module(module), name)(**kwargs).eval()
    bound = lipschitz_upper_bound(model, shape, iters=100, tol=1e-6)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(64, *shape, generator=g)
    y = x + 1e-3 * torch.randn(64, *shape, generator=g)
    with torch.no_grad():
        ratios = (model(x) - model(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert 0 < ratios.max().item() <= bound and math.isfinite(bound)


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)) + x)


class EndResidual(Residual):
    def forward(self, x):
        return self.fc2(self.act(self.fc1(x))) + x


class OwnParameter(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.gain = nn.Linear(4, 4), nn.Parameter(torch.tensor(5.0))

    def forward(self, x):
        return self.fc(x) * self.gain


class Swish(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(x)


@pytest.mark.parametrize("model, match", [
    (Residual(), "layer 'fc2'.*not a chain"),
    (EndResidual(), "output is not the output of its last layer 'fc2'"),
    (nn.Sequential(nn.Linear(4, 4), Swish()), r"layer '1' \(type Swish\): its Lipschitz constant is unknown"),
    (OwnParameter(), r"layer '<model>' \(type OwnParameter\): it has parameters of its own"),
    (nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4, track_running_stats=False)), "no running statistics"),
])
def test_lipschitz_bound_refuses_what_it_cannot_bound(model, match):
    with pytest.raises(InputError, match=match):
        lipschitz_upper_bound(model, (4,))


class _Block(nn.Module):
    """act(main(x) + downsample(x)) in the torchvision/timm convention; ``sign`` -1 breaks it (a subtracted shortcut)."""

    def __init__(self, downsample: nn.Module | None = None, sign: float = 1.0) -> None:
        super().__init__()
        self.fc1, self.act1, self.fc2, self.act2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU()
        self.downsample, self.sign = downsample, sign

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        return self.act2(self.fc2(self.act1(self.fc1(x))) + self.sign * shortcut)


def _svd(layer: nn.Linear) -> float:
    return float(torch.linalg.matrix_norm(layer.weight.detach().double(), ord=2))


def test_residual_blocks_are_bounded_by_main_plus_shortcut():
    torch.manual_seed(0)
    identity, projected = _Block(), _Block(downsample=nn.Linear(4, 4))
    head = nn.Linear(4, 2)
    model = nn.Sequential(identity, projected, head)
    expected = ((_svd(identity.fc1) * _svd(identity.fc2) + 1.0)
                * (_svd(projected.fc1) * _svd(projected.fc2) + _svd(projected.downsample)) * _svd(head))
    assert lipschitz_upper_bound(model, (4,)) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(InputError, match=r"layer '0' \(type _Block\): it is not act\(main\(x\) \+ downsample"):
        lipschitz_upper_bound(nn.Sequential(_Block(sign=-1.0), head), (4,))


@pytest.mark.parametrize("source", ["timm", "torchvision"])
def test_a_resnet_is_bounded_and_certified(source):
    """A timm / torchvision ResNet-18 (BatchNorm statistics warmed): the bound dominates the ratios it must, and
    certified accuracy runs on it (a certified radius is never above the distance an attack finds)."""
    from rkhsreg.evaluation import certified_radii

    torch.manual_seed(0)
    if source == "timm":
        timm = pytest.importorskip("timm")
        model = timm.create_model("resnet18", num_classes=10)
    else:
        torchvision = pytest.importorskip("torchvision")
        model = torchvision.models.resnet18(num_classes=10)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.train()(torch.rand(16, 3, 32, 32, generator=g))   # non-trivial running statistics
    model.eval()
    bound = lipschitz_upper_bound(model, (3, 32, 32), iters=50, tol=1e-5)
    x = torch.rand(16, 3, 32, 32, generator=g)
    y = x + 1e-3 * torch.randn(16, 3, 32, 32, generator=g)
    with torch.no_grad():
        ratios = (model(x) - model(y)).flatten(1).norm(dim=1) / (x - y).flatten(1).norm(dim=1)
    assert 0 < ratios.max().item() <= bound and math.isfinite(bound)
    radii = certified_radii(model, x, model(x).argmax(1).detach(), lipschitz=bound)
    assert radii.shape == (16,) and bool((radii >= 0).all())


class _InPlaceResidual(nn.Module):
    """A residual block written with an in-place add and no ``downsample`` attribute: the trace alone sees a chain."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1, self.act1, self.fc2, self.act2 = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU()

    def forward(self, x):
        out = self.fc2(self.act1(self.fc1(x)))
        out += x
        return self.act2(out)


def test_an_in_place_residual_connection_is_not_taken_for_a_chain():
    with pytest.raises(InputError, match="not the composition of its layers"):
        lipschitz_upper_bound(nn.Sequential(_InPlaceResidual(), nn.Linear(4, 2)), (4,))


def test_the_bound_leaves_modes_and_batchnorm_statistics_alone():
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", num_classes=10).train()
    buffers = [b.clone() for b in model.buffers()]
    lipschitz_upper_bound(model, (3, 16, 16), iters=20, tol=1e-4)
    assert all(m.training for m in model.modules())
    assert all(torch.equal(a, b) for a, b in zip(buffers, model.buffers()))


def test_lipschitz_bound_refuses_weight_standardised_convs_and_reads_hook_weight_norm_after_its_forward():
    """A standardised conv's output ignores the raw weight's scale, so a bound read off it means nothing."""
    timm_layers = pytest.importorskip("timm.layers")
    torch.manual_seed(0)
    conv = timm_layers.StdConv2d(1, 4, 3, padding=1)
    model = nn.Sequential(conv, nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    x = torch.rand(3, 1, 8, 8)
    before = model(x)
    with torch.no_grad():
        conv.weight.mul_(10.0)                         # the function does not change (a raw-weight bound would) ...
    torch.testing.assert_close(model(x), before, rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError, match=r"layer '0' \(StdConv2d\) standardises its weight"):
        lipschitz_upper_bound(model, (1, 8, 8))        # ... so no bound may be read off the raw weight
    # hook-based weight_norm: .weight is recomputed by the traced forward, so the bound holds
    normed = nn.Sequential(nn.utils.weight_norm(nn.Conv2d(1, 4, 3, padding=1)), nn.ReLU(), nn.Flatten(),
                           nn.Linear(4 * 8 * 8, 3))
    with torch.no_grad():
        normed[0].weight_g.mul_(3.0)                   # the stale .weight is 3× too small until the next forward
    bound = lipschitz_upper_bound(normed, (1, 8, 8))
    weight = normed[0].weight_g * normed[0].weight_v / normed[0].weight_v.flatten(1).norm(dim=1)[:, None, None, None]
    assert torch.allclose(normed[0].weight, weight)
    z = torch.rand(256, 1, 8, 8)
    d = 1e-3 * torch.randn_like(z)
    with torch.no_grad():
        ratio = ((normed(z + d) - normed(z)).flatten(1).norm(dim=1) / d.flatten(1).norm(dim=1)).max()
    assert ratio <= bound
