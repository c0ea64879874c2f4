"""Entry-point registry: built-in and third-party plugins are found the same way.

The registry knows no concrete plugin. It reads the entry-point groups below (declared in
each distribution's ``pyproject.toml``), loads a plugin only when it is asked for, checks it
implements the group's protocol and that the keyword arguments given exist, and suggests
the closest name when a name is unknown. ``RKHSREG_DISABLE_PLUGINS="name1,name2"`` switches
plugins off by name.
"""

from __future__ import annotations

import difflib
import inspect
import os
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from rkhsreg._errors import ConfigurationError, PluginNotFoundError, PluginValidationError
from rkhsreg._plugin import BOUNDS, Attack, Constraint, Penalty

__all__ = ["GROUPS", "list_plugins", "load_plugin", "create_plugin", "list_penalties", "create_penalty",
           "list_constraints", "create_constraint", "list_attacks", "create_attack"]

#: Entry-point group -> (kind in messages, base class every plugin of the group subclasses).
GROUPS: dict[str, tuple[str, type]] = {
    "rkhsreg.penalties": ("penalty", Penalty),
    "rkhsreg.constraints": ("constraint", Constraint),
    "rkhsreg.attacks": ("attack", Attack),
}


def _disabled() -> set[str]:
    return {name.strip() for name in os.environ.get("RKHSREG_DISABLE_PLUGINS", "").split(",") if name.strip()}


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "an unknown distribution"


def _entry_points(group: str) -> dict[str, EntryPoint]:
    """Enabled entry points of ``group`` by name; two different plugins under one name are refused.

    The same entry point seen twice (one distribution found on two paths) is not a conflict.
    """
    found: dict[str, EntryPoint] = {}
    disabled = _disabled()
    for ep in entry_points(group=group):
        if ep.name in disabled:
            continue
        first = found.setdefault(ep.name, ep)
        if first.value != ep.value:
            kind = GROUPS[group][0] if group in GROUPS else "plugin"
            raise PluginValidationError(
                f"two {kind} plugins are registered as {ep.name!r}: {first.value} (from {_distribution(first)}) "
                f"and {ep.value} (from {_distribution(ep)}); uninstall one, rename one entry point, or switch the "
                f"name off with RKHSREG_DISABLE_PLUGINS={ep.name}.")
    return found


def list_plugins(group: str) -> list[str]:
    """Sorted names registered in entry-point ``group`` (disabled ones left out)."""
    _check_group(group)
    return sorted(_entry_points(group))


def _check_group(group: str) -> None:
    if group not in GROUPS:
        raise ConfigurationError(f"group={group!r} is not an rkhsreg entry-point group; "
                                 f"choose one of {', '.join(map(repr, GROUPS))}.")


def load_plugin(group: str, name: str) -> type:
    """Load and validate the class registered as ``name`` in ``group``."""
    _check_group(group)
    kind, base = GROUPS[group]
    eps = _entry_points(group)
    if not isinstance(name, str) or name not in eps:
        elsewhere = [other_kind for other, (other_kind, _) in GROUPS.items()
                     if other != group and isinstance(name, str) and name in _entry_points(other)]
        if elsewhere:   # a constraint given as a penalty, or the reverse: say where it belongs
            plural = {"penalty": "penalties", "constraint": "constraints", "attack": "attacks"}
            raise PluginNotFoundError(f"unknown {kind} {name!r}: {name!r} is a registered {elsewhere[0]}, not a "
                                      f"{kind}; pass it among the {plural.get(elsewhere[0], elsewhere[0])} "
                                      f"({plural.get(elsewhere[0], elsewhere[0])}={{{name!r}: {{...}}}}). Registered "
                                      f"{plural.get(kind, kind)}: {', '.join(sorted(eps)) or 'none'}.")
        close = difflib.get_close_matches(str(name), list(eps), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else f"; registered: {', '.join(sorted(eps)) or 'none'}."
        raise PluginNotFoundError(f"unknown {kind} {name!r}{hint}")
    ep = eps[name]
    try:
        obj = ep.load()
    except Exception as exc:  # surface the plugin's own import failure with its name
        raise PluginValidationError(f"{kind} plugin {name!r} ({ep.value}) failed to import: {exc}") from exc
    if not (isinstance(obj, type) and issubclass(obj, base)):
        raise PluginValidationError(f"{kind} plugin {name!r} ({ep.value}) is {obj!r}, not a subclass of "
                                    f"rkhsreg.{base.__name__}; point the entry point at such a class.")
    if inspect.isabstract(obj):
        missing = ", ".join(sorted(obj.__abstractmethods__))
        raise PluginValidationError(f"{kind} plugin {name!r} ({ep.value}) does not implement: {missing}.")
    if kind in ("penalty", "constraint") and getattr(obj, "rkhs_bound", None) not in BOUNDS:
        raise PluginValidationError(f"{kind} plugin {name!r} ({ep.value}) declares rkhs_bound={obj.rkhs_bound!r}; "
                                    f"it must be one of {', '.join(map(repr, BOUNDS))} (a lower bound of the RKHS "
                                    "norm, an upper bound, or neither).")
    return obj


def create_plugin(group: str, name: str, **kwargs: Any) -> Any:
    """Instantiate plugin ``name`` of ``group`` with keyword arguments, checked against its signature."""
    cls = load_plugin(group, name)
    kind = GROUPS[group][0]
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        allowed = [n for n, p in params.items()
                   if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            close = ([a for a in allowed if a.startswith(unknown[0]) or unknown[0].startswith(a)]   # eps → epsilon
                     or difflib.get_close_matches(unknown[0], allowed, n=1))
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(f"{kind} {name!r} got unknown argument {unknown[0]!r}{hint}; "
                                     f"allowed: {', '.join(allowed)}.")
    return cls(**kwargs)


def list_penalties() -> list[str]:
    """Sorted names of the registered penalties.

    Example:
        >>> "gradient_norm" in rkhsreg.list_penalties()  # doctest: +SKIP
        True
    """
    return list_plugins("rkhsreg.penalties")


def create_penalty(name: str, **kwargs: Any) -> Penalty:
    """Create the penalty registered as ``name``.

    Example:
        >>> rkhsreg.create_penalty("adversarial_perturbation", epsilon=1.0)  # doctest: +SKIP
    """
    return create_plugin("rkhsreg.penalties", name, **kwargs)


def list_constraints() -> list[str]:
    """Sorted names of the registered constraints."""
    return list_plugins("rkhsreg.constraints")


def create_constraint(name: str, **kwargs: Any) -> Constraint:
    """Create the constraint registered as ``name``.

    Example:
        >>> rkhsreg.create_constraint("spectral_norm_projection", radius=1.0)  # doctest: +SKIP
    """
    return create_plugin("rkhsreg.constraints", name, **kwargs)


def list_attacks() -> list[str]:
    """Sorted names of the registered attacks (what ``attacks=[...]`` of the evaluators accepts, besides "default")."""
    return list_plugins("rkhsreg.attacks")


def create_attack(name: str, **kwargs: Any) -> Attack:
    """Create the attack registered as ``name``.

    Example:
        >>> rkhsreg.create_attack("apgd-ce", steps=20).name  # doctest: +SKIP
        'apgd-ce'
    """
    return create_plugin("rkhsreg.attacks", name, **kwargs)
