"""Build a model from a ``module:factory`` path or ``timm:<name>``, and load weights without unpickling code.

Weights (a state dict, or a Lightning checkpoint with its ``"state_dict"``) are read with
``torch.load(weights_only=True)``: a file from elsewhere can carry tensors, not executable objects.
Lightning stores the network's parameters under the attribute path of the LightningModule
(``model.0.weight``, ``net.features.0.weight``…): the prefix under which the file holds the whole model is
found and stripped. Nothing is dropped silently: a tensor of the file that the model does not load, or one
of the model's that the file lacks, is an error unless ``strict=False``.
"""

from __future__ import annotations

import importlib
import inspect
import json
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg.data.sniff import head_of, is_torch_file, starts_with, what_it_is

__all__ = ["LoadReport", "build_model", "load_weights", "read_state_dict"]


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


def _json_kind(value: Any) -> str:
    """What JSON calls ``value``'s type (an int and a float are both numbers)."""
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "string", list: "list", dict: "object", type(None): "null"}.get(type(value), type(value).__name__)


def _as_kind(value: Any, default: Any) -> Any:
    """``value`` (a string, say) as the type of ``default`` when it reads as one ("4" -> 4), else ``value``."""
    if isinstance(value, str):
        if isinstance(default, bool):
            return {"true": True, "false": False}.get(value.strip().lower(), value)
        for kind in (int, float) if isinstance(default, int) else (float,) if isinstance(default, float) else ():
            try:
                return kind(value)
            except ValueError:
                continue
    return value


class _Annotation(str):
    """An annotation kept as text (``from __future__ import annotations``), shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def _signature_text(signature: inspect.Signature) -> str:
    """``(num_classes: int = 10, width: int = 64)``: the parameters, annotations unquoted, no return type."""
    params = [p.replace(annotation=_Annotation(p.annotation)) if isinstance(p.annotation, str) else p
              for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


def _not_built(spec: str, factory: Any, kwargs: Mapping[str, Any], exc: Exception) -> str:
    """The message for a factory that raised TypeError/ValueError: --model-kwargs and the model named, the
    factory's signature, and each value whose JSON type is not the one of the factory's default for it."""
    first = str(exc).strip().splitlines()[0].rstrip(".") if str(exc).strip() else ""
    raised = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    given = f"--model-kwargs {json.dumps(dict(kwargs))}: " if kwargs else ""
    message = f"{given}model={spec!r} could not be built"
    try:
        signature = inspect.signature(factory) if factory is not None else None
    except (TypeError, ValueError):   # a builtin or C extension: no signature to show
        signature = None
    if signature is not None:
        message += f"; {getattr(factory, '__name__', 'the factory')}{_signature_text(signature)} raised {raised}"
    else:
        message += f" ({raised})"
    wrong, fixed = [], dict(kwargs)
    for key, value in kwargs.items():
        param = signature.parameters.get(key) if signature is not None else None
        default = param.default if param is not None else inspect.Parameter.empty
        if isinstance(default, (bool, int, float, str)) and _json_kind(value) != _json_kind(default):
            wrong.append(f"{key}={value!r} is a JSON {_json_kind(value)}, but the factory's {key} defaults to "
                         f"{default!r} (a {_json_kind(default)})")
            fixed[key] = _as_kind(value, default)
    if wrong:
        hint = f", e.g. --model-kwargs '{json.dumps(fixed)}'" if fixed != dict(kwargs) else ""
        message += (f". {'; '.join(wrong)}: --model-kwargs is JSON, where a number or true/false is written without "
                    f"quotes{hint}")
    elif kwargs and signature is not None:
        message += ". Check the keys and values of --model-kwargs against that signature"
    return message + "."


def _refusals(kwargs: Mapping[str, Any]) -> tuple[type[Exception], ...]:
    """The exceptions that mean the factory refused its arguments: TypeError/ValueError always; RuntimeError too
    when --model-kwargs were given (torch raises it for a layer built with a negative or zero width), since those
    values are then the likely cause — without them a RuntimeError is the factory's own bug and keeps its traceback."""
    return (TypeError, ValueError, RuntimeError) if kwargs else (TypeError, ValueError)


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
        try:
            return timm.create_model(name, pretrained=False, **kwargs)
        except _refusals(kwargs) as exc:
            raise ConfigurationError(_not_built(spec, None, kwargs, exc)) from None
    factory = _factory(spec)
    try:
        model = factory(**kwargs)
    except _refusals(kwargs) as exc:
        raise ConfigurationError(_not_built(spec, factory, kwargs, exc)) from None
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
    head = head_of(path)
    if not is_torch_file(head):
        kind, start = what_it_is(head), starts_with(head)
        what = (f": it is {kind}" if kind is not None else
                f" (a text file? It starts with {start})" if start.startswith("text") else f" (it starts with {start})")
        raise InputError(f"{str(path)!r} is not a torch checkpoint{what}; pass a file written by torch.save or a "
                         "Lightning checkpoint.")
    verify_archive(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError… for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Unsupported global" in str(exc):
            raise InputError(f"{str(path)!r} holds pickled objects besides tensors, which are not loaded "
                             "(weights_only=True). Save just the tensors: torch.save(ckpt['state_dict'], "
                             "'weights.pt').") from None
        if "weights_only" in first:  # torch's advice to unpickle (weights_only=False) is not the CLI's to give
            first = type(exc).__name__
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


def _groups(keys: list[str], limit: int = 8) -> str:
    """``'net.' in 1., 4., 7.`` : the keys' longest common dotted prefix and the distinct names below it."""
    if not keys:
        return "no tensors"
    parts = [k.split(".") for k in keys]
    common: list[str] = []
    for column in zip(*parts):
        if len(set(column)) != 1 or len(common) + 1 >= min(len(p) for p in parts):
            break
        common.append(column[0])
    depth = len(common)
    names = list(dict.fromkeys(p[depth] + ("." if len(p) > depth + 1 else "") for p in parts))
    shown = ", ".join(repr(n) for n in names[:limit]) + (f", … ({len(names)} in all)" if len(names) > limit else "")
    where = f"under {'.'.join(common) + '.'!r}: " if common else ": "
    return f"{len(keys)} tensors{' ' if common else ''}{where}{shown}"


def _names(keys: list[str], limit: int = 4) -> str:
    shown = ", ".join(repr(k) for k in keys[:limit])
    return shown + (f" … ({len(keys)} in all)" if len(keys) > limit else "")


def _complete_prefixes(state: Mapping[str, torch.Tensor], wanted: list[str]) -> list[str]:
    """Every prefix ``p`` under which the file holds all the model's tensors (``p + key`` for each key)."""
    if not wanted:
        return [""]
    anchor = wanted[0]
    candidates = [key[:len(key) - len(anchor)] for key in state
                  if key == anchor or key.endswith("." + anchor)]
    return [p for p in dict.fromkeys(candidates) if all(p + k in state for k in wanted)]


def _best_prefix(state: Mapping[str, torch.Tensor], wanted: list[str]) -> tuple[str, int]:
    """The prefix under which the file holds the most of the model's tensors, and how many."""
    wanted_set = set(wanted)
    counts: Counter[str] = Counter()
    for key in state:
        parts = key.split(".")
        for cut in range(len(parts)):
            if ".".join(parts[cut:]) in wanted_set:
                counts[".".join(parts[:cut]) + ("." if cut else "")] += 1
    return counts.most_common(1)[0] if counts else ("", 0)


@dataclass
class LoadReport:
    """What :func:`load_weights` loaded: the prefix stripped, the file's tensors not loaded, the model's left
    at their initial values (both empty unless ``strict=False``)."""

    prefix: str
    unused: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True,
                 prefix: str | None = None) -> LoadReport:
    """Load the tensors of ``path`` into ``model``, stripping a checkpoint's attribute prefix.

    Every tensor of the file must be loaded and every tensor of the model found, unless ``strict=False``
    (then the tensors under the best-matching prefix are loaded and the report lists the rest).

    Args:
        model: the network built by ``--model``.
        path: a state-dict file or a Lightning checkpoint.
        strict: refuse a file holding tensors the model does not load, or missing some of the model's.
        prefix: load the tensors under this prefix only (``"model."``); the file's other tensors are not
            loaded, on purpose. Default: the one prefix under which the file holds a complete model.

    Raises:
        InputError: the file does not fit the model (the message names the tensors and the prefixes), or it
            holds several complete models and ``prefix`` does not choose one.

    Example:
        >>> load_weights(build_model("rkhsreg.models:mnist_vgg5"), "epoch=9.ckpt")  # doctest: +SKIP
        LoadReport(prefix='net.', unused=[], missing=[])
    """
    state = read_state_dict(path)
    where = str(Path(path))
    wanted = list(model.state_dict().keys())
    if prefix is not None:
        inside = [k for k in state if k.startswith(prefix)]
        if not inside:
            raise InputError(f"{where!r} holds no tensor under prefix {prefix!r}; it holds {_groups(list(state))}.")
        scope = {k: state[k] for k in inside}
        chosen = prefix
    else:
        complete = _complete_prefixes(state, wanted)
        if len(complete) > 1:
            listed = ", ".join(repr(p) for p in complete)
            raise InputError(f"{where!r} holds {len(complete)} complete copies of the model, under prefixes "
                             f"{listed}; choose the one to evaluate with --prefix (e.g. --prefix {complete[0]!r}).")
        chosen = complete[0] if complete else _best_prefix(state, wanted)[0]
        scope = dict(state)
    stripped = {k[len(chosen):]: v for k, v in scope.items() if k.startswith(chosen)}
    wanted_set = set(wanted)
    unused = [k for k in scope if not (k.startswith(chosen) and k[len(chosen):] in wanted_set)]
    missing = [k for k in wanted if k not in stripped]
    expected = model.state_dict()
    wrong = [k for k in wanted if k in stripped and tuple(stripped[k].shape) != tuple(expected[k].shape)]
    shapes = ""
    if wrong:
        k = wrong[0]
        shapes = (f"{len(wrong)} tensors have other shapes (first: {chosen + k!r} is {tuple(stripped[k].shape)} in "
                  f"the file, {k!r} is {tuple(expected[k].shape)} in the model)")
    holds = f"The file holds {_groups(list(scope))}; the model expects {_groups(wanted)}."
    if wanted and len(missing) == len(wanted):
        raise InputError(f"{where!r} does not fit the model: none of the model's tensors is in the file. {holds} "
                         "Check --model and --model-kwargs.")
    if missing and (strict or wrong):
        also = f"; {shapes}" if shapes else ""
        raise InputError(f"{where!r} does not fit the model: {len(missing)} of its {len(wanted)} tensors are not in "
                         f"the file ({_names(missing)}, looked up under prefix {chosen!r}){also}. {holds} Check "
                         "--model and --model-kwargs, or pass --non-strict to leave them at their initial values.")
    if wrong:
        raise InputError(f"{where!r} does not fit the model: {shapes}; check --model, --model-kwargs and "
                         "--num-classes.")
    if strict and unused:
        raise InputError(f"{where!r} holds {len(unused)} tensors the model does not load ({_names(unused)}); "
                         f"the model takes {len(wanted)} tensors under prefix {chosen!r}. Evaluating without them "
                         "gives other numbers: build the model that holds them (a wrapper with its normalisation, "
                         "say) with --model, or pass --non-strict to drop them.")
    model.load_state_dict({k: stripped[k] for k in wanted if k in stripped}, strict=False)
    return LoadReport(prefix=chosen, unused=unused, missing=missing)
