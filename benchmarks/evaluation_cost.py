"""Cost and strength of ``evaluate_robustness``: a whole ε-curve against one run at the largest ε, and
against torchattacks' AutoAttack run alone at every ε.

A small MNIST network (the paper's ``mnist_vgg5`` at reduced width) is trained for a few hundred SGD
steps on real MNIST, then evaluated on the first ``--n-examples`` test digits, ℓ2:

1. cost: the whole curve over ``--epsilons`` (8 values) with the default ensemble (FAB-T, APGD-CE,
   APGD-T with 9 targets, 100 steps), in both orders, divided by the same ensemble run once at the
   largest ε (``evaluate_robustness(epsilons=[ε_max])``). Wall time and model passes (forward and
   backward rows), split into the minimum-norm stage (FAB-T, shared by both) and the ε-bounded
   stages. Target: ≤ 1.5×. Also printed: the pass ratio a curve cannot go below while it runs the
   full ε-bounded ensemble, failing, once on every example it reports robust at the smallest ε (see
   docs/evaluation.md). Sanity checks are off in these timings (their cost is printed separately).
   Measured ``--rounds`` times (default 2) in the same process.
2. strength: at every ε, the curve's robust accuracy against torchattacks' ``AutoAttack``
   (``version="standard"``, ``n_classes=10``: APGD-CE, APGD-T, FAB-T, Square) with 100 steps for
   APGD/APGD-T/FAB — torchattacks' default is 10 — run alone at that ε on the same examples. Target:
   ours ≤ AutoAttack's at every ε. The curve's time is also divided by AutoAttack's at ε_max.

Usage::

    python benchmarks/evaluation_cost.py [--data-dir DIR] [--n-examples 200] [--train-steps 300]
        [--width 8] [--threads 2] [--rounds 2] [--skip-autoattack] [--square-queries 5000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

from rkhsreg.evaluation import AttackSettings, evaluate_robustness
from rkhsreg.evaluation.result import atomic_write
from rkhsreg.models import mnist_vgg5

EPSILONS = [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5]


def _mnist(data_dir: str, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import MNIST

    ds = MNIST(data_dir, train=train, download=False)
    return ds.data.float().div(255).unsqueeze(1), ds.targets.clone()


def _train(width: int, steps: int, data_dir: str) -> torch.nn.Module:
    x, y = _mnist(data_dir, train=True)
    torch.manual_seed(0)
    model = mnist_vgg5(width=width)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
    model.eval()
    return model


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _split(result) -> tuple[int, int]:
    """Passes (forward + backward rows) of the minimum-norm stages and of the ε-bounded ones."""
    minimum = sum(s["forward_rows"] + s["backward_rows"] for s in result.stages if s["epsilon"] is None)
    return minimum, result.forward_rows + result.backward_rows - minimum


def _floor(single, curve, eps_min: float) -> float:
    """Pass ratio of a curve that runs the full ε-bounded ensemble once, failing, on every example robust at
    the smallest ε, and nothing else: (minimum-norm passes + n · c) / single, with c the passes per example of
    the single run's (failed) ε-bounded stages."""
    minimum, bounded = _split(single)
    failed = max(s["attacked"] for s in single.stages if s["epsilon"] is not None) if bounded else 0
    per_example = bounded / failed if failed else 0.0
    robust = int((curve.distances > eps_min).sum())
    return (minimum + robust * per_example) / (minimum + bounded)


def _autoattack(model, x, y, eps: float, steps: int, square_queries: int, batch_size: int) -> float:
    import torchattacks

    atk = torchattacks.AutoAttack(model, norm="L2", eps=eps, version="standard", n_classes=10, seed=0)
    for sub in atk._autoattack.attacks:  # torchattacks builds them with 10 steps; AutoAttack's original: 100
        if hasattr(sub, "steps"):
            sub.steps = steps
        if hasattr(sub, "n_queries"):
            sub.n_queries = square_queries
    correct = 0
    for start in range(0, len(x), batch_size):
        xb, yb = x[start:start + batch_size], y[start:start + batch_size]
        with torch.random.fork_rng():
            adv = atk(xb, yb)
        with torch.no_grad():
            correct += int((model(adv).argmax(1) == yb).sum())
    return correct / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_dir = os.environ.get("RKHSREG_DATA", os.path.join(os.path.dirname(__file__), "..", "..", "shared",
                                                              "data"))
    parser.add_argument("--data-dir", default=default_dir)
    parser.add_argument("--n-examples", type=int, default=200)
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--epsilons", default=",".join(map(str, EPSILONS)))
    parser.add_argument("--threads", type=int, default=1,
                        help="1 by default: on a shared CPU, OpenMP barriers with 2 threads cost up to 8x")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-autoattack", action="store_true")
    parser.add_argument("--square-queries", type=int, default=5000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    eps = sorted(float(e) for e in args.epsilons.split(","))
    model, train_s = _timed(lambda: _train(args.width, args.train_steps, args.data_dir))
    model.to(device)
    x, y = _mnist(args.data_dir, train=False)
    x, y = x[:args.n_examples], y[:args.n_examples]
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
          f"device {device}; mnist_vgg5(width={args.width}) trained {args.train_steps} steps in {train_s:.0f}s; "
          f"{len(x)} test digits; l2; {args.steps} steps; eps {eps}")
    common = dict(norm="l2", attack=AttackSettings(steps=args.steps), batch_size=args.batch_size, seed=0, sanity=False)
    report: dict = {"rounds": [], "settings": vars(args)}
    curve = None
    for round_ in range(1, args.rounds + 1):
        single, t_single = _timed(lambda: evaluate_robustness(model, (x, y), epsilons=[eps[-1]], **common))
        rows = {"single": (single, t_single)}
        for order in ("descending", "ascending"):
            rows[order] = _timed(lambda order=order: evaluate_robustness(model, (x, y), epsilons=eps,
                                                                         **{**common, "attack": AttackSettings(
                                                                             steps=args.steps, order=order)}))
        passes = {k: r.forward_rows + r.backward_rows for k, (r, _) in rows.items()}
        entry = {"round": round_, "single_s": t_single, "single_passes": passes["single"],
                 "single_split": _split(single)}
        print(f"round {round_}: one run at eps={eps[-1]:g}: {t_single:.1f}s, {passes['single']} rows "
              f"(min-norm {entry['single_split'][0]}, eps-bounded {entry['single_split'][1]}; "
              f"robust acc {single.robust_accuracy[0]:.3f})")
        for order in ("descending", "ascending"):
            result, seconds = rows[order]
            ratio_t, ratio_p = seconds / t_single, passes[order] / passes["single"]
            split = _split(result)
            entry[order] = {"seconds": seconds, "passes": passes[order], "split": split, "time_ratio": ratio_t,
                            "pass_ratio": ratio_p, "robust_acc": result.robust_accuracy}
            print(f"  curve over {len(eps)} eps, {order:>10}: {seconds:6.1f}s, {passes[order]} rows (min-norm "
                  f"{split[0]}, eps-bounded {split[1]}) -> {ratio_t:.2f}x time, {ratio_p:.2f}x passes "
                  f"(target <= 1.5x)")
        entry["floor"] = _floor(single, rows["descending"][0], eps[0])
        print(f"  floor of the pass ratio (full eps-bounded ensemble once per example robust at eps={eps[0]:g}): "
              f"{entry['floor']:.2f}x")
        report["rounds"].append(entry)
        curve = rows["descending"][0]
    sanity, t_sanity = _timed(lambda: evaluate_robustness(model, (x, y), epsilons=eps,
                                                          **{**common, "sanity": True}))
    print(f"with sanity checks: {t_sanity:.1f}s ({t_sanity / report['rounds'][-1]['descending']['seconds']:.2f}x the "
          f"curve without); warnings: {sanity.sanity['warnings'] or 'none'}")
    report["sanity_s"] = t_sanity
    print(f"clean accuracy {curve.clean_accuracy:.3f}")
    ascending = report["rounds"][-1]["ascending"]["robust_acc"]
    if args.skip_autoattack:
        for e, a, b in zip(eps, curve.robust_accuracy, ascending):
            print(f"  eps {e:>5g}: ours {a:.3f} (ascending {b:.3f})")
    else:
        report["autoattack"] = []
        above = 0
        for e, a, b in zip(eps, curve.robust_accuracy, ascending):
            aa, seconds = _timed(lambda e=e: _autoattack(model, x.to(device), y.to(device), e, args.steps,
                                                         args.square_queries, args.batch_size))
            ok = max(a, b) <= aa + 1e-12
            above += not ok
            print(f"  eps {e:>5g}: ours {a:.3f} (ascending {b:.3f}), AutoAttack({args.steps} steps) {aa:.3f} "
                  f"[{seconds:.0f}s] {'ok' if ok else 'ABOVE AutoAttack'}")
            report["autoattack"].append({"epsilon": e, "ours": a, "ours_ascending": b, "autoattack": aa,
                                         "seconds": seconds})
        last = report["rounds"][-1]
        t_aa = report["autoattack"][-1]["seconds"]
        print(f"AutoAttack alone at eps={eps[-1]:g}: {t_aa:.1f}s; the curve over {len(eps)} eps costs "
              f"{last['descending']['seconds'] / t_aa:.2f}x that (descending), "
              f"{last['ascending']['seconds'] / t_aa:.2f}x (ascending); all 8 AutoAttack runs: "
              f"{sum(r['seconds'] for r in report['autoattack']):.0f}s")
        print(f"strength: ours <= AutoAttack at {len(eps) - above} of {len(eps)} eps")
    if args.json:
        atomic_write(args.json, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
