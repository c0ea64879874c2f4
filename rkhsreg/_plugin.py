"""Plugin protocols: what every penalty, constraint and attack implements.

A penalty maps ``(model, inputs, targets)`` to a differentiable scalar ``weight * estimate``;
a constraint projects a model's weights in place. Both carry a ``state_dict`` so training
can resume exactly (power-iteration vectors, random generators, counters). An attack maps
``(model, inputs, labels, ε)`` to candidate adversarial inputs for the robustness evaluators.
"""

from __future__ import annotations

import abc
import functools
import inspect
from dataclasses import dataclass
from numbers import Real
from typing import Any, ClassVar

import torch
from torch import nn

from rkhsreg._checks import check_trainable_value, eager
from rkhsreg._params import Declaration, Interval, declared_parameters, validate_params

__all__ = ["Penalty", "Constraint", "Attack", "PassCount", "Declared", "BOUNDS"]

#: The values of a penalty's or constraint's ``rkhs_bound``: a lower bound of ‖f‖_H, an upper bound, or neither.
BOUNDS: tuple[str | None, ...] = ("lower", "upper", None)


class Declared:
    """Validates the declared constructor parameters of every subclass, in one place.

    A subclass lists its constructor parameters in ``parameters = {name: form}`` (the forms of
    :mod:`rkhsreg._params`; a subclass inherits and may override its bases' declarations). Its ``__init__`` is
    wrapped when the class is created: the arguments, defaults included, are validated and normalised
    (python ``float``/``int`` for numpy scalars and 0-d tensors, tuples for lists) before the body runs, so the
    body only stores them. A bad value raises :class:`~rkhsreg.ParameterError` naming the plugin, the
    parameter, the value and every allowed form.

    Example:
        >>> class Shrink(Constraint):                                    # doctest: +SKIP
        ...     name = "shrink"
        ...     parameters = {"factor": Interval(Real, 0, 1, closed="right")}
        ...     def __init__(self, *, factor: float = 0.9) -> None:
        ...         self.factor = factor                                  # already checked
    """

    #: Each constructor parameter's allowed forms (see :mod:`rkhsreg._params`).
    parameters: ClassVar[dict[str, Declaration]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None or getattr(init, "_rkhsreg_validates", False):
            return
        signature = inspect.signature(init)
        variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        named = [n for n, p in list(signature.parameters.items())[1:] if p.kind not in variadic]  # not self
        defaults = {n: p.default for n, p in signature.parameters.items() if p.default is not p.empty}

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kw: Any) -> None:
            bound = signature.bind(self, *args, **kw)
            bound.apply_defaults()
            kind = type(self)
            owner = kind.name if isinstance(getattr(kind, "name", None), str) and kind.name else kind.__name__
            given = {n: bound.arguments[n] for n in named if n in bound.arguments}
            bound.arguments.update(validate_params(declared_parameters(kind), given, owner=owner,
                                                   defaults=defaults))
            init(*bound.args, **bound.kwargs)

        __init__._rkhsreg_validates = True  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[method-assign]


@dataclass
class PassCount:
    """Work spent by the last call, in full-batch equivalents.

    ``forward`` counts rows pushed through the model divided by the batch size; ``backward``
    counts rows back-propagated (w.r.t. inputs or parameters) divided by the batch size.
    A plain training step is ``PassCount(1, 1)``.
    """

    forward: float = 0.0
    backward: float = 0.0

    def add(self, forward_rows: int = 0, backward_rows: int = 0, *, batch: int) -> None:
        """Record ``forward_rows`` / ``backward_rows`` rows for a batch of ``batch`` examples."""
        self.forward += forward_rows / batch
        self.backward += backward_rows / batch


class Penalty(Declared, abc.ABC):
    """A regularizer added to the training loss.

    Subclasses implement :meth:`estimate` (the unweighted quantity) and declare ``name``.
    Calling the penalty returns ``weight * estimate``.

    Args:
        weight: the multiplier λ (>= 0).

    Example:
        >>> penalty = rkhsreg.create_penalty("gradient_norm", weight=0.1)  # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)      # doctest: +SKIP
    """

    name: ClassVar[str] = ""
    #: Whether the returned value replaces the clean loss instead of adding to it.
    replaces_loss: ClassVar[bool] = False
    #: What the value is to the RKHS norm ‖f‖_H (one of :data:`BOUNDS`): ``"lower"`` (‖f‖_H dominates it, up to
    #: the plugin's radius: ``RKHSNormMonitor(lower_bounds=...)`` accepts only these), ``"upper"`` (it dominates
    #: ‖f‖_H), or None (neither: a baseline such as a loss, the default for a plugin that does not say).
    rkhs_bound: ClassVar[str | None] = None
    parameters: ClassVar[dict[str, Declaration]] = {"weight": Interval(Real, 0, None, closed="left",
                                                                       doc="the multiplier λ")}

    def __init__(self, *, weight: float = 1.0) -> None:
        self.weight = validate_params(declared_parameters(type(self)), {"weight": weight},
                                      owner=self.name or type(self).__name__)["weight"]
        self.last_passes = PassCount()

    @abc.abstractmethod
    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        """Return the unweighted penalty, a scalar differentiable w.r.t. the model's parameters."""

    def __call__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        if torch.is_inference_mode_enabled():
            raise RuntimeError(
                f"{type(self).__name__} needs autograd, but torch.inference_mode is active. Lightning runs "
                "validation/test under it: pass Trainer(inference_mode=False) to evaluate penalties there.")
        self.last_passes = PassCount()
        recording = torch.is_grad_enabled()   # under torch.no_grad the caller only wants the number
        with torch.enable_grad():  # gradients w.r.t. inputs are needed even under torch.no_grad
            value = self.estimate(eager(model), inputs, targets)
        if recording:
            check_trainable_value(self.name, value, model)
        return value * self.weight

    def state_dict(self) -> dict[str, Any]:
        """State needed to resume exactly (empty for stateless penalties)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; unknown keys are ignored."""

    def diagnostics(self) -> dict[str, float]:
        """Numbers worth logging beside the value (the Lightning callback logs each as ``<label>/<key>``): what
        a search found or measured, e.g. the ‖f‖²_δ search's ``value_ratio``. The default: none."""
        return {}

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


class Constraint(Declared, abc.ABC):
    """A projection applied to the model's weights after each optimiser step.

    Example:
        >>> project = rkhsreg.create_constraint("spectral_norm_projection", radius=1.0)  # doctest: +SKIP
        >>> optimizer.step(); project(model)                                              # doctest: +SKIP
    """

    name: ClassVar[str] = ""
    #: What the constraint bounds, as :attr:`Penalty.rkhs_bound`: ``"upper"`` for a projection that caps ‖f‖_H.
    rkhs_bound: ClassVar[str | None] = None

    @abc.abstractmethod
    def __call__(self, model: nn.Module) -> None:
        """Project ``model``'s weights in place (under ``torch.no_grad``)."""

    def set_epoch(self, epoch: int) -> None:
        """Tell the constraint which training epoch starts (0-based): training loops (the Lightning callback,
        the recipes) call it at each epoch start and, in the callback, before each projection. The default does
        nothing; a constraint whose strength follows a schedule of the epoch overrides it (the spectral-norm
        projection's radius decay, ``kappa``)."""

    def own_schedule(self) -> Any:
        """The schedule of its strength the constraint follows by itself through :meth:`set_epoch` (a
        :class:`~rkhsreg.functional.schedules.Schedule`, or a description), or None: a training loop that schedules
        the constraint's ``radius`` itself refuses one that already has its own (two schedules would compound). The
        default: None."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """State needed to resume exactly (empty for stateless constraints)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned; unknown keys are ignored."""

    def _config(self) -> dict[str, Any]:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._config().items())
        return f"{type(self).__name__}({args})"


class Attack(Declared, abc.ABC):
    """One attack of an ensemble: stateless, model and ε passed at every call.

    Subclasses set ``name`` and implement :meth:`perturb`. An attack with ``minimum_norm = True``
    ignores ε (it is called once, with ``epsilon=math.inf``) and returns the closest adversarial
    example it finds; the others look for any adversarial example within ε.

    Example:
        >>> class Shift(Attack):
        ...     name = "shift"
        ...     def perturb(self, model, inputs, labels, *, epsilon, norm, seed):
        ...         return (inputs + epsilon / inputs[0].numel() ** 0.5).clamp(0, 1)
    """

    name: ClassVar[str] = ""
    #: Called once with ε = inf; returns the smallest adversarial example found.
    minimum_norm: ClassVar[bool] = False
    #: Uses no gradient (its successes where gradient attacks failed point at masked gradients).
    gradient_free: ClassVar[bool] = False

    def supports(self, num_classes: int, norm: str) -> str | None:
        """``None`` if the attack applies, else the reason it does not (then the sweep skips it)."""
        return None

    @abc.abstractmethod
    def perturb(self, model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, epsilon: float, norm: str,
                seed: int) -> torch.Tensor:
        """Return candidate adversarial inputs, same shape as ``inputs`` (4-d, pixels in [0, 1]).

        Args:
            model: the classifier (an :class:`~rkhsreg.evaluation._model.AttackView`), in eval mode.
            inputs: clean inputs (n, C, H, W) in [0, 1].
            labels: true classes (n,).
            epsilon: radius of the ball in these units (``math.inf`` for minimum-norm attacks).
            norm: ``"l2"`` or ``"linf"``.
            seed: the seed of any randomness (the global RNG is forked around the call).
        """

    def settings(self) -> dict[str, Any]:
        """The budget, for reports (JSON-serialisable)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"
