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
from rkhsreg._params import SEED, Interval, OnlyWhen, Tuple, validates

__all__ = ["select_indices", "SELECT_PARAMETERS"]


#: The declared parameters of :func:`select_indices` (rkhsreg._params), also those of ``rkhsreg evaluate``'s
#: ``--n-examples``, ``--first-n``, ``--indices`` and ``--subset-seed``.
SELECT_PARAMETERS = {
    "length": Interval(Integral, 0, None, doc="the split's size"),
    "n_examples": [None, Interval(Integral, 1, None, doc="a seeded subset of that many examples")],
    "first_n": [None, Interval(Integral, 1, None, doc="the split's first examples")],
    "indices": [None, Tuple(Interval(Integral, 0, None), length=(1, None), unique=True,
                            doc="exactly these examples of the split")],
    "seed": OnlyWhen("n_examples", Interval(Integral, 1, None), SEED, text="n_examples is given (a drawn subset)"),
}


def _at_most_length(name: str, count: int, length: int) -> int:
    if count > length:
        raise ParameterError(f"{name}={count!r} is out of range: the split has {length} example"
                             f"{'s' if length != 1 else ''}; pass {name} <= {length}, or None for all of them.",
                             parameter=name, value=count, allowed=f"None or an int in [1, {length}]")
    return count


@validates(SELECT_PARAMETERS)
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
        ParameterError: a value outside its declaration (:data:`SELECT_PARAMETERS`: a count below 1, an index
            below 0 or repeated, a seed outside [0, 2**63)); a count above ``length`` (an accuracy "on 20 examples"
            of a split of 10 would be computed on 10); an index beyond the split.
        ConfigurationError: more than one of ``n_examples``, ``first_n`` and ``indices``.
    """
    given = [name for name, value in (("n_examples", n_examples), ("first_n", first_n), ("indices", indices))
             if value is not None]
    if len(given) > 1:
        raise ConfigurationError(f"{' and '.join(given)} were both given; pass one of n_examples (a seeded subset), "
                                 "first_n or indices.")
    if indices is not None:   # ints >= 0, each once: checked against SELECT_PARAMETERS; the end is the split's
        outside = [i for i in indices if i >= length]
        if outside:
            raise ParameterError(f"indices: {outside[0]!r} is not an example of this split; pass ints from 0 "
                                 f"to {length - 1} (the split has {length} examples).", parameter="indices",
                                 value=list(indices), allowed=f"ints in [0, {length - 1}], each once")
        return list(indices)
    if first_n is not None:
        return list(range(_at_most_length("first_n", first_n, length)))
    if n_examples is None or _at_most_length("n_examples", n_examples, length) == length:
        return list(range(length))
    order = torch.randperm(length, generator=torch.Generator().manual_seed(int(seed)))[:int(n_examples)]
    return order.sort().values.tolist()
