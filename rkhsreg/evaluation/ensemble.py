"""The ensemble by name: the attack names accepted by the evaluators, checked and built into attacks.

Its own module because it knows every attack (the torchattacks-backed ones of :mod:`.attacks` and
:class:`.square.Square`), while the attacks know nothing of one another.
"""

from __future__ import annotations

import difflib
from typing import Any

from rkhsreg._errors import ConfigurationError
from rkhsreg.evaluation.attacks import APGD, FAB, APGDTargeted, Attack, RandomNoise, default_attacks
from rkhsreg.evaluation.square import Square

__all__ = ["ATTACK_NAMES", "check_attacks", "resolve_attacks"]


#: Names accepted in ``attacks=[...]`` besides :class:`Attack` objects; ``"default"`` is the default ensemble.
ATTACK_NAMES = ("default", "fab-t", "fab", "apgd-ce", "apgd-dlr", "apgd-t", "square", "noise")


def _from_name(name: str, norm: str, num_classes: int, steps: int) -> list[Attack]:
    if name == "default":
        return default_attacks(norm, num_classes, steps=steps)
    if name == "square":
        return [Square()]
    return [{"fab-t": lambda: FAB(steps=steps), "fab": lambda: FAB(steps=steps, targets=None),
             "apgd-ce": lambda: APGD("ce", steps=steps), "apgd-dlr": lambda: APGD("dlr", steps=steps),
             "apgd-t": lambda: APGDTargeted(steps=steps), "noise": RandomNoise}[name]()]


def check_attacks(attacks: Any) -> list[Attack | str]:
    """Check ``attacks`` is a non-empty sequence of :class:`Attack` objects and names of :data:`ATTACK_NAMES`.

    Example:
        >>> check_attacks(["default", "square"])
        ['default', 'square']
    """
    if isinstance(attacks, (Attack, str)):
        attacks = [attacks]
    if (not isinstance(attacks, (list, tuple)) or not attacks
            or not all(isinstance(a, (Attack, str)) for a in attacks)):
        raise ConfigurationError(f"attacks={attacks!r} is not allowed; pass a non-empty list of "
                                 "rkhsreg.evaluation.Attack objects or names (e.g. ['default', 'square'], "
                                 f"names: {', '.join(ATTACK_NAMES)}), or None for the default ensemble.")
    for item in attacks:
        if isinstance(item, str) and item not in ATTACK_NAMES:
            close = difflib.get_close_matches(item, ATTACK_NAMES, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose from {', '.join(ATTACK_NAMES)}."
            raise ConfigurationError(f"attacks holds the unknown attack {item!r}; {hint}")
    _unique([a if isinstance(a, str) else a.name for a in attacks if a != "default"])
    return list(attacks)


def _unique(names: list[str]) -> None:
    if len(set(names)) != len(names):
        raise ConfigurationError(f"attacks has duplicate names {names}; each attack of an ensemble needs its own "
                                 "name (it keys the per-attack budget report).")


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
    for item in items:
        out.extend(_from_name(item, norm, num_classes, steps) if isinstance(item, str) else [item])
    _unique([a.name for a in out])
    return out
