"""‖f‖²_δ: the adversarial-perturbation lower bound of the RKHS norm.

Paper semantics (``mode="per_class"``): for each output k, the sup over the examples i of the
batch and ‖δ‖ ≤ ε of the signed change f_k(x_i + δ) − f_k(x_i), found by normalised-gradient
PGD from zero (``steps`` = 5, step 1.5ε/steps); the penalty is Σ_k (f_k(x_{i_k} + δ_k) −
f_k(x_{i_k}))² with δ detached.

The reference code runs one PGD per (class, example), K·n rows per step. Here the first PGD step
of every (class, example) pair is taken from one forward and K input-backward passes; its
gradient norm ε‖∇_x f_k(x_i)‖ is the first-order estimate of the pair's value, and only the
``candidates`` best examples of each class continue PGD. Their trajectories are exactly those of
the exhaustive search (``candidates="all"``), so the result equals it whenever the winning
example is among the candidates. PGD pushes at most ``max_rows`` rows (default: the batch size)
through the model at once, so the exhaustive search's K·n rows cost the memory of one batch, not K.

How many candidates suffice depends on the network: on the paper's MNIST net 4 per class find the
exhaustive value, on a ResNet-18 at ε ≥ 1 the first-order ranking misses the winner of some classes
(curvature: a small gradient at x can still lead to the largest change within the ball). The default
``candidates="auto"`` measures it instead of guessing: on the first call and every ``check_every``
calls it runs the exhaustive search (and returns its value), and because each candidate set's
trajectories are rows of that search, one exhaustive run gives the exact value every candidate count
4, 8, 16, … would have found on that batch. The smallest count reaching ``target`` (0.99) of the
exhaustive value, averaged over the last 10 checks (the first 3 calls are all checks: one batch's winners
may all rank high while the next batch's do not), is used until the next check; a warning says when a
check raises it. Nothing in a
library offers this: attack libraries run one attack per (example, target) and have no per-class sup.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_inputs, check_int, check_model, check_real, check_targets
from rkhsreg._errors import ConfigurationError
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.gradients import output_gradients
from rkhsreg.functional.pgd import pgd_maximize, random_start
from rkhsreg.functional.selection import top_per_class, true_and_top_classes
from rkhsreg.penalties._common import (SeededPenalty, check_candidates, check_classes, check_clip, check_mode,
                                       check_norm, check_steps, counting_forward, make_generator,
                                       zero_like_parameters)

__all__ = ["AdversarialPerturbation", "AUTO_LEVELS"]

#: Candidate counts per class ``candidates="auto"`` chooses from (then the whole batch).
AUTO_LEVELS = (4, 8, 16, 32, 64, 128, 256, 512)
#: Checks a calibration averages each count's ratio over, and how many of the first calls are checks.
HISTORY = 10
FIRST_CHECKS = 3


class AdversarialPerturbation(SeededPenalty):
    """‖f‖²_δ = Σ_k sup_{i, ‖δ‖≤ε} (f_k(x_i+δ) − f_k(x_i))² (per class) or sup ‖f(x+δ) − f(x)‖² (joint).

    Args:
        weight: multiplier λ of the estimate (the paper uses 1: ε sets the strength).
        epsilon: radius of the perturbation ball, in input units (pixels in [0, 1]).
        steps: PGD steps.
        step_size: PGD step length (default 1.5·ε/steps, the paper's).
        norm: ``"l2"`` (paper) or ``"linf"``.
        mode: ``"per_class"`` (paper: one sup per output, summed) or ``"joint"`` (one PGD on the
            squared output difference for all outputs; random start since its gradient is zero at δ=0).
        candidates: examples per class that continue PGD after the first step; ``"all"`` (the exhaustive
            search) or ``"auto"`` (default: the smallest of 4, 8, 16, … that finds ``target`` of the
            exhaustive value on calibration calls; see the module docstring).
        check_every: with ``candidates="auto"``, calls between two calibrations (the first 3 calls are ones).
        target: with ``candidates="auto"``, the fraction of the exhaustive value the chosen count must reach.
        classes: ``"all"`` or an int k: only each example's true class and its k top-scoring other
            classes compete (for many-class models; needs targets).
        eval_mode: run the search and the final evaluation with BatchNorm/Dropout in eval mode.
        clip: optional (low, high) bounds for the perturbed inputs (the paper does not clip).
        seed: seed of the generator for random starts (joint mode).
        max_rows: most (class, example) rows one PGD pass takes (per-class mode; ``None``: the batch size).
            Rows are independent, so the result does not depend on it; only peak memory and speed do.

    Attributes:
        last_search: after a per-class call, ``{"candidates": count used, "checked": bool}`` and, on a
            calibration call, ``"exhaustive"`` (its value), ``"ratios"`` (value of each count ÷ it),
            ``"mean"`` (the same averaged over the recent checks) and ``"chosen"``.

    Example:
        >>> penalty = AdversarialPerturbation(epsilon=0.5)                 # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)     # doctest: +SKIP
    """

    name = "adversarial_perturbation"

    def __init__(self, *, weight: float = 1.0, epsilon: float = 1.0, steps: int = 5, step_size: float | None = None,
                 norm: str = "l2", mode: str = "per_class", candidates: int | str = "auto", classes: int | str = "all",
                 eval_mode: bool = True, clip: tuple[float, float] | None = None, seed: int = 0,
                 max_rows: int | None = None, check_every: int = 100, target: float = 0.99) -> None:
        super().__init__(weight=weight)
        self.epsilon = check_real("epsilon", epsilon)
        self.steps = check_steps(steps)
        self.step_size = (1.5 * self.epsilon / self.steps if step_size is None
                          else check_real("step_size", step_size))
        self.norm = check_norm(norm)
        self.mode = check_mode(mode)
        self.candidates = check_candidates(candidates, allow_auto=True)
        self.check_every = check_int("check_every", check_every, low=1)
        self.target = check_real("target", target)
        if not 0 < self.target <= 1:
            raise ConfigurationError(f"target={target!r} is not allowed; pass a fraction in (0, 1].")
        self.last_search: dict[str, Any] = {}
        self._calls = 0                         # per-class calls so far (calibration schedule)
        self._auto: int | str | None = None     # the count the last calibration chose
        self._history: list[dict[int, float]] = []  # each recent check's ratio per count
        self._highest = 0                       # index in AUTO_LEVELS of the largest count chosen (warnings)
        self.classes = check_classes(classes)
        self.eval_mode = bool(eval_mode)
        self.clip = check_clip(clip)
        self.seed = seed
        self.max_rows = None if max_rows is None else check_int("max_rows", max_rows, low=1)
        self._generator = make_generator(seed)

    def _config(self) -> dict[str, Any]:
        return {"weight": self.weight, "epsilon": self.epsilon, "steps": self.steps, "step_size": self.step_size,
                "norm": self.norm, "mode": self.mode, "candidates": self.candidates, "classes": self.classes,
                "max_rows": self.max_rows, "check_every": self.check_every, "target": self.target}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "calls": self._calls, "auto": self._auto, "highest": self._highest,
                "history": [dict(h) for h in self._history]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._calls = int(state.get("calls", 0))
        self._auto = state.get("auto")
        self._highest = int(state.get("highest", 0))
        self._history = [{int(k): float(v) for k, v in h.items()} for h in state.get("history", [])]

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        targets = check_targets(targets, inputs, required=self.classes != "all")
        if self.epsilon == 0:
            return zero_like_parameters(model)
        with inner_mode(model, self.eval_mode):
            if self.mode == "joint":
                return self._joint(model, inputs.detach())
            return self._per_class(model, inputs.detach(), targets)

    def _per_class(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n, targets)
        slots = None if self.classes == "all" else (lambda logits: true_and_top_classes(logits, targets, self.classes))
        logits, slots, scores = output_gradients(forward, x, slots,
                                                 reduce=lambda g, j: wide(g.flatten(1)).norm(dim=1))
        self.last_passes.add(backward_rows=n * slots.shape[1], batch=n)
        count, check = self._count(n)
        keep = top_per_class(scores, slots, count)
        rows, classes = keep // slots.shape[1], slots.flatten()[keep]
        delta, gain = self._pgd(forward, x[rows], logits[rows, classes], classes, n)
        if check:
            self._calibrate(scores, slots, keep, gain, n)
        best = top_per_class(gain[:, None], classes[:, None], 1)
        return self._value(forward, x[rows[best]], delta[best], classes[best], n)

    def _count(self, n: int) -> tuple[int, bool]:
        """Candidates per class for this call, and whether it is a calibration call (exhaustive)."""
        if self.candidates != "auto":
            count = n if self.candidates == "all" else self.candidates
            self.last_search = {"candidates": min(count, n), "checked": False}
            return count, False
        check = self._calls < FIRST_CHECKS or self._calls % self.check_every == 0 or self._auto is None
        self._calls += 1
        count = n if check or self._auto == "all" else self._auto
        self.last_search = {"candidates": min(count, n), "checked": check}
        return count, check

    def _pgd(self, forward, x_c: torch.Tensor, clean: torch.Tensor, classes: torch.Tensor,
             n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """PGD from zero on the rows ``x_c`` for their ``classes``: the perturbations and their gains.

        The first step repeats the one already scored (one extra pass on the candidates' rows instead of
        keeping n·K input gradients in memory); at most ``max_rows`` rows go through the model at once.
        """
        chunk = n if self.max_rows is None else self.max_rows
        deltas, gains = [], []
        for start in range(0, x_c.shape[0], chunk):
            part = slice(start, start + chunk)

            def objective(z: torch.Tensor, cls: torch.Tensor = classes[part]) -> torch.Tensor:
                return forward(z).gather(1, cls[:, None]).squeeze(1)

            d = pgd_maximize(objective, x_c[part], epsilon=self.epsilon, steps=self.steps,
                             step_size=self.step_size, norm=self.norm, clip=self.clip)
            with torch.no_grad():
                gains.append(objective(x_c[part] + d) - clean[part])
            deltas.append(d)
        self.last_passes.add(backward_rows=x_c.shape[0] * self.steps, batch=n)
        return torch.cat(deltas), torch.cat(gains)

    def _calibrate(self, scores: torch.Tensor, slots: torch.Tensor, keep: torch.Tensor, gain: torch.Tensor,
                   n: int) -> None:
        """Choose the candidate count from an exhaustive run: each count's exact value is a selection of its rows.

        One batch's winners may all rank high while the next batch's do not, so a count is chosen on its ratio
        averaged over the last ``HISTORY`` checks (the first ``FIRST_CHECKS`` calls are all checks).
        """
        gains = torch.full((scores.numel(),), float("-inf"), dtype=gain.dtype, device=gain.device)
        gains[keep] = gain

        def value(count: int) -> float:
            picked = top_per_class(scores, slots, count)
            g, cls = gains[picked], slots.flatten()[picked]
            return float(wide(g[top_per_class(g[:, None], cls[:, None], 1)]).pow(2).sum())

        exhaustive = value(n)
        ratios = {level: (1.0 if level >= n or exhaustive == 0 else value(level) / exhaustive)
                  for level in AUTO_LEVELS}
        self._history = [*self._history, ratios][-HISTORY:]
        mean = {level: sum(h[level] for h in self._history) / len(self._history) for level in AUTO_LEVELS}
        chosen = next((level for level in AUTO_LEVELS if level < n and mean[level] >= self.target), "all")
        rank = AUTO_LEVELS.index(chosen) if chosen != "all" else len(AUTO_LEVELS)
        if rank > self._highest:
            first = AUTO_LEVELS[0]
            warnings.warn(f"adversarial_perturbation: {first} candidates per class find {ratios[first]:.3f} of the "
                          f"exhaustive search's value on this batch ({mean[first]:.3f} over the last "
                          f"{len(self._history)} checks; target {self.target}); using {chosen} until the next check. "
                          "Pass candidates=<int> or 'all' to fix the count.", RuntimeWarning, stacklevel=4)
            self._highest = rank
        self._auto = chosen
        self.last_search.update(exhaustive=exhaustive, ratios={k: v for k, v in ratios.items() if k < n},
                                mean={k: v for k, v in mean.items() if k < n}, chosen=chosen)

    def _value(self, forward, x_sel: torch.Tensor, delta_sel: torch.Tensor, classes: torch.Tensor | None,
               n: int) -> torch.Tensor:
        """Σ of squared output changes at the selected rows, differentiable w.r.t. the parameters."""
        m = x_sel.shape[0]
        out = forward(torch.cat([x_sel + delta_sel, x_sel]))
        self.last_passes.add(backward_rows=2 * m, batch=n)
        diff = out[:m] - out[m:]
        if classes is not None:
            diff = diff.gather(1, classes[:, None])
        return wide(diff).pow(2).sum()

    def _joint(self, model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n)
        with torch.no_grad():
            clean = forward(x)

        def objective(z: torch.Tensor) -> torch.Tensor:
            return wide(forward(z) - clean).pow(2).sum(1)

        start = random_start(x, self.epsilon, self.norm, self._generator,
                             radius_fraction=min(1.0, self.step_size / self.epsilon))
        delta = pgd_maximize(objective, x, epsilon=self.epsilon, steps=self.steps, step_size=self.step_size,
                             norm=self.norm, delta=start, clip=self.clip)
        self.last_passes.add(backward_rows=n * self.steps, batch=n)
        with torch.no_grad():
            best = objective(x + delta).argmax()
        return self._value(forward, x[best:best + 1], delta[best:best + 1], None, n)
