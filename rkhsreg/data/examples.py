"""Which examples of a split are evaluated: a seeded subset, the first n, or given indices — the rule
``rkhsreg evaluate`` applies (``--n-examples``/``--subset-seed``, ``--first-n``, ``--indices``), so that a Python
loader returns the very examples the command line evaluates.

Example:
    >>> select_indices(10, n_examples=3, seed=0)
    [1, 4, 7]
    >>> select_indices(10, first_n=3), select_indices(10, indices=[5, 1])
    ([0, 1, 2], [5, 1])
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch

from rkhsreg._errors import ConfigurationError, ParameterError

__all__ = ["select_indices"]


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or int(value) < 1:
        raise ConfigurationError(f"{name}={value!r} is not allowed; pass an int >= 1 or None.")
    return int(value)


def _at_most_length(name: str, value: object, length: int) -> int:
    count = _count(name, value)
    if count > length:
        raise ParameterError(f"{name}={value!r} is out of range: the split has {length} example"
                             f"{'s' if length != 1 else ''}; pass {name} <= {length}, or None for all of them.",
                             parameter=name, value=value, allowed=f"None or an int in [1, {length}]")
    return count


def select_indices(length: int, *, n_examples: int | None = None, first_n: int | None = None,
                   indices: Sequence[int] | None = None, seed: int = 0) -> list[int]:
    """Indices into a split of ``length`` examples, chosen as ``rkhsreg evaluate`` chooses them.

    Args:
        length: the split's size.
        n_examples: that many examples drawn without replacement by ``torch.randperm`` seeded with ``seed``,
            returned sorted (an ImageFolder lists one class after another, so the first n would be one class);
            all of them, in order, when ``None`` or ``length``. More than ``length`` is refused.
        first_n: the first ``first_n`` examples instead (at most ``length``).
        indices: exactly these examples, in this order (each once).
        seed: the seed of the drawn subset (the CLI's ``--subset-seed``, default its ``--seed``, 0).

    Raises:
        ConfigurationError: more than one of ``n_examples``, ``first_n`` and ``indices``; a count below 1 or above
            ``length`` (a :class:`~rkhsreg.ParameterError`: an accuracy "on 20 examples" of a split of 10 would be
            computed on 10); an index out of range or repeated; a seed that is not an int.
    """
    given = [name for name, value in (("n_examples", n_examples), ("first_n", first_n), ("indices", indices))
             if value is not None]
    if len(given) > 1:
        raise ConfigurationError(f"{' and '.join(given)} were both given; pass one of n_examples (a seeded subset), "
                                 "first_n or indices.")
    if isinstance(seed, bool) or not isinstance(seed, Integral):
        raise ConfigurationError(f"seed={seed!r} is not allowed; pass an int.")
    if indices is not None:
        if isinstance(indices, (str, bytes)) or not isinstance(indices, Sequence) or not indices:
            raise ConfigurationError(f"indices={indices!r} is not allowed; pass a non-empty list of ints.")
        chosen = []
        for value in indices:
            if isinstance(value, bool) or not isinstance(value, Integral) or not 0 <= int(value) < length:
                raise ConfigurationError(f"indices: {value!r} is not an example of this split; pass ints from 0 "
                                         f"to {length - 1} (the split has {length} examples).")
            chosen.append(int(value))
        repeated = sorted({v for v in chosen if chosen.count(v) > 1})
        if repeated:
            raise ConfigurationError(f"indices list {', '.join(map(str, repeated))} more than once; each example "
                                     "counts once in an accuracy, so list it once.")
        return chosen
    if first_n is not None:
        return list(range(_at_most_length("first_n", first_n, length)))
    if n_examples is None or _at_most_length("n_examples", n_examples, length) == length:
        return list(range(length))
    order = torch.randperm(length, generator=torch.Generator().manual_seed(int(seed)))[:int(n_examples)]
    return order.sort().values.tolist()
