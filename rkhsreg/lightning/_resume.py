"""The callback's checkpointed state: its key, its layout, and how a checkpoint is matched to the callback resuming.

The key is fixed (``"RKHSRegularization"``), never derived from the labels: a callback whose configuration
changed between saving and resuming still finds its state, and :func:`match` says what it restores, what it
drops and why (a :class:`ResumeWarning`). Hyper-parameters always come from the callback's constructor; a
checkpoint restores state only (search calibration, power-iteration vectors, generators, counters). A state
that cannot be read is an :class:`~rkhsreg.InputError`, never skipped in silence.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rkhsreg._errors import InputError

__all__ = ["STATE_KEY", "STATE_VERSION", "ResumeWarning", "describe", "legacy_key", "check_state", "Report",
           "compare"]

#: ``checkpoint["callbacks"][STATE_KEY]``; at most one RKHSRegularization callback drives a module.
STATE_KEY = "RKHSRegularization"
#: 1: plugin states, weights and counters; 2: also each plugin's type and constructor hyper-parameters.
STATE_VERSION = 2
_LEGACY_PREFIX = "RKHSRegularization{"  # version 1 keyed the state by the sorted labels
#: The keys RKHSRegularization.state_dict writes (version 1 lacked "version" and "config").
_KEYS = frozenset({"version", "penalties", "constraints", "weights", "config", "regularized_steps", "projections"})


class ResumeWarning(UserWarning):
    """A checkpoint's RKHSRegularization state does not match the callback resuming from it."""


def _plain(value: Any) -> Any:
    """``value`` as checkpoint-safe builtins (compared by equality); anything else by its ``repr``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, type):
        return f"{value.__module__}.{value.__qualname__}"
    return repr(value)


def _type_name(plugin: Any) -> str:
    return f"{type(plugin).__module__}.{type(plugin).__qualname__}"


def describe(plugins: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{label: {"type": qualified class name, "hparams": constructor settings}}`` of each plugin."""
    return {label: {"type": _type_name(p), "hparams": _plain(getattr(p, "_config", dict)())}
            for label, p in plugins.items()}


def legacy_key(callback_states: Mapping[Any, Any]) -> str | None:
    """The key a version-1 checkpoint stored the state under, or None."""
    keys = [k for k in callback_states if isinstance(k, str) and k.startswith(_LEGACY_PREFIX)]
    if len(keys) > 1:
        raise InputError(f"the checkpoint holds {len(keys)} RKHSRegularization states ({keys}); one callback "
                         "resumes one state. Load the checkpoint with torch.load, keep the entry of "
                         "checkpoint['callbacks'] you mean, save it, and resume from that file.")
    return keys[0] if keys else None


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(f"checkpoint['callbacks'][{STATE_KEY!r}]{where} is a {type(value).__name__}, not a dict: "
                         "the file was not written by RKHSRegularization.state_dict (or was altered). Resume from "
                         "a checkpoint this callback wrote, or load its weights alone (LightningModule."
                         "load_from_checkpoint, then Trainer.fit without ckpt_path).")
    return value


def check_state(state: Any) -> dict[str, Any]:
    """The state's parts, checked: an unreadable or too new state raises :class:`~rkhsreg.InputError`."""
    state = _mapping("", state)
    if not _KEYS & set(state):
        found = ", ".join(repr(k) for k in list(state)[:8]) + (", …" if len(state) > 8 else "")
        raise InputError(f"checkpoint['callbacks'][{STATE_KEY!r}] holds "
                         f"{'the keys ' + found if state else 'nothing (an empty dict)'} and none of "
                         f"{', '.join(map(repr, sorted(_KEYS)))}: it is not a state RKHSRegularization.state_dict "
                         "wrote (damaged or altered). Resume from another checkpoint, or load the weights alone "
                         "(LightningModule.load_from_checkpoint, then Trainer.fit without ckpt_path).")
    version = state.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= STATE_VERSION:
        raise InputError(f"checkpoint['callbacks'][{STATE_KEY!r}]['version']={version!r}; this rkhsreg reads "
                         f"versions 1 to {STATE_VERSION}. A newer rkhsreg wrote it: upgrade rkhsreg to resume.")
    parts: dict[str, Any] = {"version": version}
    for part in ("penalties", "constraints", "weights"):
        parts[part] = dict(_mapping(f"[{part!r}]", state.get(part, {})))
        if part != "weights":
            for label, plugin_state in parts[part].items():
                _mapping(f"[{part!r}][{label!r}]", plugin_state)
    config = _mapping("['config']", state.get("config", {}))
    parts["config"] = {part: dict(_mapping(f"['config'][{part!r}]", config.get(part, {})))
                       for part in ("penalties", "constraints")}
    for counter in ("regularized_steps", "projections"):
        value = state.get(counter, 0)
        if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 0:
            raise InputError(f"checkpoint['callbacks'][{STATE_KEY!r}][{counter!r}]={value!r} is not a count "
                             "(an integer >= 0): the state is damaged. Resume from another checkpoint.")
        parts[counter] = int(value)
    return parts


@dataclass
class Report:
    """What a resume restored, dropped, started fresh and found changed; :meth:`message` words it."""

    restored: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)

    def message(self) -> str | None:
        """One warning text, or None when the checkpoint matches the callback."""
        if not (self.dropped or self.fresh or self.changed):
            return None
        lines = ["RKHSRegularization: the checkpoint was written with another configuration of this callback."]
        lines.append(f"Restored: the state of {', '.join(self.restored)} and the step counters." if self.restored
                     else "Restored: the step counters only.")
        if self.dropped:
            lines.append("Not restored: " + "; ".join(self.dropped) + ".")
        if self.fresh:
            lines.append(f"Starting fresh (not in the checkpoint): {', '.join(self.fresh)}.")
        if self.changed:
            lines.append("Hyper-parameters that differ, the callback's values are used (a checkpoint restores "
                         "state only): " + "; ".join(self.changed) + ".")
        lines.append("If this is not what you meant, resume with the callback configured as when the checkpoint "
                     "was written.")
        return " ".join(lines)


def compare(kind: str, label: str, saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Each hyper-parameter whose value differs between ``saved`` and ``current`` (both from :func:`describe`)."""
    old, new = saved.get("hparams", {}), current.get("hparams", {})
    if not isinstance(old, Mapping):
        return []

    def shown(values: Mapping[str, Any], name: str) -> str:
        return repr(values[name]) if name in values else "(not set)"

    return [f"{kind} {label!r} {name}: {shown(old, name)} in the checkpoint, {shown(new, name)} here"
            for name in sorted(set(old) | set(new)) if shown(old, name) != shown(new, name)]
