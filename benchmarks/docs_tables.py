"""Every measured table and cost line of the docs, generated from the benchmark results (JSON), never retyped.

A generated block in a page sits between two HTML comments (invisible on the rendered site)::

    <!-- generated: delta_search -->
    ...what :data:`BLOCKS` ``["delta_search"]`` renders from the results...
    <!-- end generated: delta_search -->

``python -m benchmarks.docs_tables`` rewrites every block from ``benchmarks/results/`` (``make bench`` runs it after
measuring); ``--check`` lists the blocks that differ from their results and the results measured with defaults
other than the library's current ones, and exits 1 if there is any (``tests/test_docs.py`` runs the same checks).
Each block says which command measured it, at which commit, on which machine and under which load.

Usage::

    python -m benchmarks.docs_tables [--check]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import library_defaults, write_atomic  # noqa: E402
from rkhsreg.penalties.adversarial_perturbation import DEFAULT_BUDGET  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MAIN = "cpu-x86_64-2cores.json"   # python -m benchmarks: step_cost, delta_search, evaluation, callback, ddp

__all__ = ["BLOCKS", "Block", "render", "stale_blocks", "stale_defaults", "write_all", "main"]


def _load(name: str) -> dict[str, Any]:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _section(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    report = _load(MAIN)
    return report["sections"][name], report


def _x(values: list[float]) -> str:
    return " / ".join(f"{v:.2f}×" for v in values)


def _provenance(measured: dict[str, Any] | None, machine: dict[str, Any], fallback: str) -> str:
    """One line: the command, the commit, the machine, its load."""
    cpu = f"{machine.get('cores', '?')}-core {machine.get('arch', '')} {machine.get('cpu', '')}".strip()
    if not measured:
        return (f"<small>Measured by `{fallback}` on a {cpu}, {machine.get('torch_threads', 1)} torch thread(s), "
                f"load average {machine.get('load_average', ['?'])[0]} at the start.</small>")
    load = measured.get("load_average", ["?"])
    return (f"<small>Measured by `{measured['command']}` at commit {measured['git_commit']} (finished "
            f"{measured['finished']}) on a {cpu}, {measured.get('threads', 1)} torch thread(s); load average "
            f"{load[0]} when it finished (2 cores: above 2, other jobs shared them).</small>")


# ----------------------------------------------------------------------------- blocks

def step_cost(model: str) -> Callable[[], str]:
    def render_model() -> str:
        from benchmarks.step_cost import format_rows
        sec, report = _section("step_cost")
        res = sec["models"][model]
        plain = next(r for r in res["rows"] if r["kind"] == "plain")
        seconds = ", ".join(f"{r['plain_seconds']:.3f} s" for r in plain["rounds"])
        lr = res.get("timed_lr", 0.01)   # results measured before the timed steps were at lr 0
        measured = {**(sec.get("measured") or {}), **res.get("measured", {})}
        return "\n".join([f"Batch {res['batch']}, {res['data']}; plain step {seconds} (two rounds); timed steps "
                          f"at lr {lr:g}.", "", format_rows(res["rows"]), "",
                          _provenance(measured, report["machine"], report["command"])])
    return render_model


def delta_search() -> str:
    sec, report = _section("delta_search")
    return "\n".join([sec["table"], "", _provenance(sec.get("measured"), report["machine"], report["command"])])


def readme_loop() -> str:
    sec, report = _section("delta_search")
    return "\n".join([sec["readme_loop"], "", _provenance(sec.get("measured"), report["machine"], report["command"])])


def _delta_rows(model: str) -> list[dict[str, Any]]:
    sec, _ = _section("delta_search")
    return [r for r in sec["rows"] if r["model"] == model and r["state"] == "init"]


def delta_cost_line() -> str:
    """The README's and the concepts page's one sentence on what the default ‖f‖²_δ costs and finds."""
    parts = []
    for model, name in (("resnet18", "a timm ResNet-18 (batch 64)"), ("mnist_vgg5_64", "the paper's MNIST net "
                                                                     "(batch 128)")):
        rows = _delta_rows(model)
        steps = [v for r in rows for v in r["auto_step_ratio"]]
        ratios = [r["value_ratio"] for r in rows]
        eps = ", ".join(f"{r['epsilon']:g}" for r in rows)
        parts.append(f"{min(steps):.1f}–{max(steps):.1f}× a plain step on {name} at ε ∈ {{{eps}}}, finding "
                     f"{min(ratios):.2f}–{max(ratios):.2f} of the exhaustive search's value")
    budget = _section("delta_search")[0]["rows"][0]["budget"]
    return (f"With its default budget ({budget:g} passes a call, its checks amortised in) the ‖f‖²_δ search costs "
            f"{parts[0]}, and {parts[1]} (one CPU thread; [Benchmarks](docs/benchmarks.md#the-default-f2_-search-"
            "its-cost-and-the-value-it-finds)).")


#: the concepts page's cost table: (step_cost row label, shown as, bounds, defaults shown, the paper's code)
CONCEPT_ROWS = [
    ("‖f‖²_δ per class (default search, within its budget)", "`adversarial_perturbation`", "lower, ‖f‖²_δ",
     ("weight", "epsilon", "steps", "norm", "mode", "candidates", "budget", "classes"), "~70×"),
    ("‖f‖²_δ per class, exhaustive (candidates='all')", "… `candidates=\"all\"` (exhaustive)", "", (), ""),
    ("‖f‖²_δ joint", "… `mode=\"joint\"`", "", (), ""),
    ("‖f‖²_τ random deformations (paper: 32 × 31)", "`adversarial_deformation`", "lower, ‖f‖²_τ",
     ("weight", "max_displacement", "max_gradient", "search", "num_examples", "num_deformations"), "4.6×"),
    ("‖f‖²_τ adversarial deformations", "… `search=\"adversarial\"`", "", (), "–"),
    ("‖∇f‖² per class", "`gradient_norm`", "lower, ‖∇f‖²", ("weight", "mode", "classes"), "11.7×"),
    ("‖D_τ f‖² (32 × 30 tangents)", "`tangent_propagation`", "lower, ‖D_τ f‖²",
     ("weight", "num_examples", "num_tangents", "max_displacement"), "3.55×"),
    ("grad-ℓ2", "`loss_gradient`", "baseline (grad-ℓ2)", ("weight", "p"), "3.7×"),
    ("PGD-ℓ2 adversarial training (5 steps)", "`adversarial_training`", "baseline (PGD-ℓ2)",
     ("weight", "epsilon", "steps", "norm", "replace"), "6.3×"),
    ("SN penalty (2 power iterations)", "`spectral_norm`", "upper, λ Σ σ_l²", ("weight", "method", "iterations",
                                                                                  "exact"), "1.0×"),
    ("SN penalty, exact SVD", "… `exact=True` (SVD)", "", (), "2.0×"),
    ("SN projection, reshaped σ, scale (default)", "`spectral_norm_projection` (constraint)", "upper, σ_l ≤ radius",
     ("radius", "method", "projection", "kappa"), ""),
    ("SN projection, reshaped σ, clip (paper)", "… `projection=\"clip\"` (the paper's exact projection)", "", (),
     "1.2–1.65×"),
    ("SN projection, conv operator norm", "… `method=\"operator\"`", "", (), ""),
]
_PLUGIN_OF = {"`adversarial_perturbation`": "adversarial_perturbation", "`adversarial_deformation`":
              "adversarial_deformation", "`gradient_norm`": "gradient_norm", "`tangent_propagation`":
              "tangent_propagation", "`loss_gradient`": "loss_gradient", "`adversarial_training`": "adversarial_training",
              "`spectral_norm`": "spectral_norm", "`spectral_norm_projection` (constraint)": "spectral_norm_projection"}


def concepts_costs() -> str:
    sec, report = _section("step_cost")
    rows = {r["label"]: r for r in sec["models"]["mnist_vgg5"]["rows"]}
    defaults = (sec.get("measured") or {}).get("defaults") or report.get("defaults") or library_defaults()
    lines = ["| plugin | bounds | main arguments (defaults) | passes fwd / bwd | step time | paper's code |",
             "|---|---|---|---|---|---|"]
    for label, shown, bounds, names, paper in CONCEPT_ROWS:
        r = rows[label]
        args = ""
        if names:
            plugin = _PLUGIN_OF[shown]
            group = "constraints" if "constraint" in shown else "penalties"
            values = defaults[group][plugin]
            args = ", ".join(f"`{n}={json.dumps(values[n]) if isinstance(values[n], str) else values[n]}`"
                             + (f" ({DEFAULT_BUDGET:g} passes without a `target`)"
                                if (plugin, n, values[n]) == ("adversarial_perturbation", "budget", None) else "")
                             for n in names)
        elif r.get("kwargs"):
            args = ", ".join(f"`{k}={json.dumps(v) if isinstance(v, str) else v}`" for k, v in r["kwargs"].items()
                             if k not in ("epsilon", "radius"))
        p = r["passes"]
        time = _x([x["time_ratio"] for x in r["rounds"]])
        if "amortised_ratio" in r:
            time += f" (with its checks: {_x(r['amortised_ratio'])}; plan {tuple(r['plan'])}, value ratio " \
                    f"{r['value_ratio']:.3f})"
        lines.append(f"| {shown} | {bounds} | {args} | {p['forward']:.2f} / {p['backward']:.2f} | {time} | {paper} |")
    measured = {**(sec.get("measured") or {}), **sec["models"]["mnist_vgg5"].get("measured", {})}
    return "\n".join(lines + ["", _provenance(measured, report["machine"], report["command"])])


def evaluation() -> str:
    from benchmarks.run_all import _evaluation_lines
    sec, report = _section("evaluation")
    return "\n".join(_evaluation_lines(sec, report)).rstrip() + "\n\n" + _provenance(
        sec.get("measured"), report["machine"], report["command"])


def callback() -> str:
    from benchmarks.run_all import _callback_lines
    sec, report = _section("callback")
    return "\n".join(_callback_lines(sec, report)).rstrip() + "\n\n" + _provenance(
        sec.get("measured"), report["machine"], report["command"])


def ddp() -> str:
    from benchmarks.run_all import _ddp_lines
    sec, report = _section("ddp")
    return "\n".join(_ddp_lines(sec, report)).rstrip() + "\n\n" + _provenance(
        sec.get("measured"), report["machine"], report["command"])


def standalone(name: str, command: str) -> Callable[[], str]:
    """A table a stand-alone script wrote into ``benchmarks/results/<name>-cpu-x86_64-2cores.json``."""
    def render_table() -> str:
        data = _load(f"{name}-cpu-x86_64-2cores.json")
        return "\n".join([data["table"], "", _provenance(None, data["machine"], command)])
    return render_table


@dataclass(frozen=True)
class Block:
    """A generated block: the page it lives in, what renders it, and the results it reads with the plugins whose
    defaults those results depend on (checked against the library's current defaults)."""

    page: str
    render: Callable[[], str]
    source: str          # "<file>" or "<file>#<section>"
    plugins: tuple[str, ...] = ()


_DELTA = ("adversarial_perturbation",)
_README_LOOP = ("adversarial_perturbation", "adversarial_deformation", "spectral_norm_projection")
_ALL = ("adversarial_perturbation", "adversarial_deformation", "gradient_norm", "tangent_propagation",
        "loss_gradient", "adversarial_training", "spectral_norm", "spectral_norm_projection")

BLOCKS: dict[str, Block] = {
    "step_cost_mnist": Block("docs/benchmarks.md", step_cost("mnist_vgg5"), f"{MAIN}#step_cost", _ALL),
    "step_cost_resnet18": Block("docs/benchmarks.md", step_cost("resnet18"), f"{MAIN}#step_cost", _ALL),
    "delta_search": Block("docs/benchmarks.md", delta_search, f"{MAIN}#delta_search", _DELTA),
    "readme_loop": Block("docs/benchmarks.md", readme_loop, f"{MAIN}#delta_search", _README_LOOP),
    "evaluation": Block("docs/benchmarks.md", evaluation, f"{MAIN}#evaluation"),
    "callback": Block("docs/benchmarks.md", callback, f"{MAIN}#callback"),
    "ddp": Block("docs/benchmarks.md", ddp, f"{MAIN}#ddp"),
    "concepts_costs": Block("docs/concepts.md", concepts_costs, f"{MAIN}#step_cost", _ALL),
    "readme_delta_cost": Block("README.md", delta_cost_line, f"{MAIN}#delta_search", _DELTA),
    "concepts_delta_cost": Block("docs/concepts.md", lambda: delta_cost_line().replace("docs/benchmarks.md",
                                                                                       "benchmarks.md"),
                                 f"{MAIN}#delta_search", _DELTA),
    "bn_mode": Block("docs/differences.md", standalone("bn_mode", "python benchmarks/bn_mode.py --data-dir "
                                                                   "\"$RKHSREG_DATA\" --steps 40 --threads 1 "
                                                                   "--json benchmarks/results/bn_mode-cpu-x86_64-2cores.json"),
                     "bn_mode-cpu-x86_64-2cores.json", _DELTA),
    "autoattack_seeds": Block("docs/evaluation.md", standalone("autoattack_seeds", "python "
                                                               "benchmarks/autoattack_seeds.py"),
                              "autoattack_seeds-cpu-x86_64-2cores.json"),
}

_PATTERN = "<!-- generated: {name} -->\n(.*?)<!-- end generated: {name} -->"


def render(name: str) -> str:
    """The text block ``name`` should hold now."""
    return BLOCKS[name].render().rstrip() + "\n"


def _current(page_text: str, name: str) -> str | None:
    match = re.search(_PATTERN.format(name=re.escape(name)), page_text, flags=re.S)
    return None if match is None else match.group(1)


def stale_blocks() -> list[str]:
    """The blocks whose page text differs from what their results render (or that a page lacks)."""
    problems = []
    for name, block in BLOCKS.items():
        current = _current((ROOT / block.page).read_text(encoding="utf-8"), name)
        try:
            expected = render(name)
        except (KeyError, OSError) as exc:   # results missing: a section never run, a file absent
            problems.append(f"{block.page}: block {name!r} cannot be rendered from {block.source} "
                            f"({type(exc).__name__}: {exc}); run its benchmark")
            continue
        if current is None:
            problems.append(f"{block.page}: no generated block {name!r}")
        elif current != expected:
            problems.append(f"{block.page}: block {name!r} differs from {block.source} "
                            "(python -m benchmarks.docs_tables rewrites it)")
    return problems


def _measured_defaults(source: str) -> dict[str, Any] | None:
    file, _, section = source.partition("#")
    data = _load(file)
    if section:
        measured = data["sections"].get(section, {}).get("measured") or {}
        return measured.get("defaults")
    return data.get("defaults")


def stale_defaults() -> list[str]:
    """The blocks whose results were measured with defaults (of the plugins they depend on) other than today's."""
    now = library_defaults()
    problems = []
    for name, block in BLOCKS.items():
        if not block.plugins:
            continue
        then = _measured_defaults(block.source)
        if then is None:
            problems.append(f"{name}: {block.source} does not record the defaults it was measured with; rerun it")
            continue
        for plugin in block.plugins:
            group = "constraints" if plugin in now["constraints"] else "penalties"
            old, new = then.get(group, {}).get(plugin), now[group][plugin]
            if old != new:
                changed = sorted(k for k in set(old or {}) | set(new) if (old or {}).get(k, "∅") != new.get(k, "∅"))
                problems.append(f"{name}: {block.source} was measured with other defaults of {plugin!r} "
                                f"({', '.join(changed)}); rerun it")
    return problems


def write_all() -> list[str]:
    """Rewrite every block from its results; returns the pages changed."""
    changed = []
    for page in sorted({b.page for b in BLOCKS.values()}):
        path = ROOT / page
        text = original = path.read_text(encoding="utf-8")
        for name, block in BLOCKS.items():
            if block.page != page:
                continue
            if _current(text, name) is None:
                raise SystemExit(f"{page}: no generated block {name!r}; add its two comments where it belongs")
            text = re.sub(_PATTERN.format(name=re.escape(name)),
                          lambda m, name=name: f"<!-- generated: {name} -->\n{render(name)}"
                                               f"<!-- end generated: {name} -->", text, flags=re.S)
        if text != original:
            write_atomic(path, text)
            changed.append(page)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list stale blocks and results; exit 1 if any")
    args = parser.parse_args(argv)
    if args.check:
        problems = stale_blocks() + stale_defaults()
        print("\n".join(problems) or "every generated block matches its results, measured with today's defaults")
        return 1 if problems else 0
    changed = write_all()
    print("rewrote " + (", ".join(changed) if changed else "nothing (every block already matched)"))
    stale = stale_defaults()
    if stale:
        print("results measured with other defaults than today's:\n" + "\n".join(stale))
    return 0


if __name__ == "__main__":
    sys.exit(main())
