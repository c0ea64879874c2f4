"""What a table still needs: the runs and grid points ``run.py`` would train, their cost, and a split over runners.

Nothing is trained and no file is written. The plan comes from ``run.py``'s own :class:`Runner`, with its three
effects (train, read, append) replaced: the planned runs are exactly those ``run.py`` would train for the same
``--table --results --rows --n --seeds --epochs --eval-examples``, in its order, grid points included. A grid point
not trained yet is planned as scoring below every trained one, so a row whose grid is unfinished is planned with
the best finished value (or its first value); the cost does not depend on that choice.

Cost: each row's recorded seconds per SGD step (median over its runs in ``runs.csv`` and ``tuning.csv`` — the
published ones when the results folder is still empty — at the same
n, else at any n; on whatever machine ran them) times the planned run's steps (epochs × ⌈n / batch⌉). A row never
run gets the median rate of the rows that did (marked ``?``). The n=1000 rate per step was 0.44–1.00× the n=300
one on the 40/20-epoch table but 1.06–1.39× on the 160/80-epoch one (``plan.py --rates``), so a plan for an n
never run is a rough guide (there 259 core-minutes planned, 290 spent).

Split over ``--runners K`` (one runner per core on a CPU, several per GPU): longest first onto the least-loaded
runner. Rows that wait on an unfinished grid (theirs, or one they inherit) stay on one runner with every cell
that needs that grid, sources first: two runners would otherwise both train the same grid points. Each runner's
share is printed as ``run.py`` commands, one per (n, seed), rows in ``run.py``'s order; ``--launch`` starts them
(each runner's commands one after the other, the runners side by side, ``--run-args`` added to each) and waits.
Written by hand because no scheduler among our dependencies knows this table's validation grids.

Usage::

    python recipes/mnist_small_data/plan.py --table recipes/mnist_small_data/schedule_paper_init.yaml \\
        --results recipes/mnist_small_data/published/schedule160_paper_init --n 1000 --seeds 0-2 --runners 2
    python recipes/mnist_small_data/plan.py --n 1000 --seeds 2 --runners 2 --launch \
        --run-args "--threads 1 --data-dir ../shared/data"      # and run it: logs in <results>/logs/
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import shlex
import statistics
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the checkout: recipes._common
from recipes._common.config_keys import parse_ints  # noqa: E402
from recipes._common.results import read_runs  # noqa: E402
from recipes._common.scripts import load_script  # noqa: E402

HERE = Path(__file__).resolve().parent
run = load_script("mnist_small_data_run_for_plan", HERE / "run.py")


@dataclass
class Job:
    """One planned job: a grid point to train (``tune``), a table cell to train (``run``) or a cell copied from
    the chosen grid point's run (``copy``: no training, but ``run.py`` does it only when asked for that cell)."""

    kind: str
    row: str
    n: int
    seed: int
    steps: int
    label: str
    minutes: float = math.nan
    known: bool = True


class Planner(run.Runner):
    """``run.py``'s runner with training replaced by a record of what would be trained."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jobs: list[Job] = []
        self._planned: dict[Path, list[dict[str, str]]] = {self.runs_path: [], self.tuning_path: []}

    def train(self, cfg: dict[str, Any], seed: int, label: str) -> dict[str, Any]:
        kind = "tune" if "[" in label else "run"  # run.py labels grid points "row[key=value]", cells "row/n/seed"
        row = label.split("[", 1)[0].split("/", 1)[0]
        n = int(cfg["data"]["n"])
        self.jobs.append(Job(kind, row, n, seed, steps_of(cfg), label))
        return {"val_acc": -1.0, "test_acc": -1.0, "train_acc": -1.0, "seconds": 0.0}

    def read(self, path: Path) -> list[dict[str, str]]:
        return super().read(path) + self._planned.get(path, [])

    def append(self, path: Path, record: dict[str, Any]) -> None:
        record = {k: str(v) for k, v in record.items()}
        self._planned[path].append(record)
        row, n, seed = record["row"], int(record["n"]), int(record["seed"])
        last = self.jobs[-1] if self.jobs else None
        trained = last is not None and last.kind == "run" and (last.row, last.n, last.seed) == (row, n, seed)
        if path == self.runs_path and not trained:
            # a grid point's run copied as the table's cell: no training, but run.py must be asked for that cell
            self.jobs.append(Job("copy", row, n, seed, 0, f"{row}/{n}/{seed}", 0.0))


def steps_of(cfg: dict[str, Any]) -> int:
    """SGD steps of one run of a resolved config: epochs × ⌈n / batch⌉."""
    n, batch = int(cfg["data"]["n"]), int(cfg["data"].get("batch_size", 128))
    return int(cfg["trainer"]["max_epochs"]) * math.ceil(n / batch)


#: The published results (every table's folder): where the rates come from when ``--results`` holds no run yet.
PUBLISHED = HERE / "published"


def seconds_per_step(results: Path) -> dict[tuple[str, int | None], float]:
    """``{(row, n): median seconds per SGD step}`` over the runs recorded in ``results`` — or, when it holds
    none yet (a fresh folder), in the published results — and ``(row, None)`` over every n of the row (batch
    128, every config's: the CSVs do not record it)."""
    recorded = read_runs(results / "runs.csv") + read_runs(results / "tuning.csv")
    if not recorded:
        recorded = [r for path in sorted(PUBLISHED.rglob("*.csv")) if path.name in ("runs.csv", "tuning.csv")
                    for r in read_runs(path)]
    rates: dict[tuple[str, int | None], list[float]] = {}
    for r in recorded:
        steps = int(r["epochs"]) * math.ceil(int(r["n"]) / 128)
        if r.get("seconds") and steps:
            for key in ((r["row"], int(r["n"])), (r["row"], None)):
                rates.setdefault(key, []).append(float(r["seconds"]) / steps)
    return {key: statistics.median(values) for key, values in rates.items()}


def plan(table: dict[str, Any], results: Path, rows: Sequence[str], ns: Sequence[int], seeds: Sequence[int],
         epochs: int | None = None, eval_examples: int | None = None) -> list[Job]:
    """The runs ``run.py`` would train, in its order, with their estimated minutes."""
    planner = Planner(table, results, None, epochs, 1, log_every=0, eval_examples=eval_examples)
    with contextlib.redirect_stdout(io.StringIO()):
        planner.run(rows, ns, seeds)
    rates = seconds_per_step(results)
    overall = [rate for (_, n), rate in rates.items() if n is None]
    fallback = statistics.median(overall) if overall else math.nan
    for job in planner.jobs:
        rate = rates.get((job.row, job.n), rates.get((job.row, None)))
        job.known = rate is not None
        job.minutes = (fallback if rate is None else rate) * job.steps / 60
    return planner.jobs


def rates_report(results: Path) -> str:
    """Each row's median seconds per SGD step at each recorded n, and the ratio of the largest n's to the smallest's
    (how far a plan for an n never run, scaled from another n, can be off)."""
    rates = seconds_per_step(results)
    ns = sorted({n for _, n in rates if n is not None})
    lines = ["row | " + " | ".join(f"s/step n={n}" for n in ns) + (f" | n={ns[-1]} ÷ n={ns[0]}" if len(ns) > 1 else "")]
    for row in sorted({row for row, _ in rates}):
        cells = [f"{rates[(row, n)]:.3f}" if (row, n) in rates else "—" for n in ns]
        both = len(ns) > 1 and (row, ns[0]) in rates and (row, ns[-1]) in rates
        lines.append(f"{row} | " + " | ".join(cells)
                     + (f" | {rates[(row, ns[-1])] / rates[(row, ns[0])]:.2f}" if both else " | —" * (len(ns) > 1)))
    return "\n".join(lines)


def _sources(table: dict[str, Any], name: str) -> set[str]:
    """``name`` and every row it inherits from, transitively."""
    out, todo = set(), [name]
    while todo:
        row = todo.pop()
        if row not in out:
            out.add(row)
            todo += list((table["rows"][row].get("inherit") or {}).values())
    return out


def split(table: dict[str, Any], jobs: Sequence[Job], runners: int) -> list[list[Job]]:
    """Jobs over ``runners``, longest unit first onto the least loaded; each runner's jobs keep run.py's order.

    A unit is one cell, except that the jobs of rows waiting on an unfinished grid (its points and every cell
    that needs it, through ``inherit``) form one unit; rows waiting on two grids join both into one unit."""
    waiting = {j.row for j in jobs if j.kind == "tune"}
    parent = {row: row for row in waiting}

    def root(row: str) -> str:
        while parent[row] != row:
            row = parent[row]
        return row

    units: dict[Any, list[int]] = {}
    blocked = [sorted(_sources(table, j.row) & waiting) for j in jobs]
    for grids in blocked:
        for other in grids[1:]:
            parent[root(other)] = root(grids[0])
    for i, grids in enumerate(blocked):
        units.setdefault(("grid", root(grids[0])) if grids else ("cell", i), []).append(i)
    # minutes are NaN only when nothing at all is recorded yet: then SGD steps stand in for time
    cost = lambda idx: sum(jobs[i].steps if math.isnan(jobs[i].minutes) else jobs[i].minutes for i in idx)  # noqa: E731
    load, share = [0.0] * runners, [[] for _ in range(runners)]
    for idx in sorted(units.values(), key=lambda idx: (-cost(idx), idx[0])):
        k = min(range(runners), key=lambda r: (load[r], r))
        load[k] += cost(idx)
        share[k] += idx
    return [[jobs[i] for i in sorted(idx)] for idx in share]


def commands(jobs: Sequence[Job]) -> list[list[str]]:
    """``run.py`` arguments for one runner's jobs: one command per (n, seed) in order, its rows in run.py's order."""
    out: list[tuple[int, int, list[str]]] = []
    for job in jobs:
        if job.kind == "tune":
            continue  # grid points are trained by run.py before the first cell that needs them
        if not out or out[-1][:2] != (job.n, job.seed):
            out.append((job.n, job.seed, []))
        if job.row not in out[-1][2]:
            out[-1][2].append(job.row)
    tuned_only = sorted({j.row for j in jobs if j.kind == "tune"} - {j.row for j in jobs if j.kind != "tune"})
    if tuned_only and not out:  # a runner with grid points but no cell of its own
        out = [(jobs[0].n, jobs[0].seed, tuned_only)]
    return [["--n", str(n), "--seeds", str(seed), "--rows", ",".join(rows)] for n, seed, rows in out]


def launch(shares: Sequence[Sequence[list[str]]], logs: Path) -> int:
    """Run each runner's commands one after the other, the runners side by side (one thread each, waiting on its
    child process); output to ``logs/runner-<k>.log``. Returns the number of commands that failed. Ctrl-C stops
    every child (run.py loses at most the runs in progress; a rerun resumes)."""
    logs.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []
    failed: list[tuple[int, int]] = []

    def work(k: int, argvs: Sequence[list[str]]) -> None:
        with open(logs / f"runner-{k}.log", "a") as log:
            for argv in argvs:
                log.write(f"$ {shlex.join(argv)}\n")
                log.flush()
                child = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
                children.append(child)
                if child.wait() != 0:
                    failed.append((k, child.returncode))
                    print(f"[launch] runner {k}: exit status {child.returncode} from {shlex.join(argv[1:])}",
                          flush=True)

    threads = [threading.Thread(target=work, args=(k, argvs), daemon=True) for k, argvs in enumerate(shares, 1)]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        for child in children:
            child.terminate()
        raise
    return len(failed)


def _shown(path: str | Path) -> str:
    """``path`` relative to the working directory when it lies below it (the commands stay short)."""
    path = Path(path).resolve()
    return path.relative_to(Path.cwd()).as_posix() if path.is_relative_to(Path.cwd()) else str(path)


def _minutes(value: float) -> str:
    return "?" if math.isnan(value) else f"{value:.0f}"


def report(table: dict[str, Any], jobs: Sequence[Job], runners: int, base: list[str]) -> str:
    """The plan as text: every job with its estimate, the total, and each runner's commands."""
    if not jobs:
        return "[plan] nothing left to train for these rows, n and seeds."
    total = sum(j.minutes for j in jobs if not math.isnan(j.minutes))
    count = {kind: sum(j.kind == kind for j in jobs) for kind in ("run", "tune", "copy")}
    lines = [f"[plan] {count['run']} run(s) and {count['tune']} grid point(s) to train, ~{total:.0f} core-minutes "
             "(each row's recorded seconds per SGD step × the run's steps; ? = a row never run, estimated at the "
             f"median rate); {count['copy']} cell(s) to copy from a grid point's run"]
    for j in jobs:
        what = j.label if j.kind == "tune" else f"{j.row} n={j.n} seed={j.seed}"
        if j.kind == "copy":
            lines.append(f"  copy {what:48s} (from tuning.csv)")
            continue
        lines.append(f"  {j.kind:4s} {what:48s} {j.steps:6d} steps  ~{_minutes(j.minutes)} min"
                     + ("" if j.known else " ?"))
    lines.append(f"[plan] over {runners} runner(s), longest first onto the least loaded; rows waiting on the same "
                 "unfinished grid stay on one runner:")
    for k, share in enumerate(split(table, jobs, runners), 1):
        minutes = sum(j.minutes for j in share if not math.isnan(j.minutes))
        lines.append(f"  runner {k} (~{minutes:.0f} min): " + ("(nothing)" if not share else
                                                             " ; ".join(shlex.join(base + c) for c in commands(share))))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description="Plan the runs run.py still needs; trains nothing.")
    parser.add_argument("--table", default=str(run.TABLE), help="the rows file (table2.yaml)")
    parser.add_argument("--results", default=str(Path("results") / "mnist_small_data"),
                        help="results folder (default results/mnist_small_data, as run.py)")
    parser.add_argument("--rows", default="all", help="comma-separated row names in run order, or 'all'")
    parser.add_argument("--n", default="300,1000", help="training-set sizes, e.g. 300,1000")
    parser.add_argument("--seeds", default="0", help="seeds, e.g. 0 or 0-2 or 0,3")
    parser.add_argument("--epochs", type=int, default=None, help="as run.py --epochs")
    parser.add_argument("--eval-examples", type=int, default=None, help="as run.py --eval-examples")
    parser.add_argument("--runners", type=int, default=1, help="runners to split the work over (default 1)")
    parser.add_argument("--run-args", default="",
                        help="more run.py options for every command, e.g. '--threads 1 --data-dir ../shared/data'")
    parser.add_argument("--rates", action="store_true",
                        help="only print each row's recorded seconds per SGD step at each n (the estimates' basis)")
    parser.add_argument("--launch", action="store_true",
                        help="start the runners now, side by side, and wait (logs: <results>/logs/runner-<k>.log)")
    args = parser.parse_args(argv)
    if args.runners < 1:
        raise SystemExit(f"--runners={args.runners} is not allowed; pass an int >= 1 (one runner per CPU core).")
    extra = shlex.split(args.run_args)
    planned = sorted({"--table", "--results", "--rows", "--n", "--seeds", "--epochs", "--eval-examples", "--summary",
                      "--docs"} & {a.split("=", 1)[0] for a in extra})
    if planned:
        raise SystemExit(f"--run-args={args.run_args!r}: {', '.join(planned)} not allowed there; the plan sets them "
                         "(pass them to plan.py itself).")
    if args.rates:
        print(rates_report(Path(args.results)))
        return 0
    table = run.load_table(Path(args.table))
    rows = list(table["rows"]) if args.rows == "all" else [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in table["rows"]]
    if unknown:
        raise SystemExit(f"--rows: unknown row(s) {unknown}; choose from {', '.join(table['rows'])} or 'all'.")
    results = Path(args.results)
    jobs = plan(table, results, rows, parse_ints(args.n, "n"), parse_ints(args.seeds, "seeds"), args.epochs,
                args.eval_examples)
    base = ["--table", _shown(args.table), "--results", _shown(args.results)]
    for flag, value in (("--epochs", args.epochs), ("--eval-examples", args.eval_examples)):
        if value is not None:
            base += [flag, str(value)]
    shown = ["python", _shown(HERE / "run.py")] + base
    print(report(table, jobs, args.runners, shown + extra))
    if not args.launch or not jobs:
        return 0
    program = [sys.executable, str(HERE / "run.py")] + base
    shares = [[program + extra + c for c in commands(share)] for share in split(table, jobs, args.runners)]
    logs = results / "logs"
    print(f"[launch] {sum(map(bool, shares))} runner(s), logs in {_shown(logs)}/runner-<k>.log", flush=True)
    failed = launch([s for s in shares if s], logs)
    print(f"[launch] done: {failed} command(s) failed" + ("" if failed else "; rerun plan.py to see what is left"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
