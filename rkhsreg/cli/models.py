"""Build a model from a ``module:factory`` path or ``timm:<name>``, and load weights without unpickling code.

Weights (a state dict, or a Lightning checkpoint with its ``"state_dict"``) are read with
``torch.load(weights_only=True)``: a file from elsewhere can carry tensors, not executable objects.
Lightning stores the network's parameters under the attribute path of the LightningModule
(``model.0.weight``, ``net.features.0.weight``…): the common prefix is found and stripped.
"""

from __future__ import annotations

import importlib
import json
import zipfile
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError

__all__ = ["build_model", "load_weights", "read_state_dict"]


def _factory(spec: str) -> Any:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigurationError(f"model={spec!r} is not allowed; pass 'package.module:factory' (e.g. "
                                 "'rkhsreg.models:mnist_vgg5') or 'timm:<model name>'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigurationError(f"model={spec!r}: cannot import module {module_name!r} ({exc}).") from None
    target: Any = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise ConfigurationError(f"model={spec!r}: module {module_name!r} has no attribute {attr!r}.")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigurationError(f"model={spec!r}: {attr!r} is not callable; point at a function or class that "
                                 "returns an nn.Module.")
    return target


def build_model(spec: str, *, num_classes: int | None = None, in_chans: int | None = None,
                kwargs: str | Mapping[str, Any] | None = None) -> nn.Module:
    """Instantiate ``spec``: ``"pkg.module:factory"`` or ``"timm:<name>"``.

    Args:
        spec: the model path.
        num_classes: passed to timm models (and to factories only through ``kwargs``).
        in_chans: passed to timm models.
        kwargs: extra keyword arguments of the factory, a dict or a JSON object string.

    Example:
        >>> build_model("rkhsreg.models:mnist_vgg5", kwargs='{"width": 8}')  # doctest: +SKIP
    """
    if not isinstance(spec, str) or not spec:
        raise ConfigurationError(f"model={spec!r} is not allowed; pass 'package.module:factory' or 'timm:<name>'.")
    if isinstance(kwargs, str):
        try:
            kwargs = json.loads(kwargs)
        except json.JSONDecodeError as exc:
            raise ConfigurationError(f"model_kwargs={kwargs!r} is not valid JSON ({exc.msg}); pass an object such "
                                     "as '{\"width\": 8}'.") from None
    if kwargs is not None and not isinstance(kwargs, Mapping):
        raise ConfigurationError(f"model_kwargs={kwargs!r} is a {type(kwargs).__name__}; pass a JSON object of "
                                 "keyword arguments such as '{\"width\": 8}'.")
    kwargs = dict(kwargs or {})
    if not all(isinstance(k, str) for k in kwargs):
        raise ConfigurationError(f"model_kwargs={kwargs!r} must be a JSON object with string keys.")
    if spec.startswith("timm:"):
        name = spec[len("timm:"):]
        try:
            import timm
        except ImportError:
            raise ConfigurationError("model='timm:…' needs timm: pip install 'rkhsreg[models]'.") from None
        if name not in timm.list_models():
            import difflib
            close = difflib.get_close_matches(name, timm.list_models(), n=1)
            hint = f"; did you mean 'timm:{close[0]}'?" if close else "; see timm.list_models()."
            raise ConfigurationError(f"model={spec!r}: unknown timm model {name!r}{hint}")
        if num_classes is not None:
            kwargs.setdefault("num_classes", num_classes)
        if in_chans is not None:
            kwargs.setdefault("in_chans", in_chans)
        return timm.create_model(name, pretrained=False, **kwargs)
    factory = _factory(spec)
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise ConfigurationError(f"model={spec!r} could not be built with {kwargs}: {exc}.") from None
    if not isinstance(model, nn.Module):
        raise ConfigurationError(f"model={spec!r} returned {type(model).__name__}, not an nn.Module.")
    return model


def verify_archive(path: str | Path) -> None:
    """Check every entry of a zip-format torch file against its CRC-32 before anything is loaded.

    ``torch.load`` does not verify them: a file damaged in a copy (one flipped bit inside a tensor) loads
    without complaint and gives other numbers. Legacy (non-zip) files have no checksums and pass.

    Raises:
        InputError: an entry's CRC does not match, or the archive is truncated.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        return
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InputError(f"{str(path)!r} is a damaged torch archive ({exc}); copy or save it again.") from None
    if bad is not None:
        raise InputError(f"{str(path)!r} is corrupted: the CRC-32 of its entry {bad!r} does not match its data "
                         "(damaged in a copy or on disk); copy or save it again.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file or Lightning checkpoint, read with ``weights_only=True``.

    Accepts a state dict, or a dict holding one under ``"state_dict"`` (Lightning), ``"model"`` or
    ``"model_state_dict"``.

    Raises:
        InputError: missing file, a file that is not a torch checkpoint, or one that needs unpickling
            arbitrary objects.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"weights file {str(path)!r} does not exist.")
    verify_archive(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError… for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Unsupported global" in str(exc):
            raise InputError(f"{str(path)!r} holds pickled objects besides tensors, which are not loaded "
                             "(weights_only=True). Save just the tensors: torch.save(ckpt['state_dict'], "
                             "'weights.pt').") from None
        raise InputError(f"{str(path)!r} is not a readable torch checkpoint ({first}).") from None
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model_state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError(f"{str(path)!r} does not hold a state dict (a mapping of parameter names to tensors), nor "
                         "a checkpoint with one under 'state_dict'.")
    return dict(obj)


def _strip_prefix(state: dict[str, torch.Tensor], wanted: list[str]) -> dict[str, torch.Tensor]:
    """Drop the attribute prefix under which the network was saved (``model.``, ``net.``…)."""
    if set(wanted) <= set(state):
        return {k: state[k] for k in wanted}
    prefixes: Counter[str] = Counter()
    for key in state:
        for name in wanted:
            if key.endswith(name) and (len(key) == len(name) or key[-len(name) - 1] == "."):
                prefixes[key[:len(key) - len(name)]] += 1
    for prefix, _ in prefixes.most_common():
        stripped = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        if set(wanted) <= set(stripped):
            return {k: stripped[k] for k in wanted}
    return state


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load the tensors of ``path`` into ``model`` (strict), stripping a checkpoint's attribute prefix.

    Raises:
        InputError: the file's tensors do not match the model's parameters and buffers.

    Example:
        >>> load_weights(build_model("rkhsreg.models:mnist_vgg5"), "epoch=9.ckpt")  # doctest: +SKIP
    """
    state = read_state_dict(path)
    wanted = list(model.state_dict().keys())
    state = _strip_prefix(state, wanted)
    missing = [k for k in wanted if k not in state]
    if missing:
        raise InputError(f"{str(path)!r} does not fit the model: {len(missing)} of its {len(wanted)} tensors are "
                         f"missing (first: {missing[0]!r}; the file has e.g. {next(iter(state))!r}). Check --model.")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(str(exc).split())
        raise InputError(f"{str(path)!r} does not fit the model: {detail[:300]}") from None
    return model
