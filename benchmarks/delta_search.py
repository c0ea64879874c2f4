"""What does the default ‖f‖²_δ search cost, and what value does it find at that cost? Per model and ε.

For each network (timm ``resnet18``, ``resnet10t``, the BatchNorm-free ``convnext_atto`` at 32×32 CIFAR-size
inputs, batch 64; the paper's ``mnist_vgg5`` at widths 16 and 64, batch 128, on MNIST digits), at random init
with BatchNorm statistics warmed on 4 batches, and for ``mnist_vgg5(16)`` also after 100 training steps and trained
(1,000 steps of SGD on MNIST, the state a checkpoint is in; its accuracy on 1,024 held-out test digits is in the
row):

1. the default ``AdversarialPerturbation(epsilon=ε)`` (``candidates="auto"``, ``budget=DEFAULT_BUDGET``) is
   called on one batch — its first call, a check: the exhaustive search runs there and the plan is chosen
   ("4→2" = 4 first-order candidates per class take two PGD steps and the best 2 continue, "8" = 8 without
   pruning, "all" = the exhaustive search); its passes per call (exact, as ``last_passes`` counts them) and
   with the checks amortised (one exhaustive call in ``check_every`` = 100);
2. on 3 *other* batches that plan is compared with the exhaustive search (``candidates="all"``, same 5 steps
   of 1.5ε/5): column "value ratio" is the value it returns between two checks ÷ the exhaustive value (mean
   and smallest of the 3 batches, exact: its trajectories are rows of the exhaustive search); "0.995 plan" is
   the cheapest plan that would have reached 0.995 on all 3 (what ``target=0.995`` would aim at) and its passes;
3. "exh. ÷ 20 steps" compares the paper's 5-step exhaustive search with a 20-step one (step 1.5ε/20 … same
   path length) — how far the paper's own search is from a stronger one (ε = 1 only, the costly column);
4. step cost: a training step with the chosen plan ÷ a plain step, the default's amortised step
   (99 steps of the plan + 1 exhaustive step) / 100, and the exhaustive step, median of 3 interleaved pairs after a warm-up,
   measured twice in one process (:func:`benchmarks._timing.compare_steps`);
5. the README's loop (cross-entropy + ‖f‖²_δ at ε = 1 + ‖f‖²_τ, then the spectral-norm projection, all at their
   defaults) ÷ a plain step, its δ check amortised the same way (``readme_loop`` in the JSON).

Usage::

    python benchmarks/delta_search.py [--data-dir DIR] [--jobs 2] [--threads 1] [--models resnet18,mnist_vgg5_64] \\
        [--json F]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import compare_steps, machine_info, training_step, write_json  # noqa: E402
from rkhsreg.penalties.adversarial_perturbation import AdversarialPerturbation  # noqa: E402

CIFAR_EPS = (0.25, 0.5, 1.0, 2.0)
MNIST_EPS = (0.5, 1.0, 2.0)
MODELS = {  # name: (factory kwargs, dataset, batch, epsilons, train steps of each trained state)
    "resnet18": ("timm", "cifar", 64, CIFAR_EPS, ()),
    "resnet10t": ("timm", "cifar", 64, CIFAR_EPS, ()),
    "convnext_atto": ("timm", "cifar", 64, CIFAR_EPS, ()),
    "mnist_vgg5_16": (16, "mnist", 128, MNIST_EPS, (100, 1000)),
    "mnist_vgg5_64": (64, "mnist", 128, MNIST_EPS, ()),
}
QUICK = {"mnist_vgg5_4": (4, "mnist", 16, (1.0,), ())}   # ``--quick``: checks the pipeline, measures nothing


def build(name: str) -> torch.nn.Module:
    kind = {**MODELS, **QUICK}[name][0]
    if kind == "timm":
        import timm
        return timm.create_model(name, pretrained=False, num_classes=10)
    from rkhsreg.models import mnist_vgg5
    return mnist_vgg5(width=kind)


def load(dataset: str, data_dir: str | None, n: int, train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    if dataset == "mnist":
        from rkhsreg.data import load_mnist
        x, y = load_mnist(data_dir, train=train, download=False)
        return x[:n], y[:n]
    from rkhsreg.data.cifar10_files import load_cifar10_tensors
    return load_cifar10_tensors(data_dir, train=train, limit=n)


CALIBRATION, EVALUATION = 1, 3   # batches the default calibrates on (its first call), batches it is judged on


TRAIN_POOL = 60   # batches the trained states draw their steps from (disjoint from the measured ones)


def prepare(name: str, data_dir: str | None, train_steps: int
            ) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, float | None]:
    """The model (BN warmed, or trained for ``train_steps``), the 5 batches it is measured on (disjoint from those
    it saw) and, when trained, its accuracy on 1,024 test examples."""
    _, dataset, batch, _, _ = {**MODELS, **QUICK}[name]
    used = (CALIBRATION + EVALUATION) * batch
    torch.manual_seed(0)
    model = build(name)
    pool = min(TRAIN_POOL, max(6, train_steps))
    x, y = load(dataset, data_dir, used + pool * batch)
    model.train()
    accuracy = None
    if train_steps:
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        for i in range(train_steps):
            j = used + (i % pool) * batch
            loss = torch.nn.functional.cross_entropy(model(x[j:j + batch]), y[j:j + batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        xt, yt = load(dataset, data_dir, 1024, train=False)
        model.eval()
        with torch.no_grad():
            accuracy = float((model(xt).argmax(1) == yt).float().mean())
        model.train()
    else:
        with torch.no_grad():
            for j in range(4):
                model(x[used + j * batch:used + (j + 1) * batch])
    return model, x[:used], y[:used], accuracy


def value(model: torch.nn.Module, x: torch.Tensor, **kwargs: Any) -> float:
    with torch.no_grad():
        return float(AdversarialPerturbation(**kwargs)(model, x))


def calibrate(model: torch.nn.Module, x: torch.Tensor, epsilon: float, **kwargs: Any) -> AdversarialPerturbation:
    """The default search after one call on ``x`` — a check: ``last_search`` holds the exhaustive value, the exact
    ratio and the passes of every plan on ``x``, and the plan chosen."""
    auto = AdversarialPerturbation(epsilon=epsilon, **kwargs)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", RuntimeWarning)
        auto(model, x)
    return auto


def label(plan: Any) -> str:
    """A plan as written in the table: "all", "16" (no pruning) or "32→8" (pool → keep)."""
    if plan == "all":
        return "all"
    return str(plan[0]) if plan[0] == plan[1] else f"{plan[0]}→{plan[1]}"


def step_ratio(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, rounds: int, **kwargs: Any) -> list[float]:
    """A training step with ``kwargs``' penalties (``delta``: ‖f‖²_δ arguments; ``readme``: the README's loop) ÷ a
    plain step, per round."""
    import rkhsreg

    opt = torch.optim.SGD(model.parameters(), lr=0.0)  # lr 0: the model stays the one measured
    plain = training_step(model, x, y, opt)
    if "readme" in kwargs:
        delta = AdversarialPerturbation(epsilon=1.0, **kwargs["readme"])
        tau = rkhsreg.create_penalty("adversarial_deformation", weight=0.1)
        def penalty(m: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
            return delta(m, xb, yb) + tau(m, xb, yb)
        step = training_step(model, x, y, opt, penalty=penalty,
                             constraint=rkhsreg.create_constraint("spectral_norm_projection", radius=1.0))
    else:
        step = training_step(model, x, y, opt, penalty=AdversarialPerturbation(**kwargs["delta"]))
    state = {k: v.clone() for k, v in model.state_dict().items()}
    try:
        return [r["time_ratio"] for r in compare_steps(plain, step, steps=3, rounds=rounds, warmup=1)]
    finally:
        model.load_state_dict(state)   # the projection changed the weights: the next rows measure the same model


def amortised(plan: list[float], exhaustive: list[float], every: int = 100) -> list[float]:
    """Per round: ``every - 1`` steps of the plan and one exhaustive step (a check), averaged."""
    return [((every - 1) * p + e) / every for p, e in zip(plan, exhaustive)]


def measure(name: str, train_steps: int, data_dir: str | None, rounds: int, log) -> list[dict[str, Any]]:
    model, x, y, accuracy = prepare(name, data_dir, train_steps)
    batch, epsilons = {**MODELS, **QUICK}[name][2:4]
    batches = list(x.split(batch))
    cal, judged = batches[:CALIBRATION], batches[CALIBRATION:]
    a, ya = cal[0], y[:batch]
    rows, costs = [], {}
    for eps in epsilons:
        model.eval()
        default = calibrate(model, cal[0], eps)
        chosen, cost, amortised_passes = (default.last_search[k] for k in ("chosen", "cost", "amortised"))
        plan = (batch, batch) if chosen == "all" else chosen
        on_b = [calibrate(model, b, eps).last_search for b in judged]   # the exhaustive search on each judged batch
        ratios = [r["ratios"][plan] for r in on_b]
        reaching = [p for p in sorted(cost, key=lambda p: (cost[p], p)) if all(r["ratios"][p] >= 0.995 for r in on_b)]
        state = f"{train_steps} steps, test acc. {accuracy:.1%}" if train_steps else "init"
        row = {"model": name, "state": state, "train_steps": train_steps, "test_accuracy": accuracy,
               "epsilon": eps, "budget": default.budget, "chosen": label(chosen),
               "passes": cost[plan], "amortised_passes": amortised_passes[plan],
               "value_ratio": sum(ratios) / len(ratios), "min_value_ratio": min(ratios),
               "calibration_ratio": default.last_search["ratios"][plan],
               "target_plan": label("all" if reaching[0] == (batch, batch) else reaching[0]),
               "target_passes": cost[reaching[0]], "exhaustive_passes": cost[(batch, batch)],
               "exhaustive": [r["exhaustive"] for r in on_b],
               "ratios_judged": [{label(p): v for p, v in r["ratios"].items()} for r in on_b], "strong_ratio": None}
        if eps == 1.0:
            row["strong_ratio"] = row["exhaustive"][0] / value(model, judged[0], epsilon=eps, candidates="all",
                                                               steps=20)
        model.train()
        for c in (chosen, "all"):
            if c not in costs:
                costs[c] = step_ratio(model, a, ya, rounds, delta={"epsilon": 1.0, "candidates": c})
        row["step_ratio"] = costs[chosen]
        row["auto_step_ratio"] = amortised(costs[chosen], costs["all"], default.check_every)
        row["exhaustive_step_ratio"] = costs["all"]
        if eps == 1.0 and name in README_LOOP:
            loop = step_ratio(model, a, ya, rounds, readme={"candidates": chosen})
            row["readme_loop"] = {"plan": label(chosen), "step_ratio": loop,
                                  "amortised_step_ratio": [step + (e - c) / default.check_every for step, e, c in
                                                           zip(loop, costs["all"], costs[chosen])]}
        log(row)
        rows.append(row)
    return rows


#: the networks the README's loop (‖f‖²_δ at ε = 1 + ‖f‖²_τ + projection) is measured on
README_LOOP = ("resnet18", "mnist_vgg5_64", "mnist_vgg5_4")


def render(rows: list[dict[str, Any]]) -> str:
    def ratios(values: list[float]) -> str:
        return " / ".join(f"{v:.2f}×" for v in values)
    lines = [f"| model | state | ε | plan chosen | passes (a call / amortised) | value ratio (mean, min of {EVALUATION} "
             "batches) | step ÷ plain (plan) | step ÷ plain (amortised) | 0.995 plan (passes) | exhaustive step | "
             "exh. ÷ 20 steps |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        strong = "" if r["strong_ratio"] is None else f"{r['strong_ratio']:.3f}"
        lines.append(f"| {r['model']} | {r['state']} | {r['epsilon']:g} | {r['chosen']} | {r['passes']:.1f} / "
                     f"{r['amortised_passes']:.1f} | {r['value_ratio']:.3f}, {r['min_value_ratio']:.3f} | "
                     f"{ratios(r['step_ratio'])} | {ratios(r['auto_step_ratio'])} | {r['target_plan']} "
                     f"({r['target_passes']:.1f}) | {ratios(r['exhaustive_step_ratio'])} | {strong} |")
    return "\n".join(lines)


def render_readme_loop(rows: list[dict[str, Any]]) -> str:
    """The README's loop (‖f‖²_δ + ‖f‖²_τ + projection) per network: the δ plan and the step ÷ a plain step."""
    lines = ["| model | ‖f‖²_δ plan | step ÷ plain (round 1 / 2) | amortised with the δ checks |", "|---|---|---|---|"]
    for r in rows:
        if "readme_loop" in r:
            loop = r["readme_loop"]
            lines.append(f"| {r['model']} | {loop['plan']} | " + " / ".join(f"{v:.2f}×" for v in loop["step_ratio"])
                         + " | " + " / ".join(f"{v:.2f}×" for v in loop["amortised_step_ratio"]) + " |")
    return "\n".join(lines)


def jobs_of(models: list[str] | None, quick: bool = False) -> list[tuple[str, int]]:
    """The (model, train steps) states measured, in the table's order; each is one job."""
    specs = QUICK if quick else MODELS
    for name in models or list(specs):
        if name not in specs:
            raise SystemExit(f"--models: {name!r} is not one of {', '.join(specs)}")
    return [(name, steps) for name in models or list(specs) for steps in (0, *specs[name][4])]


#: Seconds each job took (the JSON's ``job_seconds``: 2 workers of 1 thread on a 2-core AMD EPYC): the longest
#: start first, so that the workers end together (longest-processing-time-first scheduling).
COST = {"mnist_vgg5_64/0": 435, "resnet18/0": 300, "resnet10t/0": 156, "convnext_atto/0": 141,
        "mnist_vgg5_16/1000": 94, "mnist_vgg5_16/100": 53, "mnist_vgg5_16/0": 50}


def _job(name: str, train_steps: int, data_dir: str | None, rounds: int, threads: int | None
         ) -> tuple[list[dict[str, Any]], float]:
    """One state's rows and the seconds they took (run in a worker process when ``jobs`` > 1)."""
    if threads is not None:
        torch.set_num_threads(threads)
    start = time.perf_counter()
    rows = measure(name, train_steps, data_dir, rounds, log=lambda r: None)
    return rows, time.perf_counter() - start


def run(models: list[str] | None = None, *, data_dir: str | None = None, rounds: int = 2, quick: bool = False,
        log=print, jobs: int = 1, threads: int | None = None) -> dict[str, Any]:
    """Every model's rows (``quick``: one tiny model at ε = 1) and the Markdown table.

    ``jobs`` > 1 measures the (model, state) pairs in that many worker processes, ``threads`` torch threads each
    (the rows do not depend on it: each state is seeded on its own; the time ratios are measured within one
    worker, the plain step and the penalty's step interleaved, so the other workers load both alike).
    """
    todo = jobs_of(models, quick)
    start = time.perf_counter()
    done: dict[tuple[str, int], tuple[list[dict[str, Any]], float]] = {}
    if jobs <= 1 or len(todo) == 1:
        for name, steps in todo:
            done[name, steps] = _job(name, steps, data_dir, rounds, threads)
            for row in done[name, steps][0]:
                log(json.dumps(row))
    else:
        import concurrent.futures
        import multiprocessing

        order = sorted(todo, key=lambda t: -COST.get(f"{t[0]}/{t[1]}", 0))
        context = multiprocessing.get_context("spawn")   # no fork after torch's thread pools started
        with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            futures = {pool.submit(_job, name, steps, data_dir, rounds, threads): (name, steps)
                       for name, steps in order}
            for future in concurrent.futures.as_completed(futures):
                done[futures[future]] = future.result()
                for row in done[futures[future]][0]:
                    log(json.dumps(row))
    rows = [row for key in todo for row in done[key][0]]
    return {"rows": rows, "table": render(rows), "readme_loop": render_readme_loop(rows),
            "seconds": time.perf_counter() - start, "jobs": max(1, jobs),
            "job_seconds": {f"{name}/{steps}": round(done[name, steps][1], 1) for name, steps in todo}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes, one (model, state) each at a time")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="one tiny model: checks the script runs")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    for option in ("jobs", "threads", "rounds"):
        if getattr(args, option) < 1:
            raise SystemExit(f"--{option}={getattr(args, option)} is out of range; pass an int >= 1.")
    torch.set_num_threads(args.threads)
    out = run(None if args.quick else args.models.split(","), data_dir=args.data_dir, rounds=args.rounds,
              quick=args.quick, log=lambda line: print(line, flush=True), jobs=args.jobs, threads=args.threads)
    print(out["table"])
    print(out["readme_loop"])
    print(f"({out['seconds']:.0f} s)")
    if args.json:
        write_json(args.json, {**out, "machine": machine_info(), "threads": args.threads})
    return 0


if __name__ == "__main__":
    sys.exit(main())
