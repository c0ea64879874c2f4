"""Typed settings of the evaluators: what to attack with, which sanity checks to run, which deformations to try.

:func:`~rkhsreg.evaluation.evaluate_robustness` and :func:`~rkhsreg.evaluation.evaluate_deformations` take the
data, the radii or sizes and where to run as keyword arguments, and everything about *how* to search as one of
these small frozen dataclasses, each checked when it is built (a bad value raises
:class:`~rkhsreg.ConfigurationError` naming the field and the value). One object can be kept, printed, compared
and reused across evaluations; :func:`dataclasses.replace` changes one field.

Example:
    >>> from dataclasses import replace
    >>> quick = AttackSettings(steps=20, borderline_restarts=0)
    >>> replace(quick, steps=50).steps
    50
    >>> AttackSettings(steps=0)
    Traceback (most recent call last):
    ...
    rkhsreg._errors.ConfigurationError: steps=0 is out of range; it must be an int >= 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rkhsreg._checks import check_choice, check_int, check_real
from rkhsreg._errors import ConfigurationError
from rkhsreg.evaluation.ensemble import check_attacks
from rkhsreg.functional.deformation import PADDING_MODES

__all__ = ["AttackSettings", "SanityChecks", "DeformationBudget", "DeformationSearch", "ORDERS", "resolve"]

#: Orders in which the ε of a sweep are attacked (see :mod:`rkhsreg.evaluation.sweep`).
ORDERS = ("descending", "ascending")


@dataclass(frozen=True)
class AttackSettings:
    """How :func:`~rkhsreg.evaluation.evaluate_robustness` searches for adversarial examples.

    Args:
        attacks: the ensemble: :class:`~rkhsreg.Attack` objects and/or registered names
            (:func:`~rkhsreg.evaluation.ensemble.attack_names`, built with ``steps``), e.g.
            ``("default", "square")`` to add the gradient-free Square attack. ``None``: ``("default",)``, FAB-T,
            APGD-CE and targeted APGD-DLR with ``steps`` steps and 9 targets. At each ε the gradient-free
            attacks run after the others.
        steps: iterations of the named attacks (AutoAttack: 100).
        order: ``"descending"`` (default) or ``"ascending"`` ε sweep; see :mod:`rkhsreg.evaluation.sweep`.
        refine_steps: bisection steps shortening each success towards the clean input.
        borderline: relative margin of a borderline example at ε: one the ensemble did not break at ε although
            an attack found it adversarial at a distance ≤ (1 + ``borderline``)·ε. Whether an attack breaks it
            often depends on its random seed.
        borderline_restarts: extra runs, each with new seeds, of the gradient-based ε-bounded attacks on the
            borderline examples at each ε (0: none), so that one seed's luck does not decide them.
    """

    attacks: Sequence[Any] | None = None
    steps: int = 100
    order: str = "descending"
    refine_steps: int = 10
    borderline: float = 0.1
    borderline_restarts: int = 4

    def __post_init__(self) -> None:
        if self.attacks is not None:
            object.__setattr__(self, "attacks", tuple(check_attacks(self.attacks)))
        check_int("steps", self.steps)
        check_choice("order", self.order, ORDERS)
        check_int("refine_steps", self.refine_steps, low=0)
        check_real("borderline", self.borderline)
        check_int("borderline_restarts", self.borderline_restarts, low=0)


@dataclass(frozen=True)
class SanityChecks:
    """The checks :func:`~rkhsreg.evaluation.evaluate_robustness` runs on its own curve
    (:mod:`~rkhsreg.evaluation.sanity`; warnings, and ``result.sanity``). ``sanity=False`` is short for
    ``SanityChecks(enabled=False)``.

    Args:
        enabled: run them.
        noise_samples: random points per example and ε of the gradient-free probe.
        examples: at most this many examples for the APGD-CE agreement check.
        disagreement_threshold: accuracy gap (fraction) between APGD-CE alone and the ensemble above which a
            :class:`~rkhsreg.evaluation.sanity.MaskedGradientWarning` is issued.
    """

    enabled: bool = True
    noise_samples: int = 4
    examples: int = 64
    disagreement_threshold: float = 0.05

    def __post_init__(self) -> None:
        if not isinstance(self.enabled, bool):
            raise ConfigurationError(f"enabled={self.enabled!r} is not allowed; pass True or False.")
        check_int("noise_samples", self.noise_samples, low=0)
        check_int("examples", self.examples, low=0)
        check_real("disagreement_threshold", self.disagreement_threshold, high=1.0)

    @classmethod
    def of(cls, value: SanityChecks | bool) -> SanityChecks:
        """``value`` itself, or the default checks for ``True`` and none for ``False``."""
        if isinstance(value, SanityChecks):
            return value
        if isinstance(value, bool):
            return cls(enabled=value)
        raise ConfigurationError(f"sanity={value!r} is not allowed; pass True, False or a SanityChecks(...).")


@dataclass(frozen=True)
class DeformationBudget:
    """The smooth deformations L_τ that :func:`~rkhsreg.evaluation.evaluate_deformations` draws, at size 1
    (a size s scales both bounds by s).

    Args:
        max_displacement: ‖τ‖∞ budget at size 1, pixels (the paper's MNIST setting: 2).
        max_gradient: ‖∇τ‖∞ budget at size 1 (0.3).
        grid_size: control grid side of the fields.
        translation: largest translation at size 1, pixels (within the displacement budget).
        padding_mode: ``"border"`` or ``"zeros"`` (see :func:`rkhsreg.functional.deformation.deform`).
    """

    max_displacement: float = 2.0
    max_gradient: float = 0.3
    grid_size: int = 4
    translation: float = 0.0
    padding_mode: str = "border"

    def __post_init__(self) -> None:
        check_real("max_displacement", self.max_displacement, strict=True)
        check_real("max_gradient", self.max_gradient, strict=True)
        check_int("grid_size", self.grid_size, low=1)
        check_real("translation", self.translation)
        check_choice("padding_mode", self.padding_mode, PADDING_MODES)


@dataclass(frozen=True)
class DeformationSearch:
    """How :func:`~rkhsreg.evaluation.evaluate_deformations` looks for the worst deformation of each example.

    Args:
        samples: random deformations per example and size.
        adversarial: also run a signed-gradient ascent over the deformation's coefficients.
        steps: steps of that ascent.
        step_size: its sign-step length in pixels (``None``: 1.5·s·``max_displacement``/``steps`` at size s).
    """

    samples: int = 8
    adversarial: bool = True
    steps: int = 10
    step_size: float | None = None

    def __post_init__(self) -> None:
        check_int("samples", self.samples, low=0)
        if not isinstance(self.adversarial, bool):
            raise ConfigurationError(f"adversarial={self.adversarial!r} is not allowed; pass True or False.")
        check_int("steps", self.steps)
        if self.step_size is not None:
            check_real("step_size", self.step_size, strict=True)


def resolve(name: str, value: Any, kind: type) -> Any:
    """``value`` if it is a ``kind``, ``kind()`` for None; otherwise a ConfigurationError naming ``name``."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ConfigurationError(f"{name}={value!r} is not allowed; pass {kind.__name__}(...) or None.")
    return value
