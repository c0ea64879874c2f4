"""Argument handling shared by the penalties that search over inputs (ε-ball or deformations)."""

from __future__ import annotations

from typing import Any

import torch

from numbers import Integral, Real

from rkhsreg._checks import (call_model, check_in_box, check_logits, check_num_classes, warn_if_probabilities,
                             warn_unboxed_range)
from rkhsreg._errors import ParameterError
from rkhsreg._params import SEED, Boolean, Interval, Options, Tuple, validate_param

from rkhsreg._plugin import Penalty

MODES = ("per_class", "joint")
NORMS = ("l2", "linf")

# ------------------------------------------------------------------ shared declarations (rkhsreg._params)
#: ``mode``: one maximisation per class (the paper's ‖f‖²) or one over all classes together.
MODE = Options(MODES)
#: ``norm`` of the ε-ball.
NORM = Options(NORMS)
#: ``steps`` of a search (PGD, signed-gradient ascent).
STEPS = Interval(Integral, 1, None)
#: ``step_size``: None (a default from the budget and ``steps``) or a length > 0 (0 would never move).
STEP_SIZE = [None, Interval(Real, 0, None, closed="neither")]
#: ``epsilon``: the radius of the ball, > 0 (ε = 0 makes the penalty identically zero).
EPSILON = Interval(Real, 0, None, closed="neither", doc="the radius of the ball")
#: ``candidates`` of the deformation search.
CANDIDATES = [Interval(Integral, 1, None, doc="examples per class that continue the search"),
              Options(("all",), doc="every example of the batch, the exhaustive search")]
#: ``classes`` of the per-class penalties.
CLASSES = [Options(("all",)), Interval(Integral, 0, None, doc="the true class plus that many top-scoring others")]
#: ``clip``: None or the (low, high) box the inputs live in.
CLIP = [None, Tuple(Interval(Real, None, None), length=2, where=lambda box: box[0] < box[1], where_doc="low < high",
                    text="a (low, high) pair of finite floats with low < high", doc="the box the inputs live in")]
#: ``eval_mode``: run the inner search with BatchNorm/Dropout in eval mode.
EVAL_MODE = Boolean()


def check_candidates(value: Any) -> int | str:
    """``candidates``: an int >= 1 or ``"all"`` (exhaustive search)."""
    return validate_param("candidates", value, CANDIDATES)


def check_classes(value: Any) -> int | str:
    """``classes``: ``"all"`` or an int >= 0 (true class + that many top-scoring other classes)."""
    return validate_param("classes", value, CLASSES)


def check_clip(value: Any) -> tuple[float, float] | None:
    """``clip``: None or a (low, high) pair with low < high."""
    return validate_param("clip", value, CLIP)


def check_mode(value: Any) -> str:
    return validate_param("mode", value, MODE)


def check_norm(value: Any) -> str:
    return validate_param("norm", value, NORM)


def check_steps(value: Any) -> int:
    return validate_param("steps", value, STEPS)


def make_generator(seed: Any) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (an int in [0, 2**63)): random starts never use the global RNG."""
    return torch.Generator().manual_seed(validate_param("seed", seed, SEED))


def check_ball_in_box(owner: str, epsilon: float, norm: str, clip: tuple[float, float] | None,
                      inputs: torch.Tensor | None = None) -> None:
    """Refuse an ε-ball that covers the whole input box ``clip``: the sup would run over every input, not a
    neighbourhood. ℓ∞: ε >= high − low (known at construction); ℓ2: ε >= the box's diameter
    (high − low)·√d, d the size of one example (known once ``inputs`` are seen).

    Raises:
        ParameterError: naming ``epsilon``, the box and the largest meaningful ε.
    """
    if clip is None:
        return
    width = clip[1] - clip[0]
    if norm == "linf":
        limit, what = width, "high - low"
    elif inputs is not None and inputs.dim() >= 1 and inputs.shape[0] > 0:
        limit, what = width * (inputs[0].numel() ** 0.5), f"the box's diameter (high - low)·√{inputs[0].numel()}"
    else:
        return
    if epsilon >= limit:
        raise ParameterError(f"{owner}: epsilon={epsilon!r} with norm={norm!r} covers the whole input box "
                             f"clip={clip!r} ({what} = {limit:g}): the search would range over every input, not "
                             f"a neighbourhood of each example; pass epsilon < {limit:g} (images in [0, 1] with "
                             "ℓ∞ use e.g. 8/255).", parameter="epsilon", value=epsilon,
                             allowed=f"a float < {limit:g}")


def check_search_inputs(owner: str, inputs: torch.Tensor, epsilon: float, norm: str,
                        clip: tuple[float, float] | None, checked: set[str] | None = None) -> None:
    """The contracts of an ε-ball search on ``inputs`` with box ``clip``, in one call: inputs inside the box
    (:func:`rkhsreg._checks.check_in_box`) and a ball that does not cover it (:func:`check_ball_in_box`).
    Without a box, the same two as a warning from the batch's range
    (:func:`rkhsreg._checks.warn_unboxed_range`), on the first batch only: ``checked`` is the penalty's own
    set, which records it."""
    check_in_box(inputs, clip, name="clip")
    check_ball_in_box(owner, epsilon, norm, clip, inputs)
    if clip is None and checked is not None and "range" not in checked:
        checked.add("range")
        warn_unboxed_range(owner, inputs, epsilon, norm)


def zero_like_parameters(model: torch.nn.Module) -> torch.Tensor:
    """A scalar 0 attached to the parameters' graph (so ``backward`` works) without running the model."""
    return next(model.parameters()).sum() * 0.0


def counting_forward(model: torch.nn.Module, passes: Any, batch: int, targets: torch.Tensor | None = None, *,
                     min_classes: int = 1, owner: str = ""):
    """``model`` as a function that records the rows it sees in ``passes`` (a PassCount).

    Every output is checked to be (rows, K) floating-point scores (a tuple, dict or 1-D output gets an error that
    says how to select the logits; non-finite ones name their cause); the first one also checks that ``targets``
    index its K classes, that K >= ``min_classes`` (a cross-entropy penalty is identically zero for K = 1) and that
    the scores are not probabilities (:func:`rkhsreg._checks.warn_if_probabilities`: one warning naming ``owner``).
    A forward that modifies its input in place is refused, and a forward that fails because of the inputs (dtype,
    device, rank, channels) says so (:func:`rkhsreg._checks.call_model`).
    """
    unchecked = [targets, True]

    def run(z: torch.Tensor) -> torch.Tensor:
        passes.add(forward_rows=z.shape[0], batch=batch)
        out = check_logits(call_model(model, z), z, unchecked[0], model=model)
        if unchecked[1]:
            check_num_classes(out.shape[1], owner or "this penalty", "the cross-entropy of a single score is 0 "
                              "whatever the model, so the penalty would be identically zero", minimum=min_classes)
        if unchecked[1]:
            warn_if_probabilities(out, owner or "this penalty", stacklevel=4)
        unchecked[0], unchecked[1] = None, False
        return out
    return run


class SeededPenalty(Penalty):
    """A penalty with a random stream of its own (``self._generator``, set by the subclass from ``seed``).

    The generator state is the resumable state: after ``load_state_dict(state_dict())`` the next call
    draws exactly the same random starts, deformations or tangents.
    """

    _generator: torch.Generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if "generator" in state:
            self._generator.set_state(state["generator"])
