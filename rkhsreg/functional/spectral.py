"""Spectral norms of linear and convolutional layers (Lipschitz bounds of whole chains: :mod:`.lipschitz`).

Why hand-written: ``torch.nn.utils.parametrizations.spectral_norm`` only estimates the norm of the
reshaped ``out × (in·k·k)`` matrix, only inside its own parametrization (the weight is replaced by
``W / σ`` at every forward), offers no clipping projection, and knows nothing of the operator norm
of a convolution as a linear map at a given input resolution, which is the only one that bounds the
layer's Lipschitz constant. Here every quantity is a plain function of a weight (or a module) with
explicit, resumable power-iteration vectors, so penalties, projections and evaluators share it.

Two norms of a convolution with weight ``W`` (out, in/groups, k…):

* ``reshaped``: σ_max of ``W.reshape(out, -1)`` (the paper's choice, cheap). It is *not* a bound on
  the conv's Lipschitz constant: with reshaped σ = 1 the true operator norms of the paper's networks
  are not 1 and can exceed it several-fold (compute them with ``method="operator"``).
* ``operator``: σ_max of the linear map ``x ↦ conv(x, W)`` on inputs of a fixed shape, computed by
  power iteration through ``conv`` and its adjoint ``conv_transpose`` (with the ``output_padding``
  that maps back to the exact input shape). The bias is ignored: an affine part does not change a
  Lipschitz constant.

Random starts always come from an explicit ``torch.Generator`` (default: a fixed-seed CPU one),
never from the global RNG.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.conv import _ConvNd

from rkhsreg._checks import check_choice, check_int, check_real, check_weights_used, eager
from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg._params import Interval, Tuple, validate_param
from rkhsreg.functional._context import restore_modes

__all__ = ["SPECTRAL_LAYERS", "reshaped_weight", "power_iteration", "conv_operator_norm", "spectral_layers",
           "layer_input_shapes", "layer_spectral_norms", "check_input_shape", "INPUT_SHAPE",
           "matching_vector"]

#: Layer types whose ``weight`` has a spectral norm here (transposed convolutions are not included).
SPECTRAL_LAYERS: tuple[type[nn.Module], ...] = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_LOW_PRECISION = (torch.float16, torch.bfloat16)
_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


# ----------------------------------------------------------------------------------------- helpers
def _compute_dtype(tensor: Tensor) -> torch.dtype:
    """float16/bfloat16 weights are handled in float32; other float dtypes as they are."""
    return torch.float32 if tensor.dtype in _LOW_PRECISION else tensor.dtype


def _unit(x: Tensor, eps: float) -> Tensor:
    return x / x.norm().clamp_min(eps)


def _random_unit(shape: Sequence[int], like: Tensor, generator: torch.Generator | None, eps: float) -> Tensor:
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    x = torch.randn(tuple(shape), generator=gen, device=gen.device, dtype=torch.float32)
    return _unit(x.to(device=like.device, dtype=like.dtype), eps)


def _warm(vector: Tensor | None, name: str, shape: Sequence[int], like: Tensor, eps: float) -> Tensor | None:
    """A given start vector, checked, reshaped and moved; ``None`` when absent or (numerically) zero."""
    if vector is None:
        return None
    numel = math.prod(shape)
    if not isinstance(vector, Tensor) or vector.numel() != numel:
        got = tuple(vector.shape) if isinstance(vector, Tensor) else type(vector).__name__
        raise InputError(f"{name} has shape {got}; a start vector of {numel} elements {tuple(shape)} is needed "
                         f"(pass None for a random start).")
    vector = vector.detach().reshape(tuple(shape)).to(device=like.device, dtype=like.dtype)
    norm = vector.norm()
    if not torch.isfinite(norm) or norm <= eps:
        return None
    return vector / norm


def _converged(new: Tensor, old: Tensor | None, tol: float | None) -> bool:
    return tol is not None and old is not None and bool((new - old).abs() <= tol * new)


def matching_vector(vector: Tensor | None, shape: Sequence[int]) -> Tensor | None:
    """Return ``vector`` if it has ``prod(shape)`` elements, else ``None``.

    Saved power-iteration vectors of a layer that was resized since (or saved by another method)
    are dropped, so a fresh random start replaces them instead of an error.
    """
    if isinstance(vector, Tensor) and vector.numel() == math.prod(shape):
        return vector
    return None


#: ``input_shape``: one example's shape without the batch (rkhsreg._params declaration).
INPUT_SHAPE = Tuple(Interval(Integral, 1, None), length=(1, None),
                    doc="one example's shape without the batch dimension, e.g. (1, 28, 28) for (C, H, W)")


def check_input_shape(value: Any, name: str = "input_shape") -> tuple[int, ...]:
    """Return ``value`` as a tuple of positive ints: one example's shape without the batch, e.g. (1, 28, 28)."""
    return validate_param(name, value, INPUT_SHAPE)


# ------------------------------------------------------------------------------ reshaped matrices
def reshaped_weight(weight: Tensor) -> Tensor:
    """The weight as an ``out × (in·k·k)`` matrix (a view when possible).

    Example:
        >>> reshaped_weight(torch.zeros(8, 3, 3, 3)).shape
        torch.Size([8, 27])
    """
    if not isinstance(weight, Tensor) or weight.dim() < 2:
        got = tuple(weight.shape) if isinstance(weight, Tensor) else type(weight).__name__
        raise InputError(f"weight has shape {got}; a weight of rank >= 2 (out, in, ...) is needed.")
    return weight.reshape(weight.shape[0], -1)


def power_iteration(weight: Tensor, u: Tensor | None = None, v: Tensor | None = None, *, iters: int = 2,
                    eps: float = 1e-12, tol: float | None = None, generator: torch.Generator | None = None,
                    solver: str = "power") -> tuple[Tensor, Tensor, Tensor]:
    """Largest singular value of the reshaped weight by (warm-started) power iteration.

    Each iteration is ``v ← Wᵀu/‖Wᵀu‖, u ← Wv/‖Wv‖`` (the order of
    ``torch.nn.utils.spectral_norm``); the result ``σ = uᵀWv`` is differentiable w.r.t. ``weight``
    when autograd is on and ``weight`` requires grad, with ``u, v`` treated as constants, so
    ``∂σ/∂W = u vᵀ``. float16/bfloat16 weights are handled in float32.

    Args:
        weight: (out, in, ...) weight; reshaped to (out, in·…).
        u: left start vector (out,), e.g. from the previous call; ``None``: ``W v`` if ``v`` is
            given, else random.
        v: right start vector (in·…,).
        iters: iterations (>= 0); the maximum when ``tol`` is given.
        eps: floor of the norms divided by.
        tol: ``"power"``: stop early once the estimate changes by less than ``tol`` relatively (fast,
            but it stops early when the top singular values cluster); ``"lanczos"``: stop once the
            Ritz residual of ``WᵀW`` is below ``tol`` relatively (an accuracy reached).
        generator: source of a random start (``None``: a fixed-seed CPU generator); the global RNG
            is never used.
        solver: ``"power"`` (each iteration ``v ← Wᵀu``, ``u ← Wv``, normalised) or ``"lanczos"``
            (restarted Lanczos on ``WᵀW`` from ``v``: same products, far fewer of them to reach ``tol``
            on clustered spectra; what the spectral-norm projection uses).

    Returns:
        ``(sigma, u, v)``: a 0-dim tensor and the detached vectors to pass to the next call.

    Example:
        >>> sigma, u, v = power_iteration(layer.weight, iters=20)       # doctest: +SKIP
        >>> sigma, u, v = power_iteration(layer.weight, u, v, iters=2)  # warm start, doctest: +SKIP
    """
    sigma, u, v, _ = _power_iteration(weight, u, v, iters=iters, eps=eps, tol=tol, generator=generator,
                                      solver=solver)
    return sigma, u, v


def _power_iteration(weight: Tensor, u: Tensor | None, v: Tensor | None, *, iters: int, eps: float,
                     tol: float | None, generator: torch.Generator | None,
                     solver: str) -> tuple[Tensor, Tensor, Tensor, bool]:
    """:func:`power_iteration` and whether it reached ``tol`` (``False`` when ``iters`` ran out first, or without
    ``tol``): what the spectral-norm projection warns about, at no extra product."""
    iters = check_int("iters", iters, low=0)
    if tol is not None:
        tol = check_real("tol", tol, low=0.0, strict=True)
    solver = check_choice("solver", solver, ("power", "lanczos"))
    matrix = reshaped_weight(weight)
    matrix = matrix.to(_compute_dtype(matrix))
    with torch.no_grad():
        w = matrix.detach()
        scale = w.abs().amax() if w.numel() else None
        extreme = scale is not None and bool(torch.isfinite(scale)) and not 1e-4 < float(scale) < 1e4
        if extreme and float(scale) > 0:
            w = w / scale  # iterate on W/max|W|: same vectors, no overflow of ‖Wv‖² (σ ≥ 1e19 gave u = 0, σ = 0)
        u = _warm(u, "u", (w.shape[0],), w, eps)
        v = _warm(v, "v", (w.shape[1],), w, eps)
        if solver == "lanczos" and iters > 0:
            if v is None:
                v = _unit(w.t() @ u, eps) if u is not None else _random_unit((w.shape[1],), w, generator, eps)
            v, converged = _lanczos_top(lambda x: w.t() @ (w @ x), v, iters, tol, eps)
            u = _unit(w @ v, eps)
            iters = 0
        else:
            converged = False
        if u is None:
            u = _unit(w @ v, eps) if v is not None else _random_unit((w.shape[0],), w, generator, eps)
        estimate = None
        for _ in range(iters):
            v = _unit(w.t() @ u, eps)
            wv = w @ v
            new = wv.norm()
            u = wv / new.clamp_min(eps)
            if _converged(new, estimate, tol):
                converged = True
                break
            estimate = new
        if v is None:
            v = _unit(w.t() @ u, eps)
    sigma = torch.dot(u, matrix @ v)
    return sigma, u, v, converged


def _lanczos_top(apply, v: Tensor, iters: int, tol: float | None, eps: float,
                 krylov: int = 32) -> tuple[Tensor, bool]:
    """Top eigenvector of the symmetric PSD map ``apply`` (here ``AᵀA``) by restarted Lanczos.

    Cycles of at most ``krylov`` steps with full reorthogonalisation, each restarted from the top
    Ritz vector; ``iters`` products in all. Stops once the top Ritz pair's residual
    ``‖apply(y) − θy‖ ≤ tol·θ`` — a rule on the accuracy reached, not on the change of θ between two
    steps, which stalls long before convergence when the top eigenvalues cluster (a stopping rule on
    the change let the spectral-norm projection overshoot its radius by up to 1e-2 on timm ResNet-18).
    Returns the unit Ritz vector (shape of ``v``) and whether it converged (``False``: ``iters`` products ran out
    before the residual reached ``tol``).
    """
    shape, x, done, converged = v.shape, v.reshape(-1), 0, False
    while done < iters:
        steps = min(krylov, iters - done, x.numel())
        basis = torch.empty(steps, x.numel(), dtype=x.dtype, device=x.device)
        basis[0] = _unit(x, eps)
        alphas: list[Tensor] = []
        betas: list[Tensor] = []
        converged = False
        for j in range(steps):
            w = apply(basis[j].reshape(shape)).reshape(-1)
            done += 1
            alphas.append(torch.dot(basis[j], w))
            q = basis[: j + 1]
            w = w - q.T @ (q @ w)
            w = w - q.T @ (q @ w)  # twice is enough (Kahan–Parlett)
            beta = w.norm()
            tri = torch.diag(torch.stack(alphas))
            if betas:
                off = torch.stack(betas)
                tri = tri + torch.diag(off, 1) + torch.diag(off, -1)
            evals, evecs = torch.linalg.eigh(tri)
            theta, s_top = evals[-1], evecs[:, -1]
            residual = beta * s_top[-1].abs()  # ‖apply(y) − θy‖ of the top Ritz pair (θ, y)
            converged = bool(beta <= eps * theta.abs().clamp_min(eps)) or (
                tol is not None and bool(residual <= tol * theta))
            if converged or j + 1 == steps:
                break
            betas.append(beta)
            basis[j + 1] = w / beta
        x = _unit(s_top @ basis[: len(alphas)], eps)
        if converged:
            break
    return x.reshape(shape), converged


# ------------------------------------------------------------------------------ conv operators
@dataclass
class _ConvOperator:
    """``x ↦ conv(x, W)`` on inputs of shape ``in_shape`` (batch 1) and its adjoint."""

    dim: int
    in_shape: tuple[int, ...]
    stride: tuple[int, ...]
    padding: tuple[int, ...]
    dilation: tuple[int, ...]
    groups: int
    pad: list[int] | None          # explicit F.pad amounts (asymmetric 'same' or a non-zero padding mode)
    pad_mode: str
    output_padding: tuple[int, ...] | None  # None: adjoint by autograd

    def forward(self, x: Tensor, weight: Tensor) -> Tensor:
        if self.pad is not None:
            x = F.pad(x, self.pad, mode=self.pad_mode)
        return _CONV[self.dim](x, weight, None, self.stride, self.padding, self.dilation, self.groups)

    def adjoint(self, y: Tensor, weight: Tensor) -> Tensor:
        if self.output_padding is not None:
            return _CONV_T[self.dim](y, weight, None, self.stride, self.padding, self.output_padding,
                                     self.groups, self.dilation)
        with torch.enable_grad():  # the map is linear: its vector-Jacobian product at any point is Aᵀy
            x = torch.zeros(self.in_shape, dtype=y.dtype, device=y.device, requires_grad=True)
            (grad,) = torch.autograd.grad(self.forward(x, weight), x, y)
        return grad


def _tuple(value: Any, dim: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dim


def _conv_config(module: nn.Module) -> dict[str, Any]:
    return {"stride": module.stride, "padding": module.padding, "dilation": module.dilation,
            "groups": module.groups, "padding_mode": module.padding_mode}


def _conv_operator(weight: Tensor, input_shape: Sequence[int], stride: Any, padding: Any, dilation: Any,
                   groups: int, padding_mode: str) -> _ConvOperator:
    dim = weight.dim() - 2
    if dim not in _CONV:
        raise InputError(f"weight has shape {tuple(weight.shape)}; a conv1d/2d/3d weight (out, in/groups, k...) "
                         "is needed.")
    shape = check_input_shape(input_shape)
    if len(shape) == dim + 2 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) != dim + 1:
        raise InputError(f"input_shape={shape!r} does not fit a conv{dim}d; pass (C, {', '.join('HWD'[:dim])}) "
                         "without the batch dimension.")
    groups = check_int("groups", groups)
    if shape[0] != weight.shape[1] * groups:
        raise InputError(f"input_shape={shape!r} has {shape[0]} channels; this conv takes "
                         f"{weight.shape[1] * groups} (weight {tuple(weight.shape)}, groups={groups}).")
    padding_mode = check_choice("padding_mode", padding_mode, ("zeros", "reflect", "replicate", "circular"))
    kernel, spatial = weight.shape[2:], shape[1:]
    stride, dilation = _tuple(stride, dim), _tuple(dilation, dim)
    if isinstance(padding, str):
        check_choice("padding", padding, ("valid", "same"))
        totals = [d * (k - 1) for d, k in zip(dilation, kernel)] if padding == "same" else [0] * dim
        pairs = [(t // 2, t - t // 2) for t in totals]
    else:
        pairs = [(p, p) for p in _tuple(padding, dim)]
    explicit = padding_mode != "zeros" or any(a != b for a, b in pairs)
    pad = [p for pair in reversed(pairs) for p in pair] if explicit else None
    conv_padding = (0,) * dim if explicit else tuple(a for a, _ in pairs)
    output_padding = []
    for size, k, s, d, (a, b) in zip(spatial, kernel, stride, dilation, pairs):
        span = size + a + b - d * (k - 1) - 1
        if span < 0:
            raise InputError(f"input_shape={shape!r} is smaller than the conv's receptive field "
                             f"(kernel {tuple(kernel)}, dilation {dilation}, padding {padding!r}).")
        output_padding.append(span % s)
    return _ConvOperator(dim, (1, *shape), stride, conv_padding, dilation, groups, pad,
                         "constant" if padding_mode == "zeros" else padding_mode,
                         None if explicit else tuple(output_padding))


def conv_operator_norm(module_or_weight: nn.Module | Tensor, input_shape: Sequence[int], *, stride: Any = None,
                       padding: Any = None, dilation: Any = None, groups: int | None = None,
                       padding_mode: str | None = None, v: Tensor | None = None, iters: int = 20,
                       tol: float | None = None, eps: float = 1e-12, generator: torch.Generator | None = None,
                       solver: str = "power") -> tuple[Tensor, Tensor]:
    """Operator norm of a convolution (1d/2d/3d) as a linear map on inputs of ``input_shape``.

    Power iteration on ``AᵀA`` with ``A = conv(·, W)`` and ``Aᵀ = conv_transpose(·, W)`` (zero
    padding; other padding modes and asymmetric ``'same'`` padding take the adjoint by autograd).
    The top singular values of a convolution cluster (neighbouring frequencies), so plain power
    iteration converges slowly from a cold start; ``solver="lanczos"`` runs restarted Lanczos on
    ``AᵀA`` instead (same matrix-vector products, far fewer of them; memory 32 input-sized vectors),
    which is what the one-shot functions below use. Warm-started calls (a few iterations per
    training step) are fine with either.
    The result ``σ = ‖A v‖`` is differentiable w.r.t. the weight when autograd is on and the weight
    requires grad (``v`` constant), like :func:`power_iteration`. The bias is ignored.

    Args:
        module_or_weight: an ``nn.Conv1d/2d/3d`` (its stride, padding, dilation, groups and padding
            mode are used) or a weight tensor (then pass those as keywords; defaults 1, 0, 1, 1, 'zeros').
        input_shape: one example's shape ``(C, *spatial)`` (a leading batch of 1 is accepted).
        stride: the conv's stride, only with a weight.
        padding: the conv's padding, only with a weight.
        dilation: the conv's dilation, only with a weight.
        groups: the conv's groups, only with a weight.
        padding_mode: the conv's padding mode, only with a weight.
        v: start vector of the input shape, e.g. the one returned by the previous call.
        iters: iterations (>= 0), i.e. products by ``AᵀA``; the maximum when ``tol`` is given.
        tol: stop early once ``σ`` changes by less than ``tol`` relatively (Lanczos: also once the
            Ritz residual is below ``tol`` relatively).
        eps: floor of the norms divided by.
        generator: source of a random start (``None``: a fixed-seed CPU generator).
        solver: ``"power"`` or ``"lanczos"``.

    Returns:
        ``(sigma, v)``: a 0-dim tensor and the detached unit vector of shape ``(C, *spatial)``.

    Example:
        >>> conv = nn.Conv2d(1, 8, 3, padding=1)
        >>> sigma, v = conv_operator_norm(conv, (1, 28, 28), iters=50)
        >>> sigma, v = conv_operator_norm(conv, (1, 28, 28), v=v, iters=2)  # warm start
    """
    sigma, v, _ = _conv_operator_norm(module_or_weight, input_shape, stride=stride, padding=padding,
                                      dilation=dilation, groups=groups, padding_mode=padding_mode, v=v,
                                      iters=iters, tol=tol, eps=eps, generator=generator, solver=solver)
    return sigma, v


def _conv_operator_norm(module_or_weight: nn.Module | Tensor, input_shape: Sequence[int], *, stride: Any,
                        padding: Any, dilation: Any, groups: int | None, padding_mode: str | None,
                        v: Tensor | None, iters: int, tol: float | None, eps: float,
                        generator: torch.Generator | None, solver: str) -> tuple[Tensor, Tensor, bool]:
    """:func:`conv_operator_norm` and whether it reached ``tol`` (``False`` when ``iters`` ran out first)."""
    settings = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups,
                "padding_mode": padding_mode}
    if isinstance(module_or_weight, nn.Module):
        if not isinstance(module_or_weight, _ConvNd) or module_or_weight.transposed:
            raise InputError(f"module_or_weight={type(module_or_weight).__name__} is not an nn.Conv1d/2d/3d; "
                             "use power_iteration for nn.Linear (its operator norm is the matrix norm).")
        given = sorted(k for k, val in settings.items() if val is not None)
        if given:
            raise ConfigurationError(f"{given[0]}={settings[given[0]]!r} given with a module; the module's own "
                                     "settings are used: pass the weight tensor instead to override them.")
        weight, settings = module_or_weight.weight, _conv_config(module_or_weight)
    else:
        weight = module_or_weight
        defaults = {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "padding_mode": "zeros"}
        settings = {k: defaults[k] if val is None else val for k, val in settings.items()}
    if not isinstance(weight, Tensor):
        raise InputError(f"module_or_weight={type(weight).__name__} is neither a conv module nor a weight tensor.")
    iters = check_int("iters", iters, low=0)
    if tol is not None:
        tol = check_real("tol", tol, low=0.0, strict=True)
    solver = check_choice("solver", solver, ("power", "lanczos"))
    op = _conv_operator(weight, input_shape, **settings)
    w_full = weight.to(_compute_dtype(weight))
    with torch.no_grad():
        w = w_full.detach()
        v = _warm(v, "v", op.in_shape, w, eps)
        if v is None:
            v = _random_unit(op.in_shape, w, generator, eps)
        converged = False
        if solver == "lanczos":
            v, converged = _lanczos_top(lambda x: op.adjoint(op.forward(x, w), w), v, iters, tol, eps)
        y = op.forward(v, w)
        estimate = y.norm()
        for _ in range(iters if solver == "power" else 0):
            v = _unit(op.adjoint(y, w), eps)
            y = op.forward(v, w)
            new = y.norm()
            done = _converged(new, estimate, tol)
            estimate = new
            if done:
                converged = True
                break
    if torch.is_grad_enabled() and w_full.requires_grad:
        sigma = (op.forward(v, w_full) * (y / estimate.clamp_min(eps))).sum()
    else:
        sigma = estimate
    return sigma, v.squeeze(0), converged


# ------------------------------------------------------------------------------ model-level tools
def spectral_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``(name, module)`` of every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` of ``model``, in registration order."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, SPECTRAL_LAYERS)]


@dataclass
class _Call:
    name: str
    module: nn.Module
    inputs: tuple[Any, ...]
    output: Any


def _trace(model: nn.Module, input_shape: Sequence[int]) -> tuple[list[_Call], Tensor, Any]:
    """One forward of ``zeros(1, *input_shape)`` under no_grad in eval mode; leaf calls in execution order."""
    shape = check_input_shape(input_shape)
    first = next(model.parameters(), None)
    device = first.device if first is not None else None
    dtype = first.dtype if first is not None and first.is_floating_point() else None
    x = torch.zeros(1, *shape, device=device, dtype=dtype)
    calls: list[_Call] = []

    def hook(name: str):
        def record(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
            calls.append(_Call(name, module, args, output))
        return record

    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if not any(m.children())]
    try:
        with torch.no_grad(), restore_modes(model):
            model.eval()
            try:
                out = model(x)
            except RuntimeError as exc:  # a shape error of the model's first layers, usually
                raise InputError(f"input_shape={shape!r}: the model fails on zeros(1, *input_shape) "
                                 f"({' '.join(str(exc).split())[:200]}); pass one example's shape without the "
                                 "batch dimension, e.g. (1, 28, 28) for (C, H, W).") from None
    finally:
        for handle in handles:
            handle.remove()
    return calls, x, out


def layer_input_shapes(model: nn.Module, input_shape: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """Per-example input shape of every spectral layer, found by one dummy forward (batch 1, eval, no_grad).

    Layers the forward does not reach are absent. Every submodule's mode is restored afterwards.

    Raises:
        InputError: a layer is applied at two different input shapes.

    Example:
        >>> layer_input_shapes(mnist_vgg5(), (1, 28, 28))["4"]  # doctest: +SKIP
        (64, 14, 14)
    """
    calls, _, _ = _trace(model, input_shape)
    shapes: dict[str, tuple[int, ...]] = {}
    for call in calls:
        if isinstance(call.module, SPECTRAL_LAYERS) and call.inputs and isinstance(call.inputs[0], Tensor):
            shape = tuple(call.inputs[0].shape[1:])
            if shapes.setdefault(call.name, shape) != shape:
                raise InputError(f"layer {call.name!r} is applied at input shapes {shapes[call.name]} and {shape}; "
                                 "the operator norm needs one resolution per layer.")
    return shapes


def _missing_layer(name: str, input_shape: Sequence[int]) -> InputError:
    return InputError(f"layer {name!r} is not reached by a forward of zeros(1, *{tuple(input_shape)!r}); "
                      "check input_shape, or leave unused layers out of the model.")


class InputShapeCache:
    """``layer_input_shapes(model, input_shape)`` computed once per model (recomputed for another model)."""

    def __init__(self, input_shape: Sequence[int] | None) -> None:
        self.input_shape = input_shape
        self._cached: tuple[Any, dict[str, tuple[int, ...]]] | None = None

    def __call__(self, model: nn.Module) -> dict[str, tuple[int, ...]]:
        if self._cached is None or self._cached[0]() is not model:
            self._cached = (weakref.ref(model), layer_input_shapes(model, self.input_shape))
        return self._cached[1]


def layer_spectral_norms(model: nn.Module, *, method: str = "reshape", input_shape: Sequence[int] | None = None,
                         state: dict[str, Tensor] | None = None, iters: int = 300, tol: float = 1e-7,
                         ) -> dict[str, float]:
    """σ of every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` weight, keyed by module name.

    ``method="reshape"`` gives the exact largest singular value of the reshaped weight (SVD).
    ``method="operator"`` gives the operator norm of each conv at the resolution it sees in a forward
    of ``zeros(1, *input_shape)`` (run under no_grad with every submodule in eval mode, modes
    restored), by restarted Lanczos to ``tol``; for ``nn.Linear`` the two coincide (exact SVD).

    Args:
        model: the network.
        method: ``"reshape"`` or ``"operator"``.
        input_shape: one example's shape, e.g. (1, 28, 28); required for ``"operator"``.
        state: optional dict of power-iteration vectors (operator method), read as warm starts and
            updated in place, so repeated calls are cheap.
        iters: maximum products by AᵀA per conv (operator method).
        tol: relative accuracy at which the iteration stops (operator method).

    Example:
        >>> layer_spectral_norms(mnist_vgg5(), method="operator", input_shape=(1, 28, 28))  # doctest: +SKIP
        {'1': 2.31, '4': 1.93, ..., '14': 0.71}
    """
    method = check_choice("method", method, ("reshape", "operator"))
    model = eager(model)   # a compiled model's layers keep their own names
    shapes: dict[str, tuple[int, ...]] = {}
    if method == "operator":
        if input_shape is None:
            raise ConfigurationError("input_shape=None is not allowed with method='operator'; pass one example's "
                                     "shape, e.g. input_shape=(1, 28, 28).")
        shapes = layer_input_shapes(model, input_shape)
    norms: dict[str, float] = {}
    layers = spectral_layers(model)
    check_weights_used(layers, "the spectral norm of its .weight is not the layer's", "")
    with torch.no_grad():
        for name, module in layers:
            weight = module.weight.detach()
            if method == "reshape" or isinstance(module, nn.Linear):
                matrix = reshaped_weight(weight)
                norms[name] = float(torch.linalg.matrix_norm(matrix.to(_compute_dtype(matrix)), ord=2))
                continue
            if name not in shapes:
                raise _missing_layer(name, input_shape)
            sigma, v = conv_operator_norm(module, shapes[name], v=None if state is None else state.get(name),
                                          iters=iters, tol=tol, solver="lanczos")
            if state is not None:
                state[name] = v
            norms[name] = float(sigma)
    return norms


# ------------------------------------------------------------------------------ Lipschitz bound
