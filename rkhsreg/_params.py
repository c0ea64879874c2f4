"""Parameter declarations and the one validator (after scikit-learn's ``_parameter_constraints``).

Every public constructor or function that takes options declares each parameter's allowed forms once, as a
dict ``{name: form}`` where a form is a constraint below, ``None``, or a list of them (alternatives). One
function, :func:`validate_params`, checks given values against such a dict and raises one error type,
:class:`~rkhsreg.ParameterError` (a :class:`~rkhsreg.ConfigurationError`, so a ``ValueError``), whose message
names the parameter, the value given and every allowed form. It returns the values normalised: numbers as
python ``float``/``int`` (numpy scalars and 0-d tensors are accepted), tuples as tuples.

The plugin base classes (:class:`~rkhsreg.Penalty`, :class:`~rkhsreg.Constraint`, :class:`~rkhsreg.Attack`)
validate the constructor arguments a subclass declares in its ``parameters`` dict before its ``__init__`` runs;
a plugin that declares writes no checks. Each constraint also generates values it refuses and values it
accepts (:meth:`Constraint.invalid_examples`, :meth:`Constraint.valid_examples`): the registry-wide test
(``tests/test_param_fuzz.py``) fuzzes every declared parameter of every registered plugin with them.

Example:
    >>> from numbers import Real
    >>> declared = {"epsilon": Interval(Real, 0, None, closed="neither"), "norm": Options({"l2", "linf"})}
    >>> validate_params(declared, {"epsilon": 0.5, "norm": "l2"})
    {'epsilon': 0.5, 'norm': 'l2'}
    >>> validate_params(declared, {"epsilon": 0, "norm": "l2"})
    Traceback (most recent call last):
    ...
    rkhsreg._errors.ParameterError: epsilon=0 is out of range; it must be > 0 (allowed: a finite float > 0).
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import torch

from rkhsreg._errors import ConfigurationError, ParameterError

__all__ = ["Constraint", "Interval", "Options", "Boolean", "Tuple", "InstanceOf", "IsCallable", "Device",
           "Check", "OnlyWhen", "AtMost", "SEED", "PATH", "Declaration", "validate_params", "signature_defaults", "validate_param", "validates", "validate_fields",
           "declared_parameters",
           "describe"]

Declaration = Any  # a Constraint, None, or a list of them


class _Refused(Exception):
    """Raised by :meth:`Constraint.convert`: ``reason`` completes "name=value ..."; ``verbatim``: a whole
    message already naming the parameter (from a :class:`Check` function), used as is."""

    def __init__(self, reason: str, verbatim: str = "", complete: bool = False) -> None:
        super().__init__(reason)
        self.reason, self.verbatim, self.complete = reason, verbatim, complete


class Constraint(abc.ABC):
    """One allowed form of a parameter.

    Subclasses implement :meth:`convert` (the normalised value, or :class:`_Refused` with the reason),
    :meth:`in_domain` (whether the value is of this form's type, to say *why* it is refused),
    :meth:`describe` and the two example generators used by the fuzz test.
    """

    def __init__(self, doc: str = "") -> None:
        self.doc = doc

    @abc.abstractmethod
    def convert(self, value: Any) -> Any:
        """The normalised value, or :class:`_Refused` with the reason."""

    def in_domain(self, value: Any) -> bool:
        return True

    @abc.abstractmethod
    def _describe(self) -> str:
        """The form in words ("a float > 0")."""

    def describe(self) -> str:
        return f"{self._describe()} — {self.doc}" if self.doc else self._describe()

    def invalid_examples(self) -> list[Any]:
        """Values this form refuses (wrong type, just outside each bound, non-finite, look-alike strings)."""
        return [object()]

    def valid_examples(self) -> list[tuple[Any, Any]]:
        """``(given, stored)`` pairs this form accepts: ``stored`` is the normalised value expected."""
        return []

    def __repr__(self) -> str:
        return f"<{self.describe()}>"


# ------------------------------------------------------------------------------------------- numbers
def _number(value: Any, integral: bool) -> int | float | None:
    """``value`` as a python int (``integral``) or float, or None if it is not such a number.

    Booleans are refused (``True`` is an ``int`` to python, not a number to a user); numpy scalars are
    ``numbers.Real``/``numbers.Integral``; a 0-d tensor or array counts as its element.
    """
    if isinstance(value, torch.Tensor):
        if value.dim() != 0 or value.dtype == torch.bool or value.is_complex():
            return None
        if integral and value.is_floating_point():
            return None
        value = value.item()
    if isinstance(value, np.ndarray):
        if value.ndim != 0 or value.dtype == np.bool_:
            return None
        value = value.item()
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return None
    if integral:
        return int(value) if isinstance(value, numbers.Integral) else None
    if not isinstance(value, numbers.Real):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond float's range
        return math.inf if value > 0 else -math.inf


def _a(word: str) -> str:
    """``word`` with its article: "an int", "a DeformationBudget(...)"."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _fmt(x: float) -> str:
    if isinstance(x, int) and x > 2 ** 20 and x & (x - 1) == 0:
        return f"2**{x.bit_length() - 1}"     # a seed's end reads 2**63, not 9223372036854775808
    return f"{x:g}" if isinstance(x, float) else str(x)


class Interval(Constraint):
    """A number in an interval: ``Interval(Real, 0, None, closed="neither")`` is a float > 0.

    Args:
        kind: ``numbers.Real`` (any real number, returned as a float) or ``numbers.Integral`` (returned as an
            int; floats such as ``2.0`` are refused).
        low: the lower end (``None``: unbounded).
        high: the upper end (``None``: unbounded).
        closed: which ends belong to it, ``"left"``, ``"right"``, ``"both"`` or ``"neither"``.
        doc: what the parameter means, quoted in messages.

    NaN is always refused; ±inf only where it is a closed end (``Interval(Real, 0, math.inf, closed="both")``).
    """

    def __init__(self, kind: type, low: float | None, high: float | None, *, closed: str = "left",
                 doc: str = "") -> None:
        super().__init__(doc)
        if kind not in (numbers.Real, numbers.Integral):
            raise TypeError("Interval kind must be numbers.Real or numbers.Integral")
        if closed not in ("left", "right", "both", "neither"):
            raise ValueError(f"closed={closed!r}: choose 'left', 'right', 'both' or 'neither'")
        self.kind, self.low, self.high, self.closed = kind, low, high, closed
        self.integral = kind is numbers.Integral
        self.left = closed in ("left", "both") and low is not None
        self.right = closed in ("right", "both") and high is not None

    def in_domain(self, value: Any) -> bool:
        return _number(value, self.integral) is not None

    def _bounds_text(self) -> str:
        low, high = self.low, self.high
        if low is not None and high is not None:
            return (f"in {'[' if self.left else '('}{_fmt(low)}, {_fmt(high)}{']' if self.right else ')'}")
        if low is not None:
            return f"{'>=' if self.left else '>'} {_fmt(low)}"
        if high is not None:
            return f"{'<=' if self.right else '<'} {_fmt(high)}"
        return ""

    def _describe(self) -> str:
        return f"{'an int' if self.integral else 'a finite float'} {self._bounds_text()}".rstrip()

    def convert(self, value: Any) -> Any:
        number = _number(value, self.integral)
        if number is None:
            if not self.integral or _number(value, False) is None:
                raise _Refused("is not a number" if not self.integral else "is not an integer")
            raise _Refused("is not an integer")
        if isinstance(number, float) and math.isnan(number):
            raise _Refused("is not finite")
        if math.isinf(number) and not (number == self.low and self.left or number == self.high and self.right):
            raise _Refused("is not finite")
        if self.low is not None and (number < self.low or number == self.low and not self.left):
            raise _Refused(f"is out of range; it must be {'>=' if self.left else '>'} {_fmt(self.low)}")
        if self.high is not None and (number > self.high or number == self.high and not self.right):
            raise _Refused(f"is out of range; it must be {'<=' if self.right else '<'} {_fmt(self.high)}")
        return number

    def _inside(self) -> list[int | float]:
        low = self.low if self.low is not None and math.isfinite(self.low) else None
        high = self.high if self.high is not None and math.isfinite(self.high) else None
        if self.integral:
            lo = (low if self.left else low + 1) if low is not None else None
            hi = (high if self.right else high - 1) if high is not None else None
            if lo is None:
                lo = hi - 3 if hi is not None else 3
            return sorted({lo, min(lo + 2, hi) if hi is not None else lo + 2})
        points = []
        if low is not None and high is not None:
            points.append(low + (high - low) / 4)  # exact in binary for the usual ends (0, 1, ...)
        elif low is not None:
            points.append(low + 0.5)
        elif high is not None:
            points.append(high - 0.5)
        else:
            points.append(0.5)
        if self.left:
            points.append(float(low))
        return points

    def valid_examples(self) -> list[tuple[Any, Any]]:
        out: list[tuple[Any, Any]] = []
        for x in self._inside():
            if self.integral:
                x = int(x)
                out += [(x, x), (np.int64(x), x), (np.int32(x), x), (torch.tensor(x), x)]
            else:
                x = float(x)
                out += [(x, x), (np.float64(x), x), (torch.tensor(x, dtype=torch.float64), x)]
                if float(np.float32(x)) == x:
                    out.append((np.float32(x), x))
                if x.is_integer():
                    out += [(int(x), x), (np.int64(int(x)), x)]
        return out

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = [True, "1", None, [1]]
        if self.low is not None and math.isfinite(self.low):
            if self.integral:
                out.append(int(self.low) - 1 if self.left else int(self.low))
            else:
                out.append(float(np.nextafter(self.low, -math.inf)) if self.left else float(self.low))
        if self.high is not None and math.isfinite(self.high):
            if self.integral:
                out.append(int(self.high) + 1 if self.right else int(self.high))
            else:
                out.append(float(np.nextafter(self.high, math.inf)) if self.right else float(self.high))
        if self.integral:
            out += [float(self._inside()[0]) + 0.5, float(self._inside()[0])]   # floats, even integer-valued
        else:
            out.append(math.nan)
            if not (self.low == -math.inf and self.left):
                out.append(-math.inf)
            if not (self.high == math.inf and self.right):
                out.append(math.inf)
        return out


#: A random seed: an int in [0, 2**63) (what ``torch.Generator.manual_seed`` takes as a non-negative int64).
SEED = Interval(numbers.Integral, 0, 2 ** 63, closed="left")


def _option_match(option: Any, value: Any) -> bool:
    if option is None:
        return value is None
    if isinstance(option, str):
        return isinstance(value, str) and value == option
    if isinstance(option, numbers.Integral) and not isinstance(option, bool):
        number = _number(value, True)
        return number is not None and number == option
    if isinstance(option, numbers.Real) and not isinstance(option, bool):
        number = _number(value, False)
        return number is not None and number == option
    return type(value) is type(option) and value == option


class Options(Constraint):
    """One of a fixed set of values: ``Options({"l2", "linf"})``; ``Options({1, 2})`` (numbers match by value,
    booleans never match numbers). The option itself is returned (``np.int64(2)`` gives ``2``)."""

    def __init__(self, options: Iterable[Any], *, doc: str = "") -> None:
        super().__init__(doc)
        self.options = tuple(sorted(options, key=repr)) if not isinstance(options, (list, tuple)) else tuple(options)

    def in_domain(self, value: Any) -> bool:
        return any(isinstance(value, str) if isinstance(o, str) else _number(value, False) is not None
                   for o in self.options)

    def _describe(self) -> str:
        items = [repr(o) for o in self.options]
        return items[0] if len(items) == 1 else "one of " + ", ".join(items)

    def convert(self, value: Any) -> Any:
        for option in self.options:
            if _option_match(option, value):
                return option
        raise _Refused("is not allowed")

    def valid_examples(self) -> list[tuple[Any, Any]]:
        out = [(o, o) for o in self.options]
        out += [(np.int64(o), o) for o in self.options if isinstance(o, int) and not isinstance(o, bool)]
        return out

    def invalid_examples(self) -> list[Any]:
        out: list[Any] = [True, object()]
        for o in self.options:
            if isinstance(o, str):
                out += [o.upper() if o.upper() != o else o.lower() + "_", o + " ", o[:-1] or "?"]
            elif isinstance(o, int):
                out += [float(o), str(o)]
        return out


class Boolean(Constraint):
    """``True`` or ``False`` (numpy booleans too). The strings ``"False"``/``"no"`` and the ints 0/1 are refused:
    ``bool("False")`` is ``True``."""

    def in_domain(self, value: Any) -> bool:
        return isinstance(value, bool) or isinstance(value, np.bool_)

    def _describe(self) -> str:
        return "True or False"

    def convert(self, value: Any) -> Any:
        if self.in_domain(value):
            return bool(value)
        raise _Refused("is not allowed")

    def valid_examples(self) -> list[tuple[Any, Any]]:
        return [(True, True), (False, False), (np.bool_(True), True)]

    def invalid_examples(self) -> list[Any]:
        return ["False", "True", "no", "yes", 0, 1, None]


class _NoneForm(Constraint):
    def in_domain(self, value: Any) -> bool:
        return value is None

    def _describe(self) -> str:
        return "None"

    def convert(self, value: Any) -> Any:
        if value is None:
            return None
        raise _Refused("is not None")

    def valid_examples(self) -> list[tuple[Any, Any]]:
        return [(None, None)]

    def invalid_examples(self) -> list[Any]:
        return ["None"]


class Tuple(Constraint):
    """A tuple or list of values, returned as a tuple.

    Args:
        items: one form for every element (with ``length``), or a list of forms, one per element.
        length: the number of elements (an int), a ``(min, max)`` pair (``max`` None: unbounded), or None.
        where: a relation the elements must satisfy, e.g. ``lambda t: t[0] < t[1]``.
        where_doc: that relation in words, e.g. ``"low < high"``.
        unique: refuse an element given twice (example indices, an attack ensemble), naming it.
        doc: what the parameter means.

    Example:
        >>> from numbers import Real
        >>> clip = Tuple(Interval(Real, None, None), length=2, where=lambda t: t[0] < t[1], where_doc="low < high")
        >>> validate_param("clip", [0, 1], clip)
        (0.0, 1.0)
    """

    def __init__(self, items: Any, *, length: int | tuple[int, int | None] | None = None,
                 where: Callable[[tuple], bool] | None = None, where_doc: str = "", unique: bool = False,
                 doc: str = "", text: str = "") -> None:
        super().__init__(doc)
        self.text, self.unique = text, unique
        if isinstance(items, list):
            self.items: list[Any] | None = items
            self.item = None
            length = len(items)
        else:
            self.items, self.item = None, items
        self.length = (length, length) if isinstance(length, int) else (length or (0, None))
        self.where, self.where_doc = where, where_doc

    def in_domain(self, value: Any) -> bool:
        return isinstance(value, (tuple, list, torch.Size))

    def _describe(self) -> str:
        low, high = self.length
        if self.text:
            return self.text
        if self.items is not None:
            inner = ", ".join(describe(f) for f in self.items)
            text = f"a ({inner}) tuple"
        else:
            size = (f"{low}" if low == high else f"{low} or more" if high is None else f"{low} to {high}")
            text = f"a tuple of {size} (each {describe(self.item)}{', each once' if self.unique else ''})"
        return text + (f" with {self.where_doc}" if self.where_doc else "")

    def convert(self, value: Any) -> Any:
        if not self.in_domain(value):
            raise _Refused("is not allowed: not a tuple or list")
        low, high = self.length
        if len(value) < low or high is not None and len(value) > high:
            raise _Refused(f"is not allowed: it has {len(value)} element(s)")
        out = []
        for i, element in enumerate(value):
            form = self.items[i] if self.items is not None else self.item
            try:
                out.append(_convert(form, element))
            except _Refused as exc:
                raise _Refused(f"is not allowed: element {i} = {element!r} {exc.reason}") from None
        out_t = tuple(out)
        if self.unique:
            repeated = [v for i, v in enumerate(out_t) if v in out_t[:i]]
            if repeated:
                listed = ", ".join(map(repr, dict.fromkeys(repeated)))
                raise _Refused(f"is not allowed: it lists {listed} more than once; list each once")
        if self.where is not None and not self.where(out_t):
            raise _Refused(f"is not allowed: it breaks {self.where_doc or 'the relation between its elements'}")
        return out_t

    def _forms(self) -> list[Any]:
        low, high = self.length
        n = max(low, 1) if high is None else max(min(low, high), 1) if low == 0 else low
        return self.items if self.items is not None else [self.item] * n

    def valid_examples(self) -> list[tuple[Any, Any]]:
        picks = []
        for form in self._forms():
            examples = [e for f in _forms(form) for e in f.valid_examples()]
            if not examples:
                return []
            picks.append(examples)
        out = []
        for variant in range(max(len(p) for p in picks)):   # a few combinations, not the product
            given = [p[min(variant, len(p) - 1)] for p in picks]
            stored = tuple(g[1] for g in given)
            if self.where is None or self.where(stored):
                out += [(tuple(g[0] for g in given), stored), (list(g[0] for g in given), stored)]
        return out

    def invalid_examples(self) -> list[Any]:
        low, high = self.length
        out: list[Any] = ["(0, 1)", 1.5]
        valid = self.valid_examples()
        if valid:
            sample = tuple(valid[0][1])
            if low > 0:
                out.append(sample[:low - 1])
            if high is not None:
                out.append(sample + sample[-1:])
            if self.where is not None and len(sample) >= 2:
                out.append(tuple(reversed(sample)) if not self.where(tuple(reversed(sample))) else sample[:0])
            bad = next(iter(_invalid_only(self._forms()[0])), None)
            if bad is not None:
                out.append((bad,) + sample[1:])
            if self.unique and sample and (high is None or len(sample) < high):
                out.append(sample + sample[:1])
        return out


class InstanceOf(Constraint):
    """An instance of one of ``types`` (returned as is)."""

    def __init__(self, *types: type, doc: str = "") -> None:
        super().__init__(doc)
        self.types = types

    def in_domain(self, value: Any) -> bool:
        return isinstance(value, self.types)

    def _describe(self) -> str:
        return " or ".join(_a(f"torch.{t.__name__}" if t.__module__.startswith("torch") else f"{t.__name__}(...)")
                           for t in self.types)

    def convert(self, value: Any) -> Any:
        if isinstance(value, self.types):
            return value
        raise _Refused(f"is not allowed: it is {_a(type(value).__name__)}")

    def invalid_examples(self) -> list[Any]:
        return [object(), "x"]


class IsCallable(Constraint):
    """A callable (function, lambda, class, object with ``__call__``)."""

    def in_domain(self, value: Any) -> bool:
        return callable(value)

    def _describe(self) -> str:
        return "a callable"

    def convert(self, value: Any) -> Any:
        if callable(value):
            return value
        raise _Refused("is not allowed: not callable")

    def valid_examples(self) -> list[tuple[Any, Any]]:
        return []

    def invalid_examples(self) -> list[Any]:
        return [object(), "f"]


_NOT_A_DEVICE = "is not a device; pass cpu, cuda or cuda:0 (…), a torch.device or its name"


class Device(Constraint):
    """A device: a ``torch.device`` or a string torch parses (``"cpu"``, ``"cuda:0"``), returned as
    ``torch.device``; CUDA/MPS devices are refused where unavailable."""

    def in_domain(self, value: Any) -> bool:
        return isinstance(value, (str, torch.device))

    def _describe(self) -> str:
        return "cpu, cuda or cuda:0 (…): a torch.device or its name"

    def convert(self, value: Any) -> Any:
        if not isinstance(value, (str, torch.device)):
            raise _Refused(_NOT_A_DEVICE, complete=True)
        try:
            device = torch.device(value)
        except (RuntimeError, TypeError, ValueError):
            raise _Refused(_NOT_A_DEVICE, complete=True) from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise _Refused(": CUDA is not available on this machine; pass cpu", complete=True)
        if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
            raise _Refused(f": this machine has {torch.cuda.device_count()} CUDA device(s); pass cuda:0 to "
                           f"cuda:{torch.cuda.device_count() - 1}", complete=True)
        if device.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
            raise _Refused(": MPS is not available on this machine; pass cpu", complete=True)
        return device

    def valid_examples(self) -> list[tuple[Any, Any]]:
        return [("cpu", torch.device("cpu")), (torch.device("cpu"), torch.device("cpu"))]

    def invalid_examples(self) -> list[Any]:
        return ["gpu0", 3.5, "cpu:x"] + ([] if torch.cuda.is_available() else ["cuda"])


class Check(Constraint):
    """A form checked by a function: ``fn(value)`` returns the normalised value or raises ``ValueError``/
    ``TypeError`` (whose text, if any, is quoted; a :class:`~rkhsreg.ConfigurationError`'s message, which names
    the parameter already, is kept whole). For shapes the other forms cannot say (a list of module names and
    types, an attack ensemble). ``examples``: values it accepts, for the fuzz test."""

    def __init__(self, fn: Callable[..., Any], doc: str, *, domain: tuple[type, ...] = (object,),
                 examples: Iterable[Any] = (), named: bool = False) -> None:
        super().__init__("")
        self.fn, self.text, self.domain, self.examples, self.named = fn, doc, domain, list(examples), named

    def in_domain(self, value: Any) -> bool:
        return isinstance(value, self.domain)

    def _describe(self) -> str:
        return self.text

    def convert(self, value: Any, name: str = "") -> Any:
        try:
            return self.fn(value, name) if self.named and name else self.fn(value)
        except ConfigurationError as exc:
            raise _Refused("is not allowed", verbatim=str(exc)) from None
        except (ValueError, TypeError) as exc:
            raise _Refused(f"is not allowed ({exc})" if str(exc) else "is not allowed") from None

    def valid_examples(self) -> list[tuple[Any, Any]]:
        return [(e, self.fn(e)) for e in self.examples]

    def invalid_examples(self) -> list[Any]:
        return [object()]


# ------------------------------------------------------------------------ relations between parameters
class OnlyWhen:
    """A parameter that has an effect only under a condition on another parameter, wrapping its declaration:
    ``OnlyWhen("candidates", "auto", [None, Interval(Real, 0, None)])`` (``budget`` applies only when
    ``candidates='auto'``).

    The value is checked against ``declaration`` as usual; then, where the caller knows the defaults (the
    plugins, ``@validates`` functions and settings dataclasses), a value other than the default given while the
    condition is false is refused with :class:`~rkhsreg.ParameterError` ("budget=30 has no effect with
    candidates=4: it applies only when candidates='auto'"), instead of being accepted and ignored.

    Args:
        other: the parameter the condition is on.
        applies: the value of ``other`` under which this parameter applies, a set of such values, or a
            :class:`Constraint` its value must satisfy (``InstanceOf(str)``).
        declaration: this parameter's own allowed forms.
        text: the condition in words (default ``"other='value'"``).
    """

    def __init__(self, other: str, applies: Any, declaration: Declaration, *, text: str = "") -> None:
        self.other, self.applies, self.declaration = other, applies, declaration
        if isinstance(applies, Constraint):
            self.text = text or f"{other} is {applies.describe()}"
        elif isinstance(applies, (set, frozenset)):
            self.text = text or f"{other} is one of {', '.join(sorted(map(repr, applies)))}"
        else:
            self.text = text or f"{other}={applies!r}"

    def holds(self, other_value: Any) -> bool:
        """Whether the parameter applies when ``other`` has the (normalised) value ``other_value``."""
        if isinstance(self.applies, Constraint):
            try:
                self.applies.convert(other_value)
            except _Refused:
                return False
            return True
        options = self.applies if isinstance(self.applies, (set, frozenset)) else {self.applies}
        return any(_option_match(option, other_value) for option in options)

    def refusal(self, name: str, value: Any, other_value: Any, default: Any) -> str:
        fix = (f"pass {self.other}={self.applies!r}" if not isinstance(self.applies, (Constraint, set, frozenset))
               else f"change {self.other}")
        shown = _short(other_value) if "\n" not in repr(other_value) else f"{type(other_value).__name__}(...)"
        return (f"{name}={_short(value)} has no effect with {self.other}={shown}: it applies only "
                f"when {self.text}; leave {name} out (default {default!r}) or {fix}")

    def __repr__(self) -> str:
        return f"<{describe(self.declaration)}, only when {self.text}>"


class AtMost:
    """A number that may not exceed another parameter's value, wrapping its declaration:
    ``AtMost("max_displacement", Interval(Real, 0, None))`` (a translation within the displacement budget).

    Checked like :class:`OnlyWhen`: where the caller knows the defaults, a value other than the default that is
    larger than ``other`` is refused with :class:`~rkhsreg.ParameterError`; the default itself is capped by the
    code that uses it (``text`` says so).
    """

    def __init__(self, other: str, declaration: Declaration, *, text: str = "") -> None:
        self.other, self.declaration, self.text = other, declaration, text

    def refusal(self, name: str, value: Any, other_value: Any, default: Any) -> str:
        why = f": {self.text}" if self.text else ""
        return (f"{name}={_short(value)} is larger than {self.other}={_short(other_value)}{why}, so it would be "
                f"cut to {_short(other_value)}; pass {name} <= {_short(other_value)} or raise {self.other}")

    def __repr__(self) -> str:
        return f"<{describe(self.declaration)}, at most {self.other}>"


def _chain(declaration: Declaration) -> list[OnlyWhen | AtMost]:
    """The relations a declaration is wrapped in, outermost first (``OnlyWhen("mode", "per_class",
    OnlyWhen("candidates", "auto", form))``: two conditions, both needed)."""
    out = []
    while isinstance(declaration, (OnlyWhen, AtMost)):
        out.append(declaration)
        declaration = declaration.declaration
    return out


def _relations(declarations: Mapping[str, Declaration]) -> dict[str, list[OnlyWhen | AtMost]]:
    """The parameters related to another (:class:`OnlyWhen`, :class:`AtMost`), each with its relations."""
    return {name: _chain(d) for name, d in declarations.items() if _chain(d)}


def _same_value(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if isinstance(a, bool) != isinstance(b, bool) or isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return False
    try:
        return bool(a == b)
    except Exception:   # an object whose == is not a truth value (an array)
        return False


def _check_relations(declarations: Mapping[str, Declaration], checked: Mapping[str, Any],
                     given: Mapping[str, Any], defaults: Mapping[str, Any], owner: str) -> None:
    """Refuse a value given other than its default where its :class:`OnlyWhen` condition is false, or above its
    :class:`AtMost` bound."""
    where = f"{owner}: " if owner else ""
    for name, relation in [(n, r) for n, chain in _relations(declarations).items() for r in chain]:
        if name not in checked or name not in defaults or _same_value(checked[name], defaults[name]):
            continue
        if relation.other in checked:
            other_value = checked[relation.other]
        elif relation.other in defaults:
            other_value = defaults[relation.other]
        else:
            continue
        if isinstance(relation, OnlyWhen):
            if relation.holds(other_value):
                continue
            allowed = f"the default {defaults[name]!r} unless {relation.text}"
        else:
            bound = _number(other_value, False)
            value = _number(checked[name], False)
            if bound is None or value is None or value <= bound:
                continue
            allowed = f"{describe(relation.declaration)}, at most {relation.other}"
        raise ParameterError(where + relation.refusal(name, given.get(name, checked[name]), other_value,
                                                      defaults[name]) + ".",
                             parameter=name, value=given.get(name, checked[name]), allowed=allowed)


# ------------------------------------------------------------------------------------------ validator
def _forms(declaration: Declaration) -> list[Constraint]:
    if isinstance(declaration, (OnlyWhen, AtMost)):
        return _forms(declaration.declaration)
    items = declaration if isinstance(declaration, list) else [declaration]
    return [_NoneForm() if item is None else item for item in items]


def _convert(declaration: Declaration, value: Any, name: str = "") -> Any:
    forms = _forms(declaration)
    for form in forms:
        try:
            return form.convert(value, name) if isinstance(form, Check) else form.convert(value)
        except _Refused:
            continue
    typed = [f for f in forms if not isinstance(f, _NoneForm) and f.in_domain(value)]
    real = [f for f in forms if not isinstance(f, _NoneForm)]
    for candidates in (typed, real):
        if len(candidates) == 1:
            try:
                form = candidates[0]
                form.convert(value, name) if isinstance(form, Check) else form.convert(value)
            except _Refused as exc:
                raise _Refused(exc.reason, exc.verbatim, exc.complete) from None
    raise _Refused("is not allowed")


def describe(declaration: Declaration) -> str:
    """Every allowed form of a declaration, in words: ``"None or a float > 0"``."""
    texts = [f.describe() for f in _forms(declaration)]
    return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " or " + texts[-1]


def _invalid_only(form: Constraint) -> list[Any]:
    out = []
    for value in form.invalid_examples():
        try:
            form.convert(value)
        except _Refused:
            out.append(value)
    return out


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_param(name: str, value: Any, declaration: Declaration, *, owner: str = "") -> Any:
    """Check one value against its declaration; return it normalised.

    Raises:
        ParameterError: naming ``owner`` (e.g. ``"adversarial_perturbation"``), ``name``, the value and every
            allowed form.
    """
    try:
        return _convert(declaration, value, name)
    except _Refused as exc:
        where = f"{owner}: " if owner else ""
        allowed = describe(declaration)
        if exc.verbatim:
            raise ParameterError(where + exc.verbatim, parameter=name, value=value, allowed=allowed) from None
        sep = "" if exc.reason.startswith(":") else " "
        if exc.complete and len([f for f in _forms(declaration) if not isinstance(f, _NoneForm)]) == 1:
            raise ParameterError(f"{where}{name}={_short(value)}{sep}{exc.reason}.", parameter=name, value=value,
                                 allowed=allowed)
        raise ParameterError(f"{where}{name}={_short(value)}{sep}{exc.reason} (allowed: {allowed}).",
                             parameter=name, value=value, allowed=allowed) from None


def validate_params(declarations: Mapping[str, Declaration], values: Mapping[str, Any], *,
                    owner: str = "", defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Check ``values`` against ``declarations``; return a dict of the normalised values.

    Only the names in ``values`` are checked; a name with no declaration is returned as given (the registry
    test ``test_every_constructor_parameter_is_declared`` makes sure plugins declare them all).

    ``defaults``: the signature's (or dataclass's) defaults. With them, the relations between parameters are
    checked too, once every value fits its own form: a parameter declared :class:`OnlyWhen` given a value other
    than its default while its condition is false, or one declared :class:`AtMost` given a value above the
    other parameter's, is refused (a value equal to the default cannot be told from one left out).

    Raises:
        ParameterError: for the first value refused, naming the parameter, the value and every allowed form.
    """
    checked = {name: validate_param(name, value, declarations[name], owner=owner) if name in declarations
               else value for name, value in values.items()}
    if defaults is not None:
        _check_relations(declarations, checked, values, defaults, owner)
    return checked


def signature_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    """The defaults of ``fn``'s parameters (for :func:`validate_params`'s ``defaults``)."""
    import inspect
    return {n: p.default for n, p in inspect.signature(fn).parameters.items() if p.default is not p.empty}


def validates(declarations: Mapping[str, Declaration], *,
              owner: str | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a public function so the declared arguments are validated (and normalised) before it runs.

    ``owner`` names it in messages (default: the function's name; give the class name for an ``__init__``).

    The declarations are kept on the function as ``__wrapped__.parameters`` and ``parameters``, for the
    registry-wide test.

    Example:
        >>> from numbers import Integral
        >>> @validates({"steps": Interval(Integral, 1, None)})
        ... def run(model, *, steps=10):
        ...     return steps
        >>> run(None, steps=np.int64(3))
        3
    """
    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        import functools
        import inspect
        signature = inspect.signature(fn)
        defaults = signature_defaults(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            checked = validate_params(declarations, {n: v for n, v in bound.arguments.items()
                                                     if n in declarations}, owner=owner or fn.__name__,
                                      defaults=defaults)
            bound.arguments.update(checked)
            return fn(*bound.args, **bound.kwargs)

        wrapper.parameters = dict(declarations)  # type: ignore[attr-defined]
        return wrapper
    return decorate


def validate_fields(obj: Any) -> None:
    """Validate the fields of a (frozen) dataclass against its ``parameters`` and store the normalised values:
    call it from ``__post_init__``.

    Raises:
        ParameterError: naming the class, the field, the value and every allowed form.
    """
    import dataclasses

    fields = [f for f in dataclasses.fields(obj) if f.init]
    values = {f.name: getattr(obj, f.name) for f in fields}
    defaults = {f.name: f.default for f in fields if f.default is not dataclasses.MISSING}
    defaults.update({f.name: f.default_factory() for f in fields  # type: ignore[misc]
                     if f.default_factory is not dataclasses.MISSING})
    for name, value in validate_params(declared_parameters(type(obj)), values, owner=type(obj).__name__,
                                       defaults=defaults).items():
        object.__setattr__(obj, name, value)


def declared_parameters(cls: type) -> dict[str, Declaration]:
    """The ``parameters`` declarations of ``cls`` merged along its MRO (a subclass's own win)."""
    merged: dict[str, Declaration] = {}
    for klass in reversed(cls.__mro__):
        merged.update(klass.__dict__.get("parameters", {}) or {})
    return merged


def _path(value: Any) -> Any:
    import os
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value).strip():
        raise ValueError("it names no file or folder")
    return value


#: A file or folder path: a non-empty ``str`` or ``os.PathLike`` (a ``pathlib.Path``), returned as given.
PATH = Check(_path, "a path (a non-empty str or a pathlib.Path)", examples=["results/eval.json"])
