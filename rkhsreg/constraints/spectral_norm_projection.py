"""``spectral_norm_projection``: after each optimiser step, make every conv/linear weight satisfy σ ≤ radius."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

from rkhsreg._checks import check_finite_weights, check_int, check_model, check_weights_used
from rkhsreg._errors import ConfigurationError, InputError, ProjectionWarning
from rkhsreg._params import SEED, Check, Interval, OnlyWhen, Options
from rkhsreg._plugin import Constraint
from rkhsreg.functional.schedules import RadiusDecay
from rkhsreg.functional.spectral import (INPUT_SHAPE, InputShapeCache, _conv_operator_norm, _power_iteration,
                                         matching_vector, reshaped_weight, spectral_layers)

__all__ = ["SpectralNormProjection"]

METHODS = ("reshape", "operator")
PROJECTIONS = ("scale", "clip")


class SpectralNormProjection(Constraint):
    """Project every ``nn.Linear`` / ``nn.Conv1d/2d/3d`` weight onto {σ ≤ radius} in place.

    Two ways to measure σ:

    * ``method="reshape"`` (the paper): σ of the reshaped ``out × (in·k·k)`` matrix. This is **not** a
      Lipschitz bound for convolutions: with reshaped σ = 1 the true operator norms of the paper's
      convs are not 1 and can exceed it several-fold (compute them with ``method="operator"``).
    * ``method="operator"``: the operator norm of each conv as a linear map at the resolution it sees
      for inputs of ``input_shape`` (power iteration through conv / conv_transpose). Only this one
      gives a real Lipschitz bound (combine it with
      :func:`rkhsreg.functional.lipschitz.lipschitz_upper_bound` for the whole network).

    Two projections:

    * ``projection="clip"`` (the paper): clip every singular value of the reshaped matrix at the
      radius, keeping the singular vectors: the exact Frobenius-nearest point of the constraint set.
      Computed from the eigendecomposition of the smaller Gram matrix ``WWᵀ`` or ``WᵀW`` (the same
      projection as an SVD, ~6× cheaper on CPU). ``"reshape"`` only.
    * ``projection="scale"`` (default): ``W ← W·radius/σ`` when σ > radius, with σ from warm-started
      restarted Lanczos on ``WᵀW`` (the reshaped matrix, or the conv operator and its adjoint), run
      until the top Ritz pair's residual is below ``tol`` relatively (at most ``iterations`` products
      per layer and call). Works for both methods; the only option for ``"operator"``. It lands in
      the set but is not the nearest point (every singular value shrinks, not only those above the
      radius). σ is an estimate from below that stops on the accuracy reached, not on its change
      between iterations: measured against ``torch.linalg.svdvals`` on every layer of
      ``mnist_vgg5(width=64)``, timm ``resnet18`` and timm ``vgg11``, at init and after SGD steps, the
      projected reshaped σ stays within radius·(1 + 1e-4) (in practice ~1e-7, float rounding; the
      tests check it). A stopping rule on the change stalls when the top singular values cluster
      and overshot by up to 1e-2 on ResNet-18. The bound holds when the iteration converges within
      ``iterations``; a cold start on a large layer may need more than a warm one.

    Why ``"scale"`` is the default: its cost. Measured by ``python benchmarks/spectral_cost.py --threads 1``
    (paper's MNIST net, batch 128, SGD, 1 CPU thread; docs/benchmarks.md), the projection alone costs
    1.02× a plain step with "scale" (reshape), 1.21× (operator), and 1.13× with "clip" (a symmetric
    eigendecomposition of every layer's Gram matrix at every step). Ask for
    ``projection="clip"`` for the paper's exact semantics.

    A layer already inside the set is left bit-identical. Weights keep their dtype and device;
    float16/bfloat16 weights are projected in float32 and copied back (so the result is within
    their rounding of the radius).

    Args:
        radius: τ (> 0); 0.5 in the paper (0.8 for its robust CIFAR-10 example).
        method: ``"reshape"`` or ``"operator"``.
        input_shape: one example's shape, e.g. (1, 28, 28); required for ``"operator"``.
        projection: ``"scale"`` or ``"clip"``.
        iterations: maximum iterations per layer and call (``"scale"``); when a layer's iteration stops on it
            before reaching ``tol``, a :class:`~rkhsreg.ProjectionWarning` names the layers (once).
        tol: relative residual of the top Ritz pair of ``WᵀW`` at which the iteration stops
            (``"scale"``); the projected σ is then within about radius·(1 + tol).
        kappa: κ of the paper's schedule radius_t = radius·(1 + 4·exp(−epoch/κ)) (κ = 2 in the paper);
            ``None``: constant radius. The epoch is set with :meth:`set_epoch`.
        modules: which layers to project: names (a name also selects the layers below it, e.g.
            ``"features"``) and/or layer types, each selecting at least one Linear/Conv layer; ``None``: every
            Linear/Conv layer, and the model may then hold no weighted layer the projection cannot bound
            (ConvTranspose, Bilinear: select the others explicitly to leave those out).
        seed: seed of the generator of the first power-iteration vectors (never the global RNG).
        frozen: what to do with a selected layer whose weight does not train (``requires_grad=False``, e.g. a
            frozen backbone): ``"skip"`` (default) leaves it as it is and warns once, naming the layers;
            ``"project"`` projects it too.

    Example:
        >>> project = rkhsreg.create_constraint("spectral_norm_projection", radius=0.5, kappa=2.0)
        >>> optimizer.step(); project(model)     # doctest: +SKIP
        >>> project.set_epoch(epoch)             # at each epoch start, doctest: +SKIP
    """

    name = "spectral_norm_projection"
    rkhs_bound = "upper"
    parameters = {
        "radius": Interval(Real, 0, None, closed="neither", doc="the bound τ on each σ"),
        "method": Options(METHODS),
        "input_shape": OnlyWhen("method", "operator", [None, INPUT_SHAPE]),
        "projection": Options(PROJECTIONS),
        "iterations": OnlyWhen("projection", "scale", Interval(Integral, 1, None)),
        "tol": OnlyWhen("projection", "scale", Interval(Real, 0, None, closed="neither")),
        "kappa": [None, Interval(Real, 0, None, closed="neither", doc="κ of the radius decay")],
        "modules": [None, Check(lambda v: _check_modules(v), "a module name, an nn.Module type, or a non-empty list "
                                "of them, e.g. ['features', nn.Linear] (None: every Linear/Conv layer)",
                                examples=["features", ("features", nn.Linear)])],
        "seed": SEED,
        "frozen": Options(("skip", "project"), doc="what to do with layers whose weight does not train"),
    }

    def __init__(self, *, radius: float = 1.0, method: str = "reshape", input_shape: Sequence[int] | None = None,
                 projection: str = "scale", iterations: int = 100, tol: float = 1e-4, kappa: float | None = None,
                 modules: Iterable[str | type[nn.Module]] | str | type[nn.Module] | None = None,
                 seed: int = 0, frozen: str = "skip") -> None:
        self.radius = radius    # every argument is checked against `parameters` before the body runs
        self.method = method
        self.input_shape = input_shape
        if self.method == "operator" and self.input_shape is None:
            raise ConfigurationError("input_shape=None is not allowed with method='operator'; pass one example's "
                                     "shape without the batch dimension, e.g. input_shape=(1, 28, 28).")
        self.projection = projection
        if self.projection == "clip" and self.method == "operator":
            raise ConfigurationError("projection='clip' is not allowed with method='operator'; clipping singular "
                                     "values applies to the reshaped matrix only: use projection='scale'.")
        self.iterations = iterations
        self.tol = tol
        self.kappa = kappa
        self.modules = modules
        self.seed = seed
        self.frozen = frozen
        self._warned_frozen: set[str] = set()
        self._warned_unconverged = False
        self.epoch = 0
        self._generator = torch.Generator().manual_seed(self.seed)
        self._vectors: dict[str, dict[str, torch.Tensor]] = {}
        self._input_shapes = InputShapeCache(self.input_shape)

    @property
    def current_radius(self) -> float:
        """The radius at the current epoch: :class:`~rkhsreg.functional.schedules.RadiusDecay` (radius·(1 +
        4·exp(−epoch/κ))), or radius when κ is None."""
        schedule = self.own_schedule()
        return self.radius if schedule is None else schedule(step=0, epoch=self.epoch)

    def own_schedule(self) -> RadiusDecay | None:
        """``RadiusDecay(tau=radius, kappa=kappa)`` when ``kappa`` is set, else None."""
        return None if self.kappa is None else RadiusDecay(tau=self.radius, kappa=self.kappa)

    def set_epoch(self, epoch: int) -> None:
        """Set the epoch (int >= 0) of the radius schedule; called by the training loop at each epoch start."""
        self.epoch = check_int("epoch", epoch, low=0)

    def __call__(self, model: nn.Module) -> None:
        """Project ``model``'s selected weights in place (under ``torch.no_grad``)."""
        model = check_model(model)
        radius = self.current_radius
        with torch.no_grad():
            selected = self._trainable(self._selected(model))
            check_finite_weights(selected)  # a projection cannot repair them (scale spreads NaN, clip fails)
            check_weights_used(selected, "spectral_norm_projection would not bound it",
                               " Or leave the layer out with modules=[...] to project the others.", assigned=True)
            unconverged: list[str] = []
            for name, module in selected:
                key = f"{name}.weight" if name else "weight"
                # a parametrised weight (parametrizations.weight_norm, ...) is computed: project a copy, assign it
                computed = parametrize.is_parametrized(module, "weight")
                weight = module.weight.detach().clone() if computed else module.weight
                if self.projection == "clip":
                    _clip(weight, radius)
                else:
                    sigma = self._scale(model, name, key, module, weight, radius)
                    if sigma is not None:
                        unconverged.append(f"{name or type(module).__name__!r} (σ estimate {sigma:.4g})")
                if computed and not torch.equal(weight, module.weight):
                    _assign(name, module, weight)
            if unconverged and not self._warned_unconverged:
                self._warned_unconverged = True
                warnings.warn(
                    f"spectral_norm_projection: the iteration for σ stopped on iterations={self.iterations} before "
                    f"its residual reached tol={self.tol:g} on {len(unconverged)} layer(s): "
                    f"{', '.join(unconverged[:5])}{', ...' if len(unconverged) > 5 else ''}. σ is estimated from "
                    f"below, so these layers may still have σ > radius={radius:g} after the projection. Raise "
                    f"iterations (e.g. iterations={max(100, 10 * self.iterations)}) or lower tol; said once.",
                    ProjectionWarning, stacklevel=2)

    def _scale(self, model: nn.Module, name: str, key: str, module: nn.Module, weight: torch.Tensor,
               radius: float) -> float | None:
        """Scale ``weight`` onto σ ≤ radius; the σ estimate when the iteration did not reach ``tol`` (else None)."""
        saved = self._vectors.get(key, {})
        if self.method == "operator" and not isinstance(module, nn.Linear):
            shape = self._input_shapes(model).get(name)
            if shape is None:
                raise InputError(f"layer {name!r} is not reached by a forward of zeros(1, *{self.input_shape!r}); "
                                 "check input_shape or leave the layer out with modules=...")
            sigma, v, converged = _conv_operator_norm(
                module, shape, stride=None, padding=None, dilation=None, groups=None, padding_mode=None,
                v=matching_vector(saved.get("v"), shape), iters=self.iterations, tol=self.tol, eps=1e-12,
                generator=self._generator, solver="lanczos")
            self._vectors[key] = {"v": v}
        else:
            rows = weight.shape[0]
            cols = weight.numel() // max(rows, 1)
            sigma, u, v, converged = _power_iteration(
                weight, matching_vector(saved.get("u"), (rows,)), matching_vector(saved.get("v"), (cols,)),
                iters=self.iterations, eps=1e-12, tol=self.tol, generator=self._generator, solver="lanczos")
            self._vectors[key] = {"u": u, "v": v}
        missed = None if converged else float(sigma)
        if sigma <= radius:
            return missed
        if weight.dtype in (torch.float16, torch.bfloat16):
            weight.copy_((weight.float() * (radius / sigma)).to(weight.dtype))
        else:
            weight.mul_((radius / sigma).to(weight.dtype))
        return missed

    def _trainable(self, layers: list[tuple[str, nn.Module]]) -> list[tuple[str, nn.Module]]:
        """``layers`` without the frozen ones (``frozen="skip"``), warning once about each new frozen layer."""
        if self.frozen == "project":
            return layers
        frozen = [name for name, module in layers if _is_frozen(module)]
        new = [name for name in frozen if name not in self._warned_frozen]
        if new:
            self._warned_frozen.update(new)
            warnings.warn(f"spectral_norm_projection: {len(new)} layer(s) have a weight with requires_grad=False "
                          f"({', '.join(repr(n) for n in new[:5])}{', ...' if len(new) > 5 else ''}) and are left as "
                          "they are (frozen=\"skip\"); pass frozen=\"project\" to project them too, or "
                          "modules=[...] to select the layers.", stacklevel=3)
        return [(name, module) for name, module in layers if name not in frozen]

    def _selected(self, model: nn.Module) -> list[tuple[str, nn.Module]]:
        layers = spectral_layers(model)
        if not layers:
            kinds = sorted({type(m).__name__ for m in model.modules() if m is not model and not any(m.children())})
            raise InputError(f"model {type(model).__name__} has no nn.Linear or nn.Conv1d/2d/3d layer (its layers: "
                             f"{', '.join(kinds) or 'none'}); spectral_norm_projection projects only those, so it "
                             "would do nothing. Remove the constraint or apply it to the network that has them.")
        if self.modules is None:
            unhandled = [(name, m) for name, m in model.named_modules() if _unhandled(m)]
            if unhandled:
                named = ", ".join(f"{n!r} ({type(m).__name__})" for n, m in unhandled[:5])
                raise InputError(
                    f"model {type(model).__name__} has {len(unhandled)} weighted layer(s) spectral_norm_projection "
                    f"cannot project: {named}{', ...' if len(unhandled) > 5 else ''} (it projects nn.Linear and "
                    "nn.Conv1d/2d/3d only), so σ ≤ radius would not hold for every layer. Select the layers to "
                    f"project explicitly with modules=[...], e.g. modules=[nn.Linear, nn.Conv2d] or "
                    f"modules={[n for n, _ in layers[:2]]!r}, to leave these out knowingly.")
            return layers
        for entry in self.modules:
            if not any(_matches(entry, name, m) for name, m in layers):
                shown = entry if isinstance(entry, str) else entry.__name__
                raise InputError(f"modules entry {shown!r} matches no Linear/Conv layer of the model, so "
                                 "spectral_norm_projection would project nothing for it; layers it can project: "
                                 f"{', '.join(f'{n!r} ({type(m).__name__})' for n, m in layers) or 'none'}.")
        return [(name, m) for name, m in layers if any(_matches(e, name, m) for e in self.modules)]

    def state_dict(self) -> dict[str, Any]:
        """Power-iteration vectors (keyed by parameter name), the epoch and the generator state."""
        return {"vectors": {k: {n: t.detach().clone() for n, t in d.items()} for k, d in self._vectors.items()},
                "epoch": self.epoch, "generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; missing keys keep their current value, unknown keys are ignored."""
        if state.get("vectors") is not None:
            self._vectors = {k: {n: t.detach().clone() for n, t in d.items()} for k, d in state["vectors"].items()}
        if state.get("epoch") is not None:
            self.set_epoch(state["epoch"])
        if state.get("generator") is not None:
            self._generator.set_state(state["generator"])

    def _config(self) -> dict[str, Any]:
        return {"radius": self.radius, "method": self.method, "input_shape": self.input_shape,
                "projection": self.projection, "iterations": self.iterations, "tol": self.tol,
                "kappa": self.kappa, "modules": self.modules, "seed": self.seed, "frozen": self.frozen}


def _assign(name: str, module: nn.Module, weight: torch.Tensor) -> None:
    """Set a parametrised layer's weight through its parametrisation's ``right_inverse``."""
    kinds = ", ".join(type(p).__name__ for p in module.parametrizations.weight)
    try:
        module.weight = weight
    except (RuntimeError, NotImplementedError) as exc:
        raise InputError(f"layer {name or type(module).__name__!r}: its weight is parametrised ({kinds}) and "
                         f"spectral_norm_projection could not set the projected weight through it ({exc}); it "
                         "needs a right_inverse. Leave the layer out with modules=[...] or give the "
                         "parametrisation a right_inverse.") from None
    got = module.weight.detach()
    if not torch.allclose(got.float(), weight.float(), rtol=1e-3, atol=1e-3 * float(weight.abs().amax())):
        raise InputError(f"layer {name or type(module).__name__!r}: its weight is parametrised ({kinds}) and the "
                         "projected weight assigned through it does not come back (the parametrisation changes "
                         "it, e.g. renormalises it), so spectral_norm_projection cannot bound it. Remove the "
                         "parametrisation or leave the layer out with modules=[...].")


def _clip(weight: torch.Tensor, radius: float) -> None:
    """Clip the singular values of the reshaped ``weight`` at ``radius`` in place (no-op: untouched).

    With ``W = U Σ Vᵀ`` and S the singular values above the radius,
    ``W_clip = W − U_S diag(1 − radius/σ_S) U_Sᵀ W``; ``U_S`` and ``σ_S²`` come from the
    eigendecomposition of the smaller Gram matrix (``W Wᵀ``, or ``WᵀW`` with right vectors).
    """
    matrix = reshaped_weight(weight.detach())
    if matrix.dtype in (torch.float16, torch.bfloat16):
        matrix = matrix.float()
    rows, cols = matrix.shape
    left = rows <= cols
    gram = matrix @ matrix.T if left else matrix.T @ matrix
    eigvals, eigvecs = torch.linalg.eigh(gram)
    sigmas = eigvals.clamp_min(0).sqrt()
    above = sigmas > radius
    if not bool(above.any()):
        return
    vecs, shrink = eigvecs[:, above], 1.0 - radius / sigmas[above]
    if left:
        clipped = matrix - vecs @ (shrink[:, None] * (vecs.T @ matrix))
    else:
        clipped = matrix - ((matrix @ vecs) * shrink) @ vecs.T
    weight.copy_(clipped.reshape(weight.shape).to(weight.dtype))


def _is_frozen(module: nn.Module) -> bool:
    """Whether the layer's weight does not train (its parametrisation's parameters, for a parametrised one)."""
    if parametrize.is_parametrized(module, "weight"):
        return not any(p.requires_grad for p in module.parametrizations.weight.parameters())
    return not module.weight.requires_grad


def _check_modules(value: Any) -> tuple[str | type[nn.Module], ...]:
    """``modules`` as a tuple of names and module types (the declaration's check; None is declared apart)."""
    entries = (value,) if isinstance(value, (str, type)) else value
    try:
        entries = tuple(entries)
    except TypeError:
        raise TypeError("") from None
    if not entries:
        raise ValueError("an empty list selects no layer; pass None for every Linear/Conv layer")
    bad = [e for e in entries if not isinstance(e, str) and not (isinstance(e, type) and issubclass(e, nn.Module))]
    if bad:
        raise TypeError(f"{bad[0]!r} is neither a module name nor an nn.Module type")
    return entries


def _unhandled(module: nn.Module) -> bool:
    """A layer with a weight matrix that the projection does not handle (transposed convs, nn.Bilinear)."""
    if isinstance(module, nn.modules.conv._ConvNd) and module.transposed:
        return True
    return isinstance(module, nn.Bilinear)


def _matches(entry: str | type[nn.Module], name: str, module: nn.Module) -> bool:
    if isinstance(entry, str):
        return name == entry or name.startswith(entry + ".")
    return isinstance(module, entry)
