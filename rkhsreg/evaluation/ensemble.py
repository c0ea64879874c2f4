"""The ensemble by name: the attack names accepted by the evaluators, checked and built into attacks.

Names are those of the ``rkhsreg.attacks`` entry-point group (the built-ins are registered there the way a
third-party distribution registers its own; :func:`rkhsreg.list_attacks`), plus ``"default"``, the default
ensemble of :func:`~rkhsreg.evaluation.attacks.default_attacks`.
"""

from __future__ import annotations

import difflib
import functools
import inspect
from typing import Any

from rkhsreg._errors import ConfigurationError
from rkhsreg._registry import list_attacks, load_plugin
from rkhsreg.evaluation.attacks import NORMS, Attack, default_attacks

__all__ = ["attack_names", "check_attacks", "resolve_attacks"]


def attack_names() -> tuple[str, ...]:
    """Names accepted in ``attacks=[...]`` besides :class:`Attack` objects: ``"default"`` and every registered attack.

    Example:
        >>> attack_names()[:3]
        ('default', 'apgd-ce', 'apgd-dlr')
    """
    return ("default", *list_attacks())


def _from_name(name: str, norm: str, num_classes: int, steps: int) -> list[Attack]:
    if name == "default":
        return default_attacks(norm, num_classes, steps=steps)
    cls = load_plugin("rkhsreg.attacks", name)
    takes_steps = "steps" in inspect.signature(cls.__init__).parameters
    return [cls(steps=steps) if takes_steps else cls()]


def check_attacks(attacks: Any) -> list[Attack | str]:
    """Check ``attacks`` is a non-empty sequence of :class:`Attack` objects and names of :func:`attack_names`, each
    once (an attack listed twice, or next to ``"default"`` which already runs it, would run twice at every ε).

    Example:
        >>> check_attacks(["default", "square"])
        ['default', 'square']
    """
    if isinstance(attacks, (Attack, str)):
        attacks = [attacks]
    names = attack_names()
    if (not isinstance(attacks, (list, tuple)) or not attacks
            or not all(isinstance(a, (Attack, str)) for a in attacks)):
        raise ConfigurationError(f"attacks={attacks!r} is not allowed; pass a non-empty list of "
                                 "rkhsreg.evaluation.Attack objects or names (e.g. ['default', 'square'], "
                                 f"names: {', '.join(names)}), or None for the default ensemble.")
    for item in attacks:
        if isinstance(item, str) and item not in names:
            close = difflib.get_close_matches(item, names, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(names)}."
            raise ConfigurationError(f"attacks holds the unknown attack {item!r}; {hint}")
    names_given = [a if isinstance(a, str) else a.name for a in attacks]
    repeated = list(dict.fromkeys(n for i, n in enumerate(names_given) if n in names_given[:i]))
    if repeated:
        raise ConfigurationError(f"attacks={names_given!r} lists {', '.join(map(repr, repeated))} more than once; "
                                 "each attack runs once at every ε (a second run is only more time), so list it once.")
    if "default" in names_given:
        inside = [n for n in names_given if n in _always_in_default()]
        if inside:
            raise ConfigurationError(f"attacks={names_given!r} lists {inside[0]!r} next to 'default', which already "
                                     f"runs it (default: fab-t, apgd-ce, apgd-t; fab and apgd-dlr for 2 or 3 "
                                     f"classes); drop {inside[0]!r}.")
    return list(attacks)


@functools.lru_cache(maxsize=None)
def _always_in_default() -> frozenset[str]:
    """The attacks "default" runs whatever the norm and the number of classes (apgd-ce)."""
    return frozenset.intersection(*(frozenset(a.name for a in default_attacks(norm, classes, steps=1))
                                    for norm in NORMS for classes in (2, 3, 10)))


def _unique(names: list[str], default: list[str] | None = None) -> None:
    repeated = list(dict.fromkeys(n for i, n in enumerate(names) if n in names[:i]))
    if repeated:
        within = f" ('default' runs {', '.join(default)} here)" if default else ""
        raise ConfigurationError(f"attacks give {', '.join(map(repr, repeated))} twice{within}; each attack of an "
                                 "ensemble runs once and keys the per-attack budget report: drop the repeated one.")


def resolve_attacks(attacks: Any, norm: str, num_classes: int, *, steps: int = 100) -> list[Attack]:
    """The ensemble as :class:`Attack` objects: names built with ``steps`` for ``num_classes`` classes.

    Args:
        attacks: ``None`` (the default ensemble) or what :func:`check_attacks` accepts.
        norm: ``"l2"`` or ``"linf"``.
        num_classes: the model's number of outputs.
        steps: iterations of the attacks built from names.

    Example:
        >>> [a.name for a in resolve_attacks(["default", "square"], "l2", 10)]
        ['fab-t', 'apgd-ce', 'apgd-t', 'square']
    """
    items = check_attacks(["default"] if attacks is None else attacks)
    out: list[Attack] = []
    default: list[str] = []
    for item in items:
        built = _from_name(item, norm, num_classes, steps) if isinstance(item, str) else [item]
        default += [a.name for a in built] if item == "default" else []
        out.extend(built)
    _unique([a.name for a in out], default)
    return out
