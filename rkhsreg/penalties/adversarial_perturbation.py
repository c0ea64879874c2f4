"""‖f‖²_δ: the adversarial-perturbation lower bound of the RKHS norm.

Paper semantics (``mode="per_class"``): for each output k, the sup over the examples i of the
batch and ‖δ‖ ≤ ε of the signed change f_k(x_i + δ) − f_k(x_i), found by normalised-gradient
PGD from zero (``steps`` = 5, step 1.5ε/steps); the penalty is Σ_k (f_k(x_{i_k} + δ_k) −
f_k(x_{i_k}))² with δ detached.

The reference code runs one PGD per (class, example), K·n rows per step. Here the first PGD step
of every (class, example) pair is taken from one forward and K input-backward passes; its
gradient norm ε‖∇_x f_k(x_i)‖ is the first-order estimate of the pair's value, and only the
``candidates`` best examples of each class continue PGD. Their trajectories are exactly those of
the exhaustive search (``candidates="all"``, which takes its first step from the same gradients: 4 PGD
steps of K·n rows after the ranking instead of 5), so the result equals it whenever the winning
example is among the candidates. PGD pushes at most ``max_rows`` rows (default: the batch size)
through the model at once, so the exhaustive search's K·n rows cost the memory of one batch, not K.

How many candidates suffice depends on the network: on the paper's MNIST net 4 per class find nearly
the exhaustive value, on a ResNet-18 at ε ≥ 1 the first-order ranking misses the winner of some classes
(curvature: a small gradient at x can still lead to the largest change within the ball). The default
``candidates="auto"`` measures it instead of guessing. Its searches form a ladder, each a "plan"
``(pool, keep)``: the ``pool`` best examples per class by first-order score take the first two PGD steps
(the first one from the gradients the ranking already computed), then the ``keep`` best by the value
reached continue (``keep = pool``: no pruning). Every plan's cost is counted exactly in passes (one pass = a
forward or a backward of a batch-sized input, what ``last_passes`` reports; a plain training step is 2):
the ranking is 1 + K passes whatever the plan, the plan's PGD rows and the final value pass come on top.
On its first call and every ``check_every`` calls the exhaustive search runs (and its value is returned)
with the value of every row recorded at every step; since each plan's trajectories are rows of that search,
one exhaustive run gives the exact value every plan would have found on that batch (its *value ratio*).

Two ways to choose, one per guarantee:

* ``budget`` (the default, :data:`DEFAULT_BUDGET` passes per call, the checks amortised in): among the plans
  whose cost fits, the one with the best mean value ratio over the recent checks. The cost is predictable
  from the docs; the value found is measured and reported (``value_ratio`` in :meth:`diagnostics`, logged by
  the Lightning callback), and one :class:`SearchBudgetWarning` says when it falls below
  :data:`WARN_RATIO`, with the budget that would restore it.
* ``target`` (opt-in, e.g. 0.995): the cheapest plan whose value reaches ``target`` of the exhaustive value on
  *every one* of the last 10 checks (its first 3 calls are checks); the value is guaranteed on the checked
  batches, the cost is whatever that takes (a warning says when a check moves to a costlier plan). Every
  check, not their average: on a trained network a plan's ratio varies from batch to batch with a heavy low
  tail (``mnist_vgg5(16)`` at 96.6% test accuracy, ε = 1: plan (4, 2) finds 0.95–1.00 of the exhaustive value
  over 12 batches), and an average would accept it.

Nothing in a library offers this: attack libraries run one attack per (example, target) and have no
per-class sup.
"""

from __future__ import annotations

import math
import warnings
from numbers import Integral, Real
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import check_inputs, check_model, check_targets
from rkhsreg._params import SEED, Interval, OnlyWhen, Options, Tuple, validate_param
from rkhsreg.functional._context import inner_mode
from rkhsreg.functional._precision import wide
from rkhsreg.functional.gradients import output_gradients
from rkhsreg.functional.pgd import ascent_step, pgd_maximize, random_start
from rkhsreg.functional.selection import top_per_class, true_and_top_classes
from rkhsreg.penalties._common import (CLASSES, CLIP, EPSILON, EVAL_MODE, MODE, NORM, STEP_SIZE, STEPS, SeededPenalty,
                                       check_ball_in_box, check_search_inputs, counting_forward, make_generator)

__all__ = ["AdversarialPerturbation", "AUTO_LEVELS", "DEFAULT_BUDGET", "WARN_RATIO", "Plan", "SearchBudgetWarning"]

#: Pool sizes per class the ladder of ``candidates="auto"`` is made of (then the whole batch).
AUTO_LEVELS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: Checks a plan's value ratio is taken over (mean and worst), and how many of the first calls are checks
#: with a ``target`` (with a budget only the first call is).
HISTORY = 10
FIRST_CHECKS = 3
#: A pruned plan keeps its best rows after this many PGD steps.
PRUNE_AFTER = 2
#: Passes per call (forward + backward, in batch units; a plain training step is 2) the default search may
#: spend, its checks amortised in: on a 10-class network the ranking takes 11 of them, a plan the rest
#: (on the paper's MNIST net, batch 128: plan (4, 2), about 7× a plain step on one CPU thread).
#: ``benchmarks/delta_search.py`` measures what it costs in time and what value it finds.
DEFAULT_BUDGET = 15.0
#: Below this mean value ratio (the plan's value ÷ the exhaustive search's, over the recent checks) the
#: budgeted search warns once, naming the budget that would reach it.
WARN_RATIO = 0.9


class SearchBudgetWarning(RuntimeWarning):
    """The ‖f‖²_δ search's choice of plan: its value ratio, its cost and how to change either."""

Plan = tuple[int, int]  # (pool, keep): examples per class taking the first steps, and those continuing


#: ``candidates`` (rkhsreg._params declaration).
CANDIDATES = [Interval(Integral, 1, None, doc="examples per class that continue PGD"),
              Options(("auto",), doc="calibrated against the exhaustive search"),
              Options(("all",), doc="the exhaustive search"),
              Tuple(Interval(Integral, 1, None), length=2, where=lambda plan: plan[1] <= plan[0],
                    where_doc="1 <= keep <= pool", text="a (pool, keep) pair of ints with 1 <= keep <= pool")]


def check_plan(value: Any) -> int | str | Plan:
    """``candidates``: an int >= 1, ``"all"``, ``"auto"`` or a (pool, keep) pair with 1 <= keep <= pool."""
    return validate_param("candidates", value, CANDIDATES)


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
            search); a plan ``(pool, keep)`` (``pool`` examples per class take 2 steps, the ``keep`` best
            continue); or ``"auto"`` (default: a plan chosen from calibration calls against the exhaustive
            search, within ``budget`` or reaching ``target``; see the module docstring).
        check_every: with ``candidates="auto"``, calls between two calibrations (the first call is one; with a
            ``target`` the first 3 are).
        budget: with ``candidates="auto"``, the most passes per call the search may spend, its checks amortised
            in (a pass is a forward or a backward of a batch-sized input, as ``last_passes`` counts; a plain
            training step is 2). ``None``: :data:`DEFAULT_BUDGET` (15) without a ``target``, no limit with one.
            The plan used is the one with the best measured value ratio among those that fit.
        target: with ``candidates="auto"``, a value guarantee instead: the cheapest plan (within ``budget`` if
            one is given) whose value reaches this fraction of the exhaustive value on each of the recent
            checks (e.g. 0.995). ``None`` (default): no guarantee, the budget decides.
        classes: ``"all"`` or an int k: only each example's true class and its k top-scoring other
            classes compete (for many-class models; needs targets).
        eval_mode: run the search and the final evaluation with BatchNorm/Dropout in eval mode (default:
            each example's output then depends on that example alone, which the candidate search relies
            on). The paper's code searches in train mode, with the statistics of the perturbed batch; to
            reproduce it pass ``eval_mode=False, candidates="all", max_rows=<batch size>`` (each PGD batch
            is then one class's examples). What the choice changes on a ResNet-18: ``benchmarks/bn_mode.py``.
        clip: optional (low, high) bounds for the perturbed inputs (the paper does not clip).
        seed: seed of the generator for random starts (joint mode).
        max_rows: most (class, example) rows one PGD pass takes (per-class mode; ``None``: the batch size).
            Rows are independent, so the result does not depend on it; only peak memory and speed do.

    Attributes:
        last_search: after a per-class call, ``{"plan": (pool, keep) used, "checked": bool}`` and, on a
            calibration call, ``"exhaustive"`` (its value), ``"ratios"`` (each plan's value ÷ it), ``"mean"``
            (the same averaged over the recent checks), ``"worst"`` (the smallest over them), ``"cost"``
            (each plan's passes per call on this batch), ``"amortised"`` (the same with the checks spread
            over ``check_every`` calls), ``"budget"`` and ``"chosen"`` (a plan, or ``"all"``).

    Example:
        >>> penalty = AdversarialPerturbation(epsilon=0.5)                 # doctest: +SKIP
        >>> loss = F.cross_entropy(model(x), y) + penalty(model, x, y)     # doctest: +SKIP
    """

    name = "adversarial_perturbation"
    rkhs_bound = "lower"
    parameters = {
        "weight": Interval(Real, 0, None, closed="left", doc="the multiplier λ"),
        "epsilon": EPSILON,
        "steps": STEPS,
        "step_size": STEP_SIZE,
        "norm": NORM,
        "mode": MODE,
        "candidates": OnlyWhen("mode", "per_class", CANDIDATES),
        "classes": OnlyWhen("mode", "per_class", CLASSES),
        "eval_mode": EVAL_MODE,
        "clip": CLIP,
        "seed": SEED,
        "max_rows": [None, Interval(Integral, 1, None)],
        "check_every": OnlyWhen("mode", "per_class", OnlyWhen("candidates", "auto", Interval(Integral, 1, None))),
        "budget": OnlyWhen("mode", "per_class", OnlyWhen("candidates", "auto", [None, Interval(
            Real, 0, None, closed="neither", doc="passes per call, the checks amortised in (None: 15 without a target)")])),
        "target": OnlyWhen("mode", "per_class", OnlyWhen(
            "candidates", "auto", [None, Interval(Real, 0, 1, closed="right", doc="a fraction of the exhaustive value")])),
    }

    def __init__(self, *, weight: float = 1.0, epsilon: float = 1.0, steps: int = 5, step_size: float | None = None,
                 norm: str = "l2", mode: str = "per_class", candidates: int | str = "auto", classes: int | str = "all",
                 eval_mode: bool = True, clip: tuple[float, float] | None = None, seed: int = 0,
                 max_rows: int | None = None, check_every: int = 100, budget: float | None = None,
                 target: float | None = None) -> None:
        super().__init__(weight=weight)   # every argument is checked against `parameters` before this line
        self.epsilon = epsilon
        self.steps = steps
        self.step_size = 1.5 * self.epsilon / self.steps if step_size is None else step_size
        self.norm = norm
        self.mode = mode
        self.candidates = candidates
        self.check_every = check_every
        self.target = target
        self.budget = DEFAULT_BUDGET if budget is None and target is None else budget
        self.last_search: dict[str, Any] = {}
        self._calls = 0                         # per-class calls so far (calibration schedule)
        self._auto: Plan | str | None = None    # the plan the last calibration chose
        self._history: list[dict[Plan, float]] = []  # each recent check's ratio per plan
        self._highest = 0.0                     # passes of the costliest plan chosen so far (target warnings)
        self._ratio: tuple[float, float] | None = None   # (mean, worst) value ratio of the plan in use
        self._warned: set[str] = set()          # budget warnings already given ("low", "over")
        self.classes = classes
        self.eval_mode = eval_mode
        self.clip = clip
        self._range_checked: set[str] = set()  # the unboxed input-range warning: first batch only
        check_ball_in_box(self.name, epsilon, norm, clip)
        self.seed = seed
        self.max_rows = max_rows
        self._generator = make_generator(seed)

    def _config(self) -> dict[str, Any]:
        config = {"weight": self.weight, "epsilon": self.epsilon, "steps": self.steps, "step_size": self.step_size,
                  "norm": self.norm, "mode": self.mode, "candidates": self.candidates, "classes": self.classes,
                  "max_rows": self.max_rows}
        if self.candidates == "auto":   # the options of the budgeted search (refused with a fixed plan)
            config.update(check_every=self.check_every, budget=self.budget, target=self.target)
        return config

    def diagnostics(self) -> dict[str, float]:
        """What the budgeted search found, for logging: ``value_ratio`` (mean of the plan in use over the recent
        checks: its value ÷ the exhaustive search's) and ``value_ratio_worst``; empty before the first check or
        when ``candidates`` is fixed."""
        if self._ratio is None:
            return {}
        return {"value_ratio": self._ratio[0], "value_ratio_worst": self._ratio[1]}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "calls": self._calls, "highest": self._highest,
                "auto": list(self._auto) if isinstance(self._auto, tuple) else self._auto,
                "history": [[[pool, keep, ratio] for (pool, keep), ratio in h.items()] for h in self._history],
                "ratio": None if self._ratio is None else list(self._ratio), "warned": sorted(self._warned)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._calls = int(state.get("calls", 0))
        auto = state.get("auto")
        self._auto = tuple(auto) if isinstance(auto, (list, tuple)) else auto
        self._highest = float(state.get("highest", 0.0))
        self._history = [{(int(pool), int(keep)): float(ratio) for pool, keep, ratio in h}
                         for h in state.get("history", [])]
        ratio = state.get("ratio")
        self._ratio = None if ratio is None else (float(ratio[0]), float(ratio[1]))
        self._warned = set(state.get("warned", []))

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        check_model(model)
        check_inputs(inputs)
        check_search_inputs(self.name, inputs, self.epsilon, self.norm, self.clip, self._range_checked)
        targets = check_targets(targets, inputs, required=self.classes != "all")
        with inner_mode(model, self.eval_mode):
            if self.mode == "joint":
                return self._joint(model, inputs.detach())
            return self._per_class(model, inputs.detach(), targets)

    def _per_class(self, model: nn.Module, x: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        n = x.shape[0]
        forward = counting_forward(model, self.last_passes, n, targets, owner=self.name)
        plan, check = self._plan(n)
        pool = n if plan == "all" else plan[0]
        # the first step's gradients of the pool, kept as the ranking computes them (slot j is class j)
        kept: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

        def reduce(g: torch.Tensor, j: int) -> torch.Tensor:
            norms = wide(g.flatten(1)).norm(dim=1)
            if self.classes == "all":
                top = (torch.arange(n, device=g.device) if pool >= n   # top_per_class's order (float32, stable)
                       else torch.argsort(norms.float(), descending=True, stable=True)[:pool])
                kept[j] = (top, g if pool >= n else g[top])
            return norms

        slots = None if self.classes == "all" else (lambda logits: true_and_top_classes(logits, targets, self.classes))
        logits, slots, scores = output_gradients(forward, x, slots, reduce=reduce)
        self.last_passes.add(backward_rows=n * slots.shape[1], batch=n)
        first = top_per_class(scores, slots, pool)
        rows, classes = first // slots.shape[1], slots.flatten()[first]
        clean = logits[rows, classes]
        if plan == "all":
            record: list[torch.Tensor] | None = [] if check else None   # the trajectories only a check reads
            x_c = x[rows]
            delta, done = self._first_step(x_c, rows, classes, kept, n)
            if record is not None and done:
                record.append(clean)   # the objective at the start, δ = 0: the ranking's own forward
            delta = self._pgd(forward, x_c, classes, delta, self.steps - done, n, record)
            gain = self._gains(forward, x_c, delta, classes, clean)
            if check:
                self._calibrate(scores, slots, first, torch.stack(record, 1) - clean[:, None], gain, n)
        else:
            delta, rows, classes, clean, x_c = self._run_plan(forward, x, plan, rows, classes, clean, kept, n)
            gain = self._gains(forward, x_c, delta, classes, clean)
        best = top_per_class(gain[:, None], classes[:, None], 1)
        return self._value(forward, x[rows[best]], delta[best], classes[best], n)

    def _plan(self, n: int) -> tuple[Plan | str, bool]:
        """The plan of this call (``"all"``: the exhaustive search) and whether it is a calibration call."""
        if self.candidates != "auto":
            plan = self.candidates
            if isinstance(plan, int):
                plan = (plan, plan)
            if plan != "all" and plan[0] >= n:
                plan = (n, min(plan[1], n)) if plan[1] < plan[0] else "all"
            self.last_search = {"plan": plan, "checked": False}
            return plan, False
        first = FIRST_CHECKS if self.target is not None else 1
        check = self._calls < first or self._calls % self.check_every == 0 or self._auto is None
        self._calls += 1
        plan = "all" if check or self._auto == "all" or self._auto[0] >= n else self._auto
        self.last_search = {"plan": plan, "checked": check}
        return plan, check

    def _run_plan(self, forward, x: torch.Tensor, plan: Plan, rows: torch.Tensor, classes: torch.Tensor,
                  clean: torch.Tensor, kept: dict[int, tuple[torch.Tensor, torch.Tensor]], n: int):
        """PGD from zero on the pool's rows, pruned to the ``keep`` best after ``PRUNE_AFTER`` steps.

        Returns the perturbations and the rows, classes, clean scores and inputs they belong to.
        """
        pool, keep = plan
        steps = self.steps
        x_p = x[rows]   # the pool's rows, gathered once
        delta, done = self._first_step(x_p, rows, classes, kept, n)
        if keep < pool and steps > PRUNE_AFTER:
            delta = self._pgd(forward, x_p, classes, delta, PRUNE_AFTER - done, n)
            gain = self._gains(forward, x_p, delta, classes, clean)
            best = top_per_class(gain[:, None], classes[:, None], keep)
            rows, classes, clean, delta, x_p = rows[best], classes[best], clean[best], delta[best], x_p[best]
            done = PRUNE_AFTER
        delta = self._pgd(forward, x_p, classes, delta, steps - done, n)
        return delta, rows, classes, clean, x_p

    def _first_step(self, x_p: torch.Tensor, rows: torch.Tensor, classes: torch.Tensor,
                    kept: dict[int, tuple[torch.Tensor, torch.Tensor]], n: int) -> tuple[torch.Tensor | None, int]:
        """The first PGD step of the rows ``(rows, classes)`` from the gradients the ranking computed at δ = 0
        (``kept[j]``: the examples whose class-``j`` gradient was kept, and those gradients; emptied here, so their
        memory is free for the next passes): no pass of its own. Returns ``(δ_1, 1)``, or ``(None, 0)`` when
        nothing was kept (``classes`` other than ``"all"``)."""
        if not kept:
            return None, 0
        grad = torch.empty_like(x_p)
        position = torch.full((n,), -1, dtype=torch.long, device=rows.device)   # an example's place in kept[j]
        for j, (top, g) in kept.items():
            where = (classes == j).nonzero().squeeze(1)
            position[top] = torch.arange(top.numel(), device=rows.device)
            index = position[rows[where]]
            if bool((index < 0).any()):   # the rows are the pool the ranking kept: anything else is a bug here
                raise RuntimeError(f"adversarial_perturbation: class {j}'s rows are not among the gradients kept")
            grad[where] = g[index]
            position[top] = -1
        kept.clear()   # the gradients are not needed after the first step: freed before the next passes
        delta = ascent_step(torch.zeros_like(x_p), grad, x_p, epsilon=self.epsilon, step_size=self.step_size,
                            norm=self.norm, clip=self.clip)
        return delta, 1

    def _pgd(self, forward, x_c: torch.Tensor, classes: torch.Tensor, start: torch.Tensor | None, steps: int, n: int,
             record: list[torch.Tensor] | None = None) -> torch.Tensor:
        """``steps`` PGD steps on the rows ``x_c`` for their ``classes`` from ``start`` (None: zero).

        At most ``max_rows`` rows go through the model at once; ``record`` gets every row's objective at each
        step's starting point (one (rows,) tensor per step).
        """
        start = torch.zeros_like(x_c) if start is None else start
        if steps == 0:
            return start
        chunk = n if self.max_rows is None else self.max_rows
        deltas, records = [], []
        for begin in range(0, x_c.shape[0], chunk):
            part = slice(begin, begin + chunk)

            def objective(z: torch.Tensor, cls: torch.Tensor = classes[part]) -> torch.Tensor:
                return forward(z).gather(1, cls[:, None]).squeeze(1)

            values: list[torch.Tensor] = []
            deltas.append(pgd_maximize(objective, x_c[part], epsilon=self.epsilon, steps=steps,
                                       step_size=self.step_size, norm=self.norm, clip=self.clip, delta=start[part],
                                       record=values))
            records.append(values)
        if record is not None:
            record.extend(torch.cat([r[t] for r in records]) for t in range(steps))
        self.last_passes.add(backward_rows=x_c.shape[0] * steps, batch=n)
        return torch.cat(deltas)

    def _gains(self, forward, x_c: torch.Tensor, delta: torch.Tensor, classes: torch.Tensor,
               clean: torch.Tensor) -> torch.Tensor:
        """f_k(x + δ) − f_k(x) of every row, without a graph, in chunks of ``max_rows``."""
        chunk = x_c.shape[0] if self.max_rows is None else self.max_rows
        with torch.no_grad():
            out = [forward(x_c[i:i + chunk] + delta[i:i + chunk]).gather(1, classes[i:i + chunk, None]).squeeze(1)
                   for i in range(0, x_c.shape[0], chunk)]
        return torch.cat(out) - clean

    def _ladder(self, n: int) -> list[Plan]:
        """The plans ``"auto"`` chooses from (the exhaustive search, ``(n, n)``, last)."""
        plans = []
        for pool in [level for level in AUTO_LEVELS if level < n]:
            plans.append((pool, pool))
            if self.steps > PRUNE_AFTER:
                plans += [(pool, keep) for keep in sorted({pool // 2, pool // 4} - {0}, reverse=True)]
        return [*plans, (n, n)]

    def _cost(self, plan: Plan, n: int, counts: torch.Tensor, ranked: int) -> float:
        """Passes (forward + backward, in batch units: what ``last_passes`` reports) of one call with ``plan``.

        ``counts``: examples competing for each class; ``ranked``: input-gradient passes of the ranking. The
        ranking (1 forward + ``ranked`` backwards), the PGD steps of the plan's rows (the first one from the
        ranking's gradients when every class is ranked), the forward that prunes, the final gains and the value
        pass (forward and backward of 2 rows per class).
        """
        pool, keep = plan
        reuse = 1 if self.classes == "all" else 0

        def rows(size: int) -> float:
            return float(counts.clamp(max=size).sum())

        if keep < pool and self.steps > PRUNE_AFTER:
            pgd = ((2 * (PRUNE_AFTER - reuse) + 1) * rows(pool)          # two steps, then the forward that prunes
                   + (2 * (self.steps - PRUNE_AFTER) + 1) * rows(keep))  # the other steps and the final gains
        else:
            pgd = (2 * (self.steps - reuse) + 1) * rows(pool)
        return 1 + ranked + (pgd + 4 * float((counts > 0).sum())) / n

    def _calibrate(self, scores: torch.Tensor, slots: torch.Tensor, first: torch.Tensor, trajectory: torch.Tensor,
                   gain: torch.Tensor, n: int) -> None:
        """Choose the plan from an exhaustive run: each plan's exact value is a selection of its recorded rows.

        ``first``: the flat indices (into ``scores``) of the exhaustive run's rows; ``trajectory``: their gains
        at the start of every step (rows, steps); ``gain``: their final gains. One batch's winners may all rank
        high while the next batch's do not, so the ratios are kept over the last ``HISTORY`` checks
        (``last_search["mean"]`` and ``["worst"]``): a budget takes the best mean among the plans that fit, a
        target the cheapest plan whose worst reaches it.
        """
        size = scores.numel()
        final = torch.full((size,), float("-inf"), dtype=gain.dtype, device=gain.device)
        final[first] = gain
        pruned = torch.full((size,), float("-inf"), dtype=gain.dtype, device=gain.device)
        if trajectory.shape[1] > PRUNE_AFTER:
            pruned[first] = trajectory[:, PRUNE_AFTER]   # the value after PRUNE_AFTER steps, what plans prune on
        flat_classes = slots.flatten()

        def value(plan: Plan) -> float:
            pool, keep = plan
            picked = top_per_class(scores, slots, pool)
            if keep < pool:
                picked = picked[top_per_class(pruned[picked][:, None], flat_classes[picked][:, None], keep)]
            g, cls = final[picked], flat_classes[picked]
            return float(wide(g[top_per_class(g[:, None], cls[:, None], 1)]).pow(2).sum())

        counts = torch.bincount(flat_classes.cpu())
        cost = {plan: self._cost(plan, n, counts, slots.shape[1]) for plan in self._ladder(n)}
        ladder = sorted(cost, key=lambda plan: (cost[plan], plan))
        every = self.check_every
        amortised = {plan: (cost[plan] * (every - 1) + cost[(n, n)]) / every for plan in ladder}
        exhaustive = value((n, n))
        ratios = {plan: (1.0 if exhaustive == 0 else value(plan) / exhaustive) for plan in ladder}
        # plans whose pool is the whole batch or more are the exhaustive search here: kept for later, larger batches
        wider = {plan: 1.0 for plan in self._ladder(AUTO_LEVELS[-1] + 1) if plan[0] >= n}
        self._history = [*self._history, {**wider, **ratios}][-HISTORY:]
        mean = {plan: sum(h.get(plan, 0.0) for h in self._history) / len(self._history) for plan in ladder}
        worst = {plan: min(h.get(plan, 0.0) for h in self._history) for plan in ladder}
        fits = [plan for plan in ladder if self.budget is None or amortised[plan] <= self.budget]
        if self.target is not None:
            reaching = [plan for plan in fits if worst[plan] >= self.target]
            chosen = reaching[0] if reaching else max(fits or ladder[:1], key=lambda p: (mean[p], -cost[p]))
        else:
            chosen = max(fits or ladder[:1], key=lambda p: (mean[p], -cost[p]))
        self._ratio = (mean[chosen], worst[chosen])
        self._warn(ladder, chosen, cost, amortised, ratios, mean, worst, fits, n, 1 + slots.shape[1])
        self._highest = max(self._highest, cost[chosen])
        self._auto = "all" if chosen == (n, n) else chosen
        self.last_search.update(exhaustive=exhaustive, ratios=ratios, mean=mean, worst=worst, cost=cost,
                                amortised=amortised, budget=self.budget, chosen=self._auto)

    def _warn(self, ladder: list[Plan], chosen: Plan, cost: dict[Plan, float], amortised: dict[Plan, float],
              ratios: dict[Plan, float], mean: dict[Plan, float], worst: dict[Plan, float], fits: list[Plan],
              n: int, ranking: int) -> None:
        """The one warning of each kind: a budget too small for any plan, a value ratio below ``WARN_RATIO``
        within the budget (again only after it recovered), a target check moving to a costlier plan. Each names
        the plans' costs (passes a call, and with the checks amortised) and value ratios."""
        def say(plan: Plan) -> str:
            name = "the exhaustive search" if plan == (n, n) else f"plan {plan} (pool, keep)"
            return (f"{name}: {cost[plan]:.1f} passes a call, {amortised[plan]:.1f} with the checks, value ratio "
                    f"{mean[plan]:.3f} (worst {worst[plan]:.3f})")
        checks = f"over the last {len(self._history)} check(s)"
        if not fits:
            if "over" in self._warned:
                return
            self._warned.add("over")
            warnings.warn(f"adversarial_perturbation: budget={self.budget:g} passes is below the cheapest search, "
                          f"{say(chosen)}, which is used (its ranking alone takes {ranking} passes, and on a batch of {n} "
                          "each row is a larger share of a pass). Pass budget >= "
                          f"{math.ceil(amortised[chosen])}, or classes=<k> to rank fewer classes per example.",
                          SearchBudgetWarning, stacklevel=6)
            return
        if self.target is None:
            if mean[chosen] >= WARN_RATIO:
                self._warned.discard("low")
            elif "low" not in self._warned:
                self._warned.add("low")
                better = [plan for plan in ladder if mean[plan] >= WARN_RATIO]
                restore = (f"budget={math.ceil(amortised[better[0]])} would use {say(better[0])}" if better else
                           "no plan reaches it but the exhaustive search (candidates='all')")
                warnings.warn(f"adversarial_perturbation: within budget={self.budget:g} passes the best search is "
                              f"{say(chosen)} {checks}, below {WARN_RATIO}; {restore}.", SearchBudgetWarning,
                              stacklevel=6)
            return
        cheapest = ladder[0]
        if cost[chosen] > max(self._highest, cost[cheapest]):
            warnings.warn(f"adversarial_perturbation: the cheapest search, {say(cheapest)}, finds "
                          f"{ratios[cheapest]:.3f} of the exhaustive search's value on this batch (target "
                          f"{self.target} on every check {checks}); using {say(chosen)} until the next check. "
                          "Pass candidates=<int>, (pool, keep) or 'all' to fix the search, or a budget.",
                          SearchBudgetWarning, stacklevel=6)

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
        forward = counting_forward(model, self.last_passes, n, owner=self.name)
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
