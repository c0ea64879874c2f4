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
    rkhsreg._errors.ParameterError: AttackSettings: steps=0 is out of range; it must be >= 1 (allowed: an int >= 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any, ClassVar

from rkhsreg._errors import ConfigurationError, ParameterError
from rkhsreg._params import AtMost, Boolean, Check, Declaration, Interval, OnlyWhen, Options, validate_fields
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

    parameters: ClassVar[dict[str, Declaration]] = {
        "attacks": [None, Check(lambda v: tuple(check_attacks(v)), "a non-empty list of rkhsreg.Attack objects "
                                "and/or registered names, e.g. ['default', 'square']",
                                examples=[("default",), ["default", "square"]])],
        "steps": Interval(Integral, 1, None),
        "order": Options(ORDERS),
        "refine_steps": Interval(Integral, 0, None),
        "borderline": Interval(Real, 0, None),
        "borderline_restarts": Interval(Integral, 0, None),
    }

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class SanityChecks:
    """The checks :func:`~rkhsreg.evaluation.evaluate_robustness` runs on its own curve
    (:mod:`~rkhsreg.evaluation.sanity`; warnings, and ``result.sanity``). ``sanity=False`` is short for
    ``SanityChecks(enabled=False)``.

    Args:
        enabled: run them.
        noise_samples: random points per example and ε of the gradient-free probe.
        examples: at most this many examples for the APGD-CE agreement check.
        disagreement_threshold: accuracy gap (fraction) between APGD-CE alone and the ensemble above which the
            ``ce_agreement`` check fails in ``result.sanity``; it warns
            (:class:`~rkhsreg.evaluation.sanity.MaskedGradientWarning`) only when another gradient check failed
            too or the gap exceeds 25 points (a small gap is normal: it is why the ensemble exists).
    """

    enabled: bool = True
    noise_samples: int = 4
    examples: int = 64
    disagreement_threshold: float = 0.05

    parameters: ClassVar[dict[str, Declaration]] = {
        "enabled": Boolean(),
        "noise_samples": OnlyWhen("enabled", True, Interval(Integral, 0, None)),
        "examples": OnlyWhen("enabled", True, Interval(Integral, 0, None)),
        "disagreement_threshold": OnlyWhen("enabled", True, Interval(Real, 0, 1, closed="both", doc="a fraction")),
    }

    def __post_init__(self) -> None:
        validate_fields(self)

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
        translation: largest translation at size 1, pixels (at most ``max_displacement``: larger is refused).
        padding_mode: ``"border"`` or ``"zeros"`` (see :func:`rkhsreg.functional.deformation.deform`).
    """

    max_displacement: float = 2.0
    max_gradient: float = 0.3
    grid_size: int = 4
    translation: float = 0.0
    padding_mode: str = "border"

    parameters: ClassVar[dict[str, Declaration]] = {
        "max_displacement": Interval(Real, 0, None, closed="neither", doc="‖τ‖∞ budget at size 1, pixels"),
        "max_gradient": Interval(Real, 0, None, closed="neither", doc="‖∇τ‖∞ budget at size 1"),
        "grid_size": Interval(Integral, 1, None),
        "translation": AtMost("max_displacement", Interval(Real, 0, None),
                              text="a translation moves every pixel by its length, and no pixel moves further than "
                                   "max_displacement"),
        "padding_mode": Options(PADDING_MODES),
    }

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class DeformationSearch:
    """How :func:`~rkhsreg.evaluation.evaluate_deformations` looks for the worst deformation of each example.

    Args:
        samples: random deformations per example and size.
        adversarial: also run a signed-gradient ascent over the deformation's coefficients.
        steps: steps of that ascent (only with ``adversarial=True``; refused otherwise).
        step_size: its sign-step length (only with ``adversarial=True``) in pixels (``None``: 1.5·s·``max_displacement``/``steps`` at size s).
    """

    samples: int = 8
    adversarial: bool = True
    steps: int = 10
    step_size: float | None = None

    parameters: ClassVar[dict[str, Declaration]] = {
        "samples": Interval(Integral, 0, None),
        "adversarial": Boolean(),
        "steps": OnlyWhen("adversarial", True, Interval(Integral, 1, None)),
        "step_size": OnlyWhen("adversarial", True, [None, Interval(Real, 0, None, closed="neither")]),
    }

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.samples == 0 and not self.adversarial:
            raise ParameterError("DeformationSearch: samples=0 with adversarial=False tries no deformation: every "
                                 "example would count as robust at every size; pass samples >= 1 or "
                                 "adversarial=True.", parameter="samples", value=0, allowed="an int >= 1")


def resolve(name: str, value: Any, kind: type) -> Any:
    """``value`` if it is a ``kind``, ``kind()`` for None; otherwise a ConfigurationError naming ``name``."""
    if value is None:
        return kind()
    if not isinstance(value, kind):
        raise ConfigurationError(f"{name}={value!r} is not allowed; pass {kind.__name__}(...) or None.")
    return value
