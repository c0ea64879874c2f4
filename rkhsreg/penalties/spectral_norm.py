"""``spectral_norm``: the upper-bound penalty λ Σ_l σ_l² over every conv/linear weight."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_finite_weights, check_inputs, check_model, check_targets, check_weights_used
from rkhsreg._errors import ConfigurationError, InputError, InputShapeWarning
from rkhsreg._params import SEED, Boolean, Interval, OnlyWhen, Options
from rkhsreg._plugin import PassCount, Penalty
from rkhsreg.functional.spectral import (INPUT_SHAPE, InputShapeCache, conv_operator_norm, matching_vector,
                                         power_iteration, reshaped_weight, spectral_layers)

__all__ = ["SpectralNormPenalty"]

METHODS = ("reshape", "operator")


class SpectralNormPenalty(Penalty):
    """λ Σ_l σ_l², σ_l the spectral norm of every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` weight.

    The paper's variant (``method="reshape"``) takes σ of the reshaped ``out × (in·k·k)`` matrix by
    ``iterations`` warm-started power iterations per call (2 in the paper), or exactly by SVD with
    ``exact=True``. ``method="operator"`` takes the operator norm of each conv at the resolution it
    sees for inputs of ``input_shape`` (power iteration through conv / conv_transpose), which is what
    actually bounds the layer's Lipschitz constant; for ``nn.Linear`` both coincide.

    σ is differentiable w.r.t. the weights with the power-iteration vectors held constant
    (∂σ/∂W = u vᵀ). The vectors persist between calls, keyed by parameter name, and are saved by
    :meth:`state_dict`. ``inputs`` and ``targets`` are checked like every penalty's but not used:
    the penalty runs no forward or backward pass of the model (``last_passes`` is zero).

    Args:
        weight: λ_sn (>= 0), 0.01 in the paper.
        method: ``"reshape"`` (paper) or ``"operator"``.
        input_shape: one example's shape, e.g. (1, 28, 28); required for ``"operator"``.
        iterations: power iterations per call (>= 1).
        exact: use the exact SVD norm instead (``"reshape"`` only; about 2× a plain step on the
            paper's MNIST net on CPU).
        seed: seed of the generator that draws the first power-iteration vectors (the global RNG is
            never used).

    Example:
        >>> penalty = rkhsreg.create_penalty("spectral_norm", weight=0.01)
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)  # doctest: +SKIP
    """

    name = "spectral_norm"
    rkhs_bound = "upper"
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ"),
        "method": Options(METHODS),
        "input_shape": OnlyWhen("method", "operator", [None, INPUT_SHAPE]),
        "iterations": OnlyWhen("exact", False, Interval(Integral, 1, None), text="exact=False (power iteration)"),
        "exact": Boolean(),
        "seed": SEED,
    }

    def __init__(self, *, weight: float = 0.01, method: str = "reshape", input_shape: Sequence[int] | None = None,
                 iterations: int = 2, exact: bool = False, seed: int = 0) -> None:
        super().__init__(weight=weight)
        self.method = method    # every argument is checked against `parameters` before the body runs
        self.input_shape = input_shape
        if self.method == "operator" and self.input_shape is None:
            raise ConfigurationError("input_shape=None is not allowed with method='operator'; pass one example's "
                                     "shape without the batch dimension, e.g. input_shape=(1, 28, 28).")
        self.iterations = iterations
        if exact and self.method == "operator":
            raise ConfigurationError("exact=True is not allowed with method='operator'; the exact SVD is for "
                                     "method='reshape' only.")
        self.exact = exact
        self.seed = seed
        self._generator = torch.Generator().manual_seed(self.seed)
        self._vectors: dict[str, dict[str, torch.Tensor]] = {}
        self._input_shapes = InputShapeCache(self.input_shape)
        self._warned_shape = False

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """Σ_l σ_l² (unweighted), a scalar differentiable w.r.t. the layers' weights."""
        model = check_model(model)
        check_targets(targets, check_inputs(inputs), required=False)  # unused, but a wrong batch is a bug upstream
        if (self.method == "operator" and not self._warned_shape
                and tuple(inputs.shape[1:]) != tuple(self.input_shape)):
            self._warned_shape = True
            warnings.warn(f"spectral_norm: inputs have shape {tuple(inputs.shape[1:])} per example but "
                          f"input_shape={tuple(self.input_shape)!r}: the convolutions' operator norms are measured "
                          "at input_shape's resolution, not at the inputs'. Pass input_shape="
                          f"{tuple(inputs.shape[1:])!r} to measure them where the model trains; said once.",
                          InputShapeWarning, stacklevel=3)
        self.last_passes = PassCount(0.0, 0.0)
        layers = spectral_layers(model)
        if not layers:
            raise InputError("model has no nn.Linear / nn.Conv1d/2d/3d layer; the spectral-norm penalty needs one.")
        check_finite_weights(layers)
        check_weights_used(layers, "its spectral norm is not the layer's", "")
        total: torch.Tensor | None = None
        device = layers[0][1].weight.device.type
        with torch.autocast(device, enabled=False):  # σ of float32 weights in float32, also in a bf16/fp16 step
            for name, module in layers:
                sigma = self._sigma(model, name, module)
                total = sigma.square() if total is None else total + sigma.square().to(total.device)
        return total

    def _sigma(self, model: nn.Module, name: str, module: nn.Module) -> torch.Tensor:
        weight, key = module.weight, f"{name}.weight" if name else "weight"
        if self.exact:
            matrix = reshaped_weight(weight)
            return torch.linalg.matrix_norm(matrix.float() if matrix.dtype in (torch.float16, torch.bfloat16)
                                            else matrix, ord=2)
        saved = self._vectors.get(key, {})
        if self.method == "operator" and not isinstance(module, nn.Linear):
            shape = self._input_shapes(model).get(name)
            if shape is None:
                raise InputError(f"layer {name!r} is not reached by a forward of zeros(1, *{self.input_shape!r}); "
                                 "check input_shape.")
            v = saved.get("v")
            sigma, v = conv_operator_norm(module, shape, v=matching_vector(v, shape),
                                          iters=self.iterations, generator=self._generator)
            self._vectors[key] = {"v": v}
            return sigma
        rows = weight.shape[0]
        cols = weight.numel() // max(rows, 1)
        u, v = saved.get("u"), saved.get("v")
        sigma, u, v = power_iteration(weight, matching_vector(u, (rows,)), matching_vector(v, (cols,)),
                                      iters=self.iterations, generator=self._generator)
        self._vectors[key] = {"u": u, "v": v}
        return sigma

    def state_dict(self) -> dict[str, Any]:
        """Power-iteration vectors (keyed by parameter name) and the generator state."""
        return {"vectors": {k: {n: t.detach().clone() for n, t in d.items()} for k, d in self._vectors.items()},
                "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; missing keys keep their current value, unknown keys are ignored."""
        vectors = state.get("vectors")
        if vectors is not None:
            self._vectors = {k: {n: t.detach().clone() for n, t in d.items()} for k, d in vectors.items()}
        if state.get("generator") is not None:
            self._generator.set_state(state["generator"])

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "method": self.method, "input_shape": self.input_shape,
                "iterations": self.iterations, "exact": self.exact, "seed": self.seed}

