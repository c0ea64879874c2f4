"""Dotted keys into nested config dicts and integer-list arguments, for the recipes' runners.

A runner's validation grid names a hyper-parameter by its path in a LightningCLI-style config
(``"model.penalties.gradient_norm.weight"``); :func:`set_key` refuses a path that does not exist, so
a typo in a grid fails at once instead of silently training the untouched config.

Example:
    >>> cfg = {"model": {"weight_decay": 0.0}}
    >>> set_key(cfg, "model.weight_decay", 5e-4); get_key(cfg, "model.weight_decay")
    0.0005
    >>> parse_ints("0-2,5", "seeds")
    [0, 1, 2, 5]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["get_key", "set_key", "parse_ints", "load_rows"]


def get_key(cfg: dict[str, Any], dotted: str) -> Any:
    """``cfg["a"]["b"]`` for ``"a.b"``."""
    node: Any = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def set_key(cfg: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``cfg["a"]["b"] = value`` for ``"a.b"``; the path must exist (KeyError naming it otherwise)."""
    parts = dotted.split(".")
    node = cfg
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            raise KeyError(f"config key {dotted!r} does not exist (no {part!r} mapping)")
        node = node[part]
    if parts[-1] not in node:
        raise KeyError(f"config key {dotted!r} does not exist")
    node[parts[-1]] = value


def parse_ints(text: str, name: str) -> list[int]:
    """``"0-2,5"`` → ``[0, 1, 2, 5]``; ``SystemExit`` naming ``--name`` and the value otherwise."""
    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = part.split("-")
                out += list(range(int(lo), int(hi) + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise SystemExit(f"--{name}={text!r} is not allowed; pass integers like '300,1000' or ranges like "
                         "'0-2'.") from None
    if not out:
        raise SystemExit(f"--{name}={text!r} is empty; pass at least one integer.")
    return out


def load_rows(path: Path) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A recipe's rows file (YAML with ``rows: [{name, config, ...}]``): the file's mapping and its rows keyed by
    name, in the file's order, each with its ``config`` file (relative to ``path``) loaded as ``row["cfg"]`` and its
    optional ``set: {dotted key: value}`` applied to it (fixed values that differ from the config file)."""
    import yaml

    meta = yaml.safe_load(Path(path).read_text())
    rows: dict[str, dict[str, Any]] = {}
    for row in meta["rows"]:
        row = dict(row)
        row["cfg"] = yaml.safe_load((Path(path).parent / row["config"]).read_text())
        for key, value in (row.get("set") or {}).items():
            set_key(row["cfg"], key, value)
        rows[row["name"]] = row
    return meta, rows
