"""Lipschitz upper bound of a chain of layers and residual blocks: the product of per-layer constants.

Conv/Linear layers contribute their true operator norm (:func:`.spectral.conv_operator_norm`, Lanczos),
BatchNorm in eval mode is a diagonal scaling (folded into the preceding conv/linear when it follows one),
activations and pooling contribute their exact constants, and a layer may declare its own constant with a
``lipschitz_constant()`` method. Anything else is refused: a number that is not a bound must never be
reported as one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from rkhsreg._checks import check_int, check_real, check_weights_used
from rkhsreg._errors import InputError
from rkhsreg.functional._context import restore_modes
from rkhsreg.functional.spectral import SPECTRAL_LAYERS, _Call, _conv_config, _trace, _tuple, conv_operator_norm

__all__ = ["lipschitz_upper_bound"]


def _activation_constant(module: nn.Module) -> float | None:
    """Lipschitz constant of a pointwise or identity-like leaf (eval mode), ``None`` if unknown."""
    if isinstance(module, (nn.ReLU, nn.ReLU6, nn.Tanh, nn.Hardtanh, nn.Softsign, nn.Softplus, nn.Identity,
                           nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
                           nn.AlphaDropout, nn.FeatureAlphaDropout)):
        return 1.0  # 1-Lipschitz pointwise maps, reshapes, and dropout (identity in eval mode)
    if isinstance(module, nn.LeakyReLU):
        return max(1.0, abs(module.negative_slope))
    if isinstance(module, nn.ELU):
        return max(1.0, abs(module.alpha))
    if isinstance(module, nn.Sigmoid):
        return 0.25
    if isinstance(module, nn.Hardsigmoid):
        return 1.0 / 6.0
    # sup of the derivative, rounded up: GELU 1.12890 (both forms), SiLU 1.09984, Mish 1.08850, Hardswish 1.5
    constants = {nn.GELU: 1.129, nn.SiLU: 1.1, nn.Mish: 1.089, nn.Hardswish: 1.5}
    return constants.get(type(module))


def _pool_matrix_norm(pool1d, size: int, out: int, **kwargs: Any) -> float:
    """Exact ℓ2 norm of a 1-d (adaptive) average pooling of ``size`` inputs, from its dense matrix."""
    eye = torch.eye(size, dtype=torch.float64).unsqueeze(1)
    matrix = pool1d(eye, **kwargs)[:, 0, :]  # (size, out): column j is output j
    if matrix.shape[1] != out:
        raise RuntimeError(f"pooling produced {matrix.shape[1]} outputs, expected {out}")
    return float(torch.linalg.matrix_norm(matrix, ord=2))


def _overlap(windows: list[Tensor], size: int) -> int:
    """Largest number of windows (index tensors, -1 = outside) that contain one input index."""
    counts = torch.zeros(size, dtype=torch.long)
    for idx in windows:
        idx = idx[(idx >= 0) & (idx < size)].unique()
        counts[idx] += 1
    return int(counts.max()) if size else 0


def _pool_constant(name: str, module: nn.Module, inp: Tensor, out: Tensor) -> float | None:
    """Lipschitz constant of a pooling layer at the recorded shapes, ``None`` for other layers.

    Average poolings are linear and separable over the spatial dims (the divisor is a product of
    per-dim counts): their norm is the product of the exact norms of the 1-d pooling matrices
    (< 1 in general; 1/2 per dim for a 2×2 non-overlapping pooling). For max pooling,
    ``|max x_w − max y_w| ≤ max_{i∈w}|x_i − y_i|``, so ``‖P(x)−P(y)‖² ≤ m‖x−y‖²`` where ``m`` is the
    largest number of windows sharing one input: the constant is ``√m`` (1 when windows do not
    overlap).
    """
    kinds = {nn.AvgPool1d: 1, nn.AvgPool2d: 2, nn.AvgPool3d: 3, nn.MaxPool1d: 1, nn.MaxPool2d: 2,
             nn.MaxPool3d: 3, nn.AdaptiveAvgPool1d: 1, nn.AdaptiveAvgPool2d: 2, nn.AdaptiveAvgPool3d: 3,
             nn.AdaptiveMaxPool1d: 1, nn.AdaptiveMaxPool2d: 2, nn.AdaptiveMaxPool3d: 3}
    dim = kinds.get(type(module))
    if dim is None:
        return None
    sizes, outs = inp.shape[-dim:], out.shape[-dim:]
    result = 1.0
    if isinstance(module, (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d)):
        if getattr(module, "divisor_override", None):
            raise _layer_error(name, module, "divisor_override is not supported; drop it or bound the layer "
                                             "yourself")
        k, s, p = (_tuple(getattr(module, a), dim) for a in ("kernel_size", "stride", "padding"))
        for i in range(dim):
            result *= _pool_matrix_norm(F.avg_pool1d, sizes[i], outs[i], kernel_size=k[i], stride=s[i],
                                        padding=p[i], ceil_mode=module.ceil_mode,
                                        count_include_pad=module.count_include_pad)
    elif isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d)):
        for i in range(dim):
            result *= _pool_matrix_norm(F.adaptive_avg_pool1d, sizes[i], outs[i], output_size=outs[i])
    elif isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d)):
        k, s, p, d = (_tuple(getattr(module, a), dim) for a in ("kernel_size", "stride", "padding", "dilation"))
        for i in range(dim):
            starts = torch.arange(outs[i]) * s[i] - p[i]
            result *= math.sqrt(_overlap([starts + d[i] * t for t in range(k[i])], sizes[i]))
    else:  # adaptive max pooling: bins [floor(j·L/O), ceil((j+1)·L/O))
        for i in range(dim):
            size, n = sizes[i], outs[i]
            bins = [torch.arange((j * size) // n, -((-(j + 1) * size) // n)) for j in range(n)]
            counts = torch.zeros(size, dtype=torch.long)
            for b in bins:
                counts[b] += 1
            result *= math.sqrt(int(counts.max()))
    return result


def _batchnorm_scale(name: str, module: _BatchNorm) -> Tensor:
    """Per-channel factor γ/√(var+eps) of a BatchNorm in eval mode (float64)."""
    if module.running_var is None:
        raise _layer_error(name, module, "it has no running statistics (track_running_stats=False), so it "
                                         "normalises with batch statistics even in eval mode")
    scale = 1.0 / torch.sqrt(module.running_var.detach().double() + module.eps)
    if module.weight is not None:
        scale = scale * module.weight.detach().double()
    return scale


def _declared_constant(name: str, module: nn.Module) -> float:
    """A leaf's own ``lipschitz_constant()`` (the protocol for layers this module cannot know), checked."""
    try:
        value = float(module.lipschitz_constant())
    except (TypeError, ValueError) as exc:
        raise _layer_error(name, module, f"its lipschitz_constant() did not return a number ({exc})") from None
    if not math.isfinite(value) or value < 0:
        raise _layer_error(name, module, f"its lipschitz_constant() returned {value!r}; a finite number >= 0 "
                                         "is required")
    return value


def _layer_error(name: str, module: nn.Module, why: str) -> InputError:
    return InputError(f"cannot bound the Lipschitz constant of layer {name or '<model>'!r} "
                      f"(type {type(module).__name__}): {why}.")


def _same_tensor(a: Any, b: Any) -> bool:
    """``a`` is ``b`` or a view with the same elements (reshape/flatten inside forward)."""
    if a is b:
        return True
    return (isinstance(a, Tensor) and isinstance(b, Tensor) and a.numel() == b.numel() > 0
            and a.data_ptr() == b.data_ptr())


def _linear_norm(module: nn.Module, call: _Call, scale: Tensor | None, iters: int, tol: float) -> float:
    weight = module.weight.detach().double()
    if scale is not None:
        weight = weight * scale.to(weight.device).view(-1, *([1] * (weight.dim() - 1)))
    if isinstance(module, nn.Linear):
        return float(torch.linalg.matrix_norm(weight, ord=2))
    shape = tuple(call.inputs[0].shape[1:])
    sigma, _ = conv_operator_norm(weight, shape, iters=iters, tol=tol, solver="lanczos", **_conv_config(module))
    return float(sigma)


def lipschitz_upper_bound(model: nn.Module, input_shape: Sequence[int], *, fold_batchnorm: bool = True,
                          iters: int = 300, tol: float = 1e-9) -> float:
    """ℓ2 Lipschitz constant bound of a chain of layers: the product of the per-layer constants.

    The leaf modules are walked in execution order (recorded with forward hooks during one forward
    of ``zeros(1, *input_shape)``, under no_grad, every submodule in eval mode, modes restored).
    Per layer:

    * ``nn.Linear`` / ``nn.Conv1d/2d/3d``: exact matrix norm / operator norm at the recorded input
      resolution (restarted Lanczos in float64 to ``tol``); the bias is ignored.
    * BatchNorm (eval mode, running statistics): with ``fold_batchnorm`` and directly after a
      conv/linear, its per-channel scale γ/√(var+eps) is folded into that layer's weight (tighter);
      otherwise max |γ/√(var+eps)|.
    * ReLU, LeakyReLU (max(1, |slope|)), ELU, Tanh, Sigmoid (1/4), GELU, SiLU, Identity, Flatten,
      Dropout (identity in eval mode): known constants.
    * Average poolings (also adaptive): exact norm of the linear map (≤ 1; 1/2 for 2×2 pooling);
      max poolings: √(largest number of windows sharing an input), 1 when they do not overlap.
    * Any leaf with a ``lipschitz_constant()`` method (the protocol for layers of your own): the ℓ2
      Lipschitz constant it declares for eval mode. The library's input normalisation, ``rkhsreg.Normalize``
      (1 / min std; used by ``rkhsreg.models`` and ``rkhsreg.cifar_models``), declares its own, so
      ``nn.Sequential(Normalize(mean, std), net)`` is bounded by 1 / min std × the bound of ``net``.

    * Residual blocks in the torchvision/timm convention (a submodule with a ``downsample`` attribute
      computing ``act(main(x) + downsample(x))``, ``downsample`` None for the identity — timm and torchvision
      ``BasicBlock``/``Bottleneck``): (bound of the main path + bound of the shortcut) × the activation's
      constant, the structure checked on a random input first.

    The product is a valid bound only for such chains (``f = f_L ∘ … ∘ f_1``), and only as accurate
    as the converged iteration for the convs (a lower estimate of each factor, to ``tol``).
    The bound holds for the model in eval mode.

    Args:
        model: the network.
        input_shape: one example's shape, e.g. (1, 28, 28).
        fold_batchnorm: fold BatchNorm scales into the preceding conv/linear.
        iters: maximum products by AᵀA per conv.
        tol: relative accuracy at which the iteration stops.

    Returns:
        The bound, a float.

    Raises:
        InputError: a leaf of unknown Lipschitz constant, a module with its own parameters and
            submodules, or an execution order that is not a chain (residual connections,
            concatenations, operations in ``forward`` outside modules).

    Example:
        >>> lipschitz_upper_bound(mnist_vgg5(), (1, 28, 28))  # doctest: +SKIP
        0.37
    """
    iters = check_int("iters", iters, low=1)
    tol = check_real("tol", tol, low=0.0, strict=True)
    for name, module in model.named_modules():
        if any(module.children()) and next(module.parameters(recurse=False), None) is not None:
            raise _layer_error(name, module, "it has parameters of its own besides its submodules, used in a "
                                             "forward this function cannot see")
        if isinstance(module, _BatchNorm):
            _batchnorm_scale(name, module)  # refuses batch statistics before the dummy forward trips on them
    check_weights_used([(n, m) for n, m in model.named_modules() if isinstance(m, SPECTRAL_LAYERS)],
                       "a bound from .weight is no bound of the layer", "", hooks=False)
    calls, x, out = _trace(model, input_shape)
    blocks = _residual_blocks(model)
    units: list[_Call | tuple[str, nn.Module, list[_Call]]] = []
    for call in calls:
        block = next((b for b in blocks if _inside(call.module, b[1])), None)
        if block is None:
            units.append(call)
        elif units and isinstance(units[-1], tuple) and units[-1][1] is block[1]:
            units[-1][2].append(call)
        else:
            units.append((block[0], block[1], [call]))
    bound, previous, prev_name = _chain(units, x, "<input>", fold_batchnorm, iters, tol)
    if not _same_tensor(out, previous):
        raise InputError(f"cannot bound the Lipschitz constant of the model: its output is not the output of its "
                         f"last layer {prev_name!r}, so it is not a chain (e.g. a residual connection at the end).")
    _check_recomposition(model, units, x)
    return bound


def _close(got: Tensor, expected: Tensor) -> bool:
    return got.shape == expected.shape and float((got - expected).abs().max()) <= 1e-4 * (float(got.abs().max()) + 1)


def _check_recomposition(model: nn.Module, units: list, x: Tensor) -> None:
    """The model is the composition of the units it was bounded as, on a random input (eval mode, no side effect).

    The trace links layers by the tensors they pass, and an in-place operation between two layers (``out +=
    shortcut``) keeps the tensor: without this check such a residual connection would pass for a chain link.
    """
    probe = torch.randn(x.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64).to(x)
    with torch.no_grad(), restore_modes(model):
        model.eval()
        y = probe.clone()
        for unit in units:
            module, recorded = (unit[1], unit[2][0].inputs[0]) if isinstance(unit, tuple) else (unit.module,
                                                                                             unit.inputs[0])
            if y.shape != recorded.shape and y.numel() == recorded.numel():
                y = y.reshape(recorded.shape)     # a flatten/view between two layers, as the trace allowed
            y = module(y.clone())
        got = model(probe.clone())
    if got.shape != y.shape and got.numel() == y.numel():
        y = y.reshape(got.shape)
    if not _close(got, y):
        raise InputError("cannot bound the Lipschitz constant of the model: it is not the composition of its layers "
                         "in call order (checked on a random input) — an in-place residual connection or an "
                         "operation in forward outside modules; declare lipschitz_constant() on such blocks.")


def _residual_blocks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The outermost submodules following the torchvision/timm residual convention: a ``downsample`` attribute."""
    found: list[tuple[str, nn.Module]] = []
    for name, module in model.named_modules():
        if module is model or not any(module.children()) or not hasattr(module, "downsample"):
            continue
        if not any(_inside(module, outer) for _, outer in found):
            found.append((name, module))
    return found


def _inside(module: nn.Module, container: nn.Module) -> bool:
    return any(m is module for m in container.modules())


def _chain(units: list, start: Any, start_name: str, fold_batchnorm: bool, iters: int,
           tol: float) -> tuple[float, Any, str]:
    """Product of the constants of ``units`` (leaf calls or residual blocks), each fed the previous one's output."""
    bound, previous, prev_name, i = 1.0, start, start_name, 0
    while i < len(units):
        unit = units[i]
        if isinstance(unit, tuple):   # a residual block: (name, module, its leaf calls)
            name, block, block_calls = unit
            first = block_calls[0]
            if len(first.inputs) != 1 or not _same_tensor(first.inputs[0], previous):
                raise _layer_error(name, block, f"its input is not the output of the previous layer {prev_name!r}")
            bound *= _residual_constant(name, block, block_calls, fold_batchnorm, iters, tol)
            previous, prev_name = block_calls[-1].output, name
            i += 1
            continue
        call, module = unit, unit.module
        if len(call.inputs) != 1 or not _same_tensor(call.inputs[0], previous):
            hint = ("" if previous is not start else "; if forward transforms the input before its first layer (e.g. "
                    "normalises it), make that a layer: nn.Sequential(rkhsreg.Normalize(mean, std), net)")
            raise _layer_error(call.name, module, f"its input is not the output of the previous layer {prev_name!r}, "
                                                  "so the model is not a chain (residual connection, concatenation "
                                                  f"or an operation in forward outside modules){hint}")
        inp = call.inputs[0]
        if isinstance(module, SPECTRAL_LAYERS):
            nxt = units[i + 1] if i + 1 < len(units) else None
            scale = None
            if (fold_batchnorm and isinstance(nxt, _Call) and isinstance(nxt.module, _BatchNorm)
                    and len(nxt.inputs) == 1 and nxt.inputs[0] is call.output):
                scale = _batchnorm_scale(nxt.name, nxt.module)
                call = _Call(nxt.name, module, call.inputs, nxt.output)
                i += 1
            factor = _linear_norm(module, call, scale, iters, tol)
        elif isinstance(module, _BatchNorm):
            factor = float(_batchnorm_scale(call.name, module).abs().max())
        elif callable(getattr(module, "lipschitz_constant", None)):
            factor = _declared_constant(call.name, module)
        else:
            factor = _activation_constant(module)
            if factor is None:
                if not isinstance(inp, Tensor) or not isinstance(call.output, Tensor):
                    raise _layer_error(call.name, module, "it does not map one tensor to one tensor")
                factor = _pool_constant(call.name, module, inp, call.output)
            if factor is None:
                raise _layer_error(call.name, module, "its Lipschitz constant is unknown; replace it by a "
                                                      "supported layer or bound the model yourself")
        bound *= factor
        previous, prev_name = call.output, call.name
        i += 1
    return bound, previous, prev_name


def _residual_constant(name: str, block: nn.Module, calls: list[_Call], fold_batchnorm: bool, iters: int,
                       tol: float) -> float:
    """(Lip(main path) + Lip(shortcut)) · Lip(activation) of a block computing act(main(x) + downsample(x)).

    The structure is not taken from the names: the block is run on a random input and compared with
    ``act(main(x) + shortcut(x))`` recomposed from the modules it called (the main path's leaves in call
    order, ``downsample`` or the identity, the last leaf as the activation); a block that computes anything
    else (a squeeze-excitation gate, a scaled or subtracted shortcut) is refused.
    """
    shortcut = block.downsample
    in_short = [c for c in calls if shortcut is not None and _inside(c.module, shortcut)]
    main, last = [c for c in calls[:-1] if c not in in_short], calls[-1]
    act = _activation_constant(last.module)
    if act is None or not main or last in in_short:
        raise _layer_error(name, block, "it has a downsample attribute but does not end with a known activation "
                                        "of the sum of its main path and its shortcut")
    x = calls[0].inputs[0]
    probe = torch.randn(x.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64).to(x)
    with torch.no_grad(), restore_modes(block):
        block.eval()
        y = probe.clone()
        for c in main:
            y = c.module(y.clone())
        skip = probe.clone() if shortcut is None else shortcut(probe.clone())
        expected = last.module((y + skip).clone())
        got = block(probe.clone())
    if not _close(got, expected):
        raise _layer_error(name, block, "it is not act(main(x) + downsample(x)) with its leaves called in order "
                                        "(checked on a random input): bound it with lipschitz_constant() instead")
    main_bound, main_out, _ = _chain(main, x, f"{name} input", fold_batchnorm, iters, tol)
    short_bound = 1.0
    if shortcut is not None:
        short_bound, _, _ = _chain(in_short, x, f"{name} input", fold_batchnorm, iters, tol)
    return (main_bound + short_bound) * act
