"""Every benchmark of the project in one command, written to ``benchmarks/results/<machine>.json`` and ``.md``.

Sections (each figure is a ratio measured in this run, each measurement repeated ``--rounds`` times
in one process; nothing here asserts a timing):

* ``step_cost`` — every plugin's training-step time and peak memory relative to a plain step, and its
  forward/backward passes, on the paper's MNIST network and on a timm ResNet-18 at 32×32, next to a
  straightforward ‖f‖²_δ (one PGD per class and example, :mod:`benchmarks.step_cost`).
* ``delta_search`` — the default ‖f‖²_δ search's value against the exhaustive search and its step cost on
  timm ResNet-18 / ResNet-10t / ConvNeXt-atto and the paper's MNIST net (:mod:`benchmarks.delta_search`).
* ``evaluation`` — ``evaluate_robustness`` over an 8-value ε sweep against torchattacks' AutoAttack
  run once per ε (``benchmarks/evaluation_cost.py``, run as a subprocess; its own JSON is kept whole).
* ``callback`` — the Lightning callback's overhead with every penalty off
  (:func:`benchmarks.callback_overhead.measure`).
* ``ddp`` — examples/s of ``Trainer(strategy="ddp", accelerator="cpu")`` with 1 and 2 processes
  (``benchmarks/ddp_throughput.py``, one subprocess per run).

The JSON and the Markdown summary are rewritten (atomically) after every section, with
``"complete": false`` until the last one ends, so a long run can be watched and an interrupted one
keeps what it measured.

Usage::

    python -m benchmarks                       # or: make bench; python benchmarks/run_all.py
    python -m benchmarks --quick --out /tmp/b  # tiny sizes: checks the pipeline in about a minute
    python -m benchmarks --sections step_cost --models resnet18
    python -m benchmarks --render benchmarks/results/cpu-x86_64-2cores.json   # rewrite the .md from the JSON
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import step_cost  # noqa: E402
from benchmarks._timing import library_defaults, git_commit, machine_info, machine_tag, write_atomic, write_json  # noqa: E402

__all__ = ["SECTIONS", "SCHEMA_VERSION", "run", "render_markdown", "validate", "main"]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SCHEMA_VERSION = 1
SECTIONS = ("step_cost", "delta_search", "evaluation", "callback", "ddp")
NOISE_NOTE = ("Measured on a machine shared with other jobs (background training runs and other work on the same "
              "cores): every time ratio carries that noise — compare the two rounds to see how much — and only "
              "the pass counts are exact. Rerun on a quiet machine for firm numbers.")


# ----------------------------------------------------------------------------- sections

def _subprocess(args: list[str], threads: int, timeout: float | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def section_step_cost(opts: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Both models' plugin rows (with ``--keep``, the models of the existing results not measured now stay, each with
    the provenance it was measured with)."""
    out = dict(getattr(opts, "kept", {}).get("step_cost", {}).get("models", {})) if opts.keep else {}
    for name in opts.models:
        log(f"step_cost: {name}")
        out[name] = step_cost.measure_model(name, quick=opts.quick, steps=1 if opts.quick else opts.steps,
                                            rounds=opts.rounds, data_dir=opts.data_dir, device=opts.device, log=log)
        out[name]["measured"] = {"git_commit": git_commit(), "command": opts.command,
                                 "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                 "load_average": [round(v, 2) for v in os.getloadavg()]}
    return {"models": out}


def section_delta_search(opts: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """The default ‖f‖²_δ search ÷ the exhaustive one, per model and ε, and its step cost."""
    from benchmarks import delta_search
    log("delta_search: default (candidates='auto') vs exhaustive ‖f‖²_δ search")
    return delta_search.run(data_dir=opts.data_dir, rounds=opts.rounds, quick=opts.quick, log=log, jobs=opts.jobs,
                            threads=opts.threads)


def section_evaluation(opts: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """``benchmarks/evaluation_cost.py`` in a subprocess; its JSON plus the ratios this summary reports."""
    sizes = (["--n-examples", "16", "--train-steps", "30", "--width", "4", "--steps", "5", "--square-queries", "20",
              "--batch-size", "16"] if opts.quick else [])
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "evaluation.json"
        args = [str(HERE / "evaluation_cost.py"), "--threads", str(opts.threads), "--rounds", str(opts.rounds),
                "--device", opts.device, "--json", str(target), *sizes]
        if opts.data_dir:
            args += ["--data-dir", opts.data_dir]
        log("evaluation: " + " ".join(args))
        start = time.perf_counter()
        proc = _subprocess(args, opts.threads)
        if proc.returncode != 0 or not target.exists():
            raise RuntimeError(f"evaluation_cost.py failed (exit {proc.returncode}):\n"
                               f"{_tail(proc.stderr or proc.stdout)}")
        report = json.loads(target.read_text())
    out: dict[str, Any] = {"command": "python benchmarks/evaluation_cost.py " + " ".join(_public_args(args[1:])),
                           "seconds": time.perf_counter() - start, "report": report, "stdout_tail": _tail(proc.stdout)}
    out["summary"] = _evaluation_summary(report)
    return out


def _public_args(args: list[str]) -> list[str]:
    """The command line without the temporary ``--json`` path."""
    clean, skip = [], False
    for a in args:
        if skip:
            skip = False
            continue
        if a == "--json":
            skip = True
            continue
        clean.append(a)
    return clean


def _evaluation_summary(report: dict[str, Any]) -> dict[str, Any]:
    """Per round: the curve's seconds (both orders) and AutoAttack's over all ε, and their ratio."""
    aa = report.get("autoattack") or []
    aa_seconds = sum(r.get("seconds", 0.0) for r in aa) if aa else None
    rounds = []
    for r in report.get("rounds", []):
        entry = {"single_seconds": r.get("single_s")}
        for order in ("descending", "ascending"):
            if order in r:
                seconds = r[order]["seconds"]
                entry[order] = {"seconds": seconds, "pass_ratio_to_single": r[order].get("pass_ratio"),
                                "time_ratio_to_single": r[order].get("time_ratio"),
                                "autoattack_time_ratio": None if not aa_seconds else aa_seconds / seconds}
        rounds.append(entry)
    per_eps = [{"epsilon": r["epsilon"], "ours": r.get("ours"), "autoattack": r.get("autoattack"),
                "autoattack_seconds": r.get("seconds")} for r in aa]
    return {"autoattack_seconds_all_eps": aa_seconds, "rounds": rounds, "per_epsilon": per_eps,
            "ours_at_most_autoattack": None if not aa else all(p["ours"] <= p["autoattack"] + 1e-12 for p in per_eps)}


def section_callback(opts: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """The Lightning callback with every penalty at weight 0 against a plain Trainer step."""
    from benchmarks import callback_overhead
    log("callback: Trainer steps with and without RKHSRegularization (penalties off)")
    if opts.quick:
        return callback_overhead.measure(batch=8, steps=3, tiny_steps=20, rounds=opts.rounds, width=4)
    return callback_overhead.measure(rounds=opts.rounds)


def section_ddp(opts: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """1 vs 2 DDP processes, plain and with a penalty; the 2-process run's examples/s over the 1-process run's."""
    sizes = dict(steps=3, warmup=1, batch=8, width=4) if opts.quick else dict(steps=10, warmup=2, batch=64, width=64)
    penalties = ["none"] if opts.quick else ["none", "gradient_norm"]
    out: dict[str, Any] = {"settings": {**sizes, "threads_per_process": opts.threads, "strategy": "ddp",
                                        "accelerator": "cpu", "backend": "gloo"}, "runs": []}
    for penalty in penalties:
        for round_ in range(1, opts.rounds + 1):
            pair = {}
            for devices in (1, 2):
                with tempfile.TemporaryDirectory() as tmp:
                    target = Path(tmp) / "ddp.json"
                    args = [str(HERE / "ddp_throughput.py"), "--devices", str(devices), "--penalty", penalty,
                            "--threads", str(opts.threads), "--json", str(target),
                            *[a for k, v in sizes.items() for a in (f"--{k}", str(v))]]
                    log(f"ddp: {penalty}, round {round_}, {devices} process(es)")
                    proc = _subprocess(args, opts.threads, timeout=1800)
                    if proc.returncode != 0 or not target.exists():
                        raise RuntimeError(f"ddp_throughput.py --devices {devices} failed (exit {proc.returncode}):\n"
                                           f"{_tail(proc.stderr or proc.stdout)}")
                    pair[devices] = json.loads(target.read_text())
            out["runs"].append({"penalty": penalty, "round": round_,
                                "examples_per_second": {str(d): r["examples_per_second"] for d, r in pair.items()},
                                "ratio_2_to_1": pair[2]["examples_per_second"] / pair[1]["examples_per_second"]})
    return out


RUNNERS: dict[str, Callable[[argparse.Namespace, Callable[[str], None]], dict[str, Any]]] = {
    "step_cost": section_step_cost, "delta_search": section_delta_search, "evaluation": section_evaluation, "callback": section_callback,
    "ddp": section_ddp}


# ----------------------------------------------------------------------------- markdown

def _r(values: Sequence[float | None], fmt: str = "{:.2f}×") -> str:
    return " / ".join("–" if v is None else fmt.format(v) for v in values)


def _step_cost_lines(data: dict[str, Any], report: dict[str, Any]) -> list[str]:
    lines = ["Time: median over the timed step pairs of (step with the plugin) / (plain step just before), SGD "
             f"momentum 0.9, one fixed batch; {report['rounds']} round(s) in one process. Peak memory: extra "
             "memory of one step above what is resident before it, plugin step / plain step. Passes: the "
             "plugin's own forward/backward passes in full-batch equivalents (a plain step is 1 / 1 on top). "
             "Value: the penalty found on the same model and batch (÷ the straightforward implementation's, "
             "for ‖f‖²_δ per class).", ""]
    for name, res in data.get("models", {}).items():
        plain = next((r for r in res["rows"] if r["kind"] == "plain" and "rounds" in r), None)
        plain_s = "" if plain is None else (
            f"; plain step {_r([x['plain_seconds'] for x in plain['rounds']], '{:.3f} s')}, "
            f"{_r([x['plain_mb'] for x in plain['rounds']], '{:.0f} MiB')}")
        lines += [f"### {name}: {res['description']}", "",
                  f"Batch {res['batch']}, data: {res['data']}{plain_s}. Memory: {res['memory_method']}.", "",
                  step_cost.format_rows(res["rows"]), ""]
    return lines


def _evaluation_lines(ev: dict[str, Any], report: dict[str, Any]) -> list[str]:
    s = ev["summary"]
    lines = [f"Command: `{ev['command']}` (its full JSON is under `sections.evaluation.report`).", "",
             "| round | one run at ε_max | curve, descending (default) | curve, ascending | "
             "AutoAttack over the 8 ε ÷ our curve (desc. / asc.) |", "|---|---|---|---|---|"]
    for i, r in enumerate(s["rounds"], 1):
        d, a = r.get("descending", {}), r.get("ascending", {})
        lines.append(f"| {i} | {r['single_seconds']:.1f} s | {d.get('seconds', 0):.1f} s | "
                     f"{a.get('seconds', 0):.1f} s | "
                     f"{_r([d.get('autoattack_time_ratio'), a.get('autoattack_time_ratio')])} |")
    if s["per_epsilon"]:
        lines += ["", f"AutoAttack, all 8 ε: {s['autoattack_seconds_all_eps']:.1f} s. Robust accuracy (ours "
                  f"≤ AutoAttack at every ε: {s['ours_at_most_autoattack']}):", "",
                  "| ε | ours | AutoAttack | AutoAttack s |", "|---|---|---|---|"]
        lines += [f"| {p['epsilon']:g} | {p['ours']:.3f} | {p['autoattack']:.3f} | "
                  f"{p['autoattack_seconds']:.1f} |" for p in s["per_epsilon"]]
    return lines + [""]


def _callback_lines(cb: dict[str, Any], report: dict[str, Any]) -> list[str]:
    st = cb["settings"]
    lines = [f"MNIST net (width {st['width']}), batch {st['batch']}, median of {st['steps']} Trainer steps; "
             f"fixed cost from a 4→3 linear model, batch 1, {st['tiny_steps']} steps.", "",
             "| round | plain step | with callback | ratio | fixed cost per step | fixed cost ÷ plain step |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {i} | {r['plain_ms']:.1f} ms | {r['callback_ms']:.1f} ms | {r['ratio']:.3f}× | "
              f"{r['fixed_us']:.0f} µs | {100 * r['fixed_fraction_of_step']:.2f} % |"
              for i, r in enumerate(cb["rounds"], 1)]
    return lines + [""]


def _ddp_lines(dd: dict[str, Any], report: dict[str, Any]) -> list[str]:
    st = dd["settings"]
    lines = [f"`Trainer(strategy=\"ddp\", accelerator=\"cpu\", devices=1 or 2)`, RegularizedClassifier on "
             f"mnist_vgg5(width={st['width']}), {st['batch']} examples per process and step, {st['steps']} "
             f"timed steps after {st['warmup']}, {st['threads_per_process']} thread(s) per process. Ideal "
             "ratio on two free cores: 2.", "",
             "| penalty | round | 1 process (examples/s) | 2 processes (examples/s) | ratio |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['penalty']} | {r['round']} | {r['examples_per_second']['1']:.1f} | "
              f"{r['examples_per_second']['2']:.1f} | {r['ratio_2_to_1']:.2f}× |" for r in dd["runs"]]
    return lines + [""]


# (key in report["sections"], heading, body, whether the body is drawn beside an error: step_cost keeps the models
# that finished before one failed)
_MARKDOWN_SECTIONS = [
    ("step_cost", "Training-step cost relative to a plain step", _step_cost_lines, True),
    ("delta_search", "‖f‖²_δ: the default search's value ÷ the exhaustive search's, and its step cost",
     lambda sec, report: [sec["table"], ""], False),
    ("evaluation", "Evaluation: `evaluate_robustness` over 8 ε vs torchattacks AutoAttack once per ε",
     _evaluation_lines, False),
    ("callback", "Lightning callback overhead (every penalty at weight 0)", _callback_lines, False),
    ("ddp", "DDP on CPU (gloo): 2 processes vs 1", _ddp_lines, False),
]


def render_markdown(report: dict[str, Any]) -> str:
    """The human summary of a results JSON."""
    m = report["machine"]
    lines = [f"# Benchmarks — {report['tag']}", "",
             f"Machine: {m['cpu']} ({m['arch']}, {m['cores']} cores visible"
             + (f", GPU {m['gpu']}" if "gpu" in m else ", no GPU") + f"), {m['torch_threads']} torch thread(s), "
             f"torch {m['torch']}, Python {m['python']}. Load average at start {m.get('load_average', '?')}, at end "
             f"{report.get('load_average_end', '?')}.",
             f"Command: `{report['command']}` — git {report['git_commit']}, {report['started']} → "
             f"{report.get('finished', 'unfinished')}" + ("" if report.get("complete") else " (**incomplete**)") + ".",
             "", NOISE_NOTE, ""]
    if report.get("quick"):
        lines += ["**Quick mode**: tiny models and batches, a check that the pipeline runs — not a measurement.", ""]
    sections = report["sections"]
    for key, title, body, partial in _MARKDOWN_SECTIONS:
        if key not in sections:
            continue
        sec = sections[key]
        lines += [f"## {title}", ""]
        if "error" in sec:
            lines += [f"Failed: `{sec['error']}`", ""]
        if partial or "error" not in sec:
            lines += body(sec, report)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- schema

def _need(problems: list[str], where: str, obj: Any, key: str, kind: type | tuple[type, ...]) -> Any:
    if not isinstance(obj, dict) or key not in obj:
        problems.append(f"{where}: missing {key!r}")
        return None
    value = obj[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind in (int, float, (int, float)):
        problems.append(f"{where}.{key}: {type(value).__name__} is not {kind}")
        return None
    return value


def validate(report: dict[str, Any]) -> list[str]:
    """Problems with a results JSON's structure (an empty list when it follows schema 1)."""
    p: list[str] = []
    num = (int, float)
    if _need(p, "report", report, "schema", int) != SCHEMA_VERSION:
        p.append(f"report.schema is not {SCHEMA_VERSION}")
    for key, kind in (("tag", str), ("quick", bool), ("command", str), ("git_commit", str), ("complete", bool),
                      ("rounds", int), ("notes", list)):
        _need(p, "report", report, key, kind)
    machine = _need(p, "report", report, "machine", dict) or {}
    for key, kind in (("cpu", str), ("arch", str), ("cores", int), ("torch_threads", int), ("torch", str)):
        _need(p, "machine", machine, key, kind)
    rounds = report.get("rounds")
    sections = _need(p, "report", report, "sections", dict) or {}
    for name, sec in sections.items():
        if name not in SECTIONS:
            p.append(f"sections: unknown section {name!r}")
        if "error" in sec:
            p.append(f"sections.{name} failed: {sec['error']}")
            continue
        _need(p, f"sections.{name}", sec, "wall_seconds", num)
    for model, res in (sections.get("step_cost") or {}).get("models", {}).items():
        where = f"step_cost.{model}"
        for key, kind in (("batch", int), ("data", str), ("rows", list), ("description", str)):
            _need(p, where, res, key, kind)
        for row in res.get("rows", []):
            w = f"{where}[{row.get('label')}]"
            if "error" in row:
                p.append(f"{w} failed: {row['error']}")
                continue
            rs = _need(p, w, row, "rounds", list) or []
            if len(rs) != rounds:
                p.append(f"{w}: {len(rs)} rounds, expected {rounds}")
            for r in rs:
                for key in ("time_ratio", "plain_seconds", "plugin_seconds"):
                    _need(p, w, r, key, num)
            passes = _need(p, w, row, "passes", dict) or {}
            for key in ("forward", "backward"):
                _need(p, f"{w}.passes", passes, key, num)
    ev = sections.get("evaluation")
    if ev and "error" not in ev:
        summary = _need(p, "evaluation", ev, "summary", dict) or {}
        _need(p, "evaluation", ev, "report", dict)
        if len(_need(p, "evaluation.summary", summary, "per_epsilon", list) or []) != 8:
            p.append("evaluation.summary.per_epsilon: expected the 8 ε of the sweep")
        for r in _need(p, "evaluation.summary", summary, "rounds", list) or []:
            _need(p, "evaluation.summary.rounds", r.get("descending"), "autoattack_time_ratio", num)
    cb = sections.get("callback")
    if cb and "error" not in cb:
        for r in _need(p, "callback", cb, "rounds", list) or []:
            for key in ("plain_ms", "callback_ms", "ratio", "fixed_us"):
                _need(p, "callback.rounds", r, key, num)
    dd = sections.get("ddp")
    if dd and "error" not in dd:
        for r in _need(p, "ddp", dd, "runs", list) or []:
            _need(p, "ddp.runs", r, "ratio_2_to_1", num)
            eps = _need(p, "ddp.runs", r, "examples_per_second", dict) or {}
            for devices in ("1", "2"):
                _need(p, "ddp.runs.examples_per_second", eps, devices, num)
    return p


# ----------------------------------------------------------------------------- driver

def _run_provenance(report: dict[str, Any]) -> dict[str, Any]:
    """A results file's run-wide provenance, as a section's own ``measured``: what a section measured before
    sections carried their own keeps when a ``--keep`` run rewrites the file's top-level command and commit."""
    machine = report.get("machine", {})
    out = {"git_commit": report.get("git_commit"), "command": report.get("command"),
           "finished": report.get("finished"), "threads": machine.get("torch_threads", 1),
           "load_average": report.get("load_average_end") or machine.get("load_average")}
    return {**out, "defaults": report["defaults"]} if "defaults" in report else out


def run(opts: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the selected sections, rewriting the JSON and Markdown after each; returns the report."""
    torch.set_num_threads(opts.threads)
    info = machine_info(opts.device)
    tag = opts.tag or machine_tag(info) + ("-quick" if opts.quick else "")
    out_dir = Path(opts.out)
    report: dict[str, Any] = {"schema": SCHEMA_VERSION, "tag": tag, "quick": bool(opts.quick), "machine": info,
                              "command": opts.command, "git_commit": git_commit(), "rounds": opts.rounds,
                              "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "complete": False, "notes": [NOISE_NOTE],
                              "sections": {}}
    previous = out_dir / f"{tag}.json"
    if opts.keep and previous.is_file():   # the sections this run does not measure stay as they were measured
        old = json.loads(previous.read_text())
        kept = {name: sec if "measured" in sec else {**sec, "measured": _run_provenance(old)}
                for name, sec in old["sections"].items()}
        report["sections"] = {name: sec for name, sec in kept.items() if name not in opts.sections}
        opts.kept = kept

    def save() -> None:
        write_json(out_dir / f"{tag}.json", report)
        write_atomic(out_dir / f"{tag}.md", render_markdown(report))

    for name in opts.sections:
        start = time.perf_counter()
        try:
            report["sections"][name] = RUNNERS[name](opts, log)
        except Exception as exc:  # noqa: BLE001 - keep the other sections
            report["sections"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        report["sections"][name]["wall_seconds"] = time.perf_counter() - start
        report["sections"][name]["measured"] = {  # each section's own provenance (--keep mixes runs)
            "git_commit": report["git_commit"], "command": opts.command, "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "threads": opts.threads, "load_average": [round(v, 2) for v in os.getloadavg()],
            "defaults": library_defaults()}
        log(f"{name}: done in {report['sections'][name]['wall_seconds']:.0f} s")
        save()
    report["complete"] = True
    report["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    try:
        report["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    save()
    return report


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a pipeline check, not a measurement")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {SECTIONS}")
    parser.add_argument("--models", default=",".join(step_cost.MODELS), help="models of the step_cost section")
    parser.add_argument("--steps", type=int, default=3, help="timed step pairs per round in step_cost")
    parser.add_argument("--rounds", type=int, default=2, help="repetitions of every measurement in one process")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes of the delta_search section")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (step_cost and evaluation)")
    parser.add_argument("--data-dir", default=os.environ.get("RKHSREG_DATA") or None,
                        help="data root with MNIST/raw and cifar10_jpeg (default: $RKHSREG_DATA)")
    parser.add_argument("--out", default=str(HERE / "results"), help="folder of <tag>.json and <tag>.md")
    parser.add_argument("--tag", default="", help="file name tag (default: from the machine, '-quick' added)")
    parser.add_argument("--render", default="", help="only rewrite the Markdown next to this results JSON")
    parser.add_argument("--keep", action="store_true",
                        help="keep the sections of the existing <tag>.json that this run does not measure")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"--sections: unknown {unknown}; choose from {', '.join(SECTIONS)}")
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in args.models if m not in step_cost.MODELS]
    if unknown:
        parser.error(f"--models: unknown {unknown}; choose from {', '.join(step_cost.MODELS)}")
    for name in ("steps", "rounds", "threads", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)} is out of range; pass an int >= 1")
    args.command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m benchmarks`` and ``python benchmarks/run_all.py``."""
    opts = parse_args(argv)
    if opts.render:
        source = Path(opts.render)
        write_atomic(source.with_suffix(".md"), render_markdown(json.loads(source.read_text())))
        print(f"wrote {source.with_suffix('.md')}")
        return 0
    report = run(opts, log=lambda s: print(s, flush=True))
    failed = [name for name, sec in report["sections"].items() if "error" in sec]
    print(f"wrote {Path(opts.out) / report['tag']}.json and .md" + (f"; failed sections: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
