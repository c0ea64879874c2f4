"""The house's layers: functional ← penalties/constraints/evaluation/data ← lightning ← cli/recipes.

Checked on the source (AST), so a new upward import or a private import from a recipe fails here, and by
importing the core with Lightning blocked, as a plain-PyTorch user without Lightning would.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ("functional", "penalties", "constraints", "evaluation", "data")
ABOVE_CORE = ("rkhsreg.lightning", "rkhsreg.cli", "rkhsreg.training", "pytorch_lightning", "lightning")


def _imports(path: Path) -> list[str]:
    """Absolute module names imported by ``path`` (``from a import b`` gives ``a`` and ``a.b``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
    return names


def _package_files() -> list[tuple[str, Path]]:
    return [("/".join(p.relative_to(ROOT / "rkhsreg").parts), p) for p in sorted((ROOT / "rkhsreg").rglob("*.py"))]


def test_core_layers_import_nothing_above_them():
    upward = [f"{rel} imports {name}" for rel, path in _package_files() if rel.split("/")[0] in CORE
              for name in _imports(path) if name.startswith(ABOVE_CORE)]
    assert upward == []


def test_functional_is_pure_torch():
    allowed = ("rkhsreg.functional", "rkhsreg._checks", "rkhsreg._errors", "rkhsreg._params")
    found = [f"{rel} imports {name}" for rel, path in _package_files() if rel.startswith("functional/")
             for name in _imports(path) if name.startswith("rkhsreg") and not name.startswith(allowed)]
    assert found == []


def test_no_import_cycles_between_modules():
    modules = {"rkhsreg." + rel[:-3].replace("/", ".").removesuffix(".__init__"): path
               for rel, path in _package_files()}
    graph = {m: {n for n in _imports(p) if n in modules and n != m} for m, p in modules.items()}
    for package in [m for m, p in modules.items() if p.name == "__init__.py"]:  # a package's own re-exports
        graph[package] = {n for n in graph[package] if not n.startswith(package + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail
                            else f"import cycle through {nxt}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("folder", ["recipes", "plugins"])
def test_recipes_and_plugins_use_the_public_api_only(folder):
    private = [f"{p.relative_to(ROOT)} imports {name}" for p in sorted((ROOT / folder).rglob("*.py"))
               for name in _imports(p) if name.startswith("rkhsreg")
               and any(part.startswith("_") for part in name.split(".")[1:])]
    assert private == []


def test_the_core_works_with_lightning_uninstalled():
    code = """
import sys
for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
    sys.modules[name] = None  # import fails as if not installed
import torch
import rkhsreg, rkhsreg.penalties, rkhsreg.constraints, rkhsreg.evaluation, rkhsreg.data, rkhsreg.plugin_api
from rkhsreg.evaluation import AttackSettings, evaluate_robustness
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3))
x, y = torch.rand(6, 1, 4, 4), torch.tensor([0, 1, 2, 0, 1, 2])
value = rkhsreg.create_penalty("gradient_norm")(model, x, y)
value.backward()
rkhsreg.create_constraint("spectral_norm_projection", radius=0.5)(model)
result = evaluate_robustness(model.eval(), (x, y), epsilons=[0.1], attack=AttackSettings(steps=2), sanity=False)
print("ok", float(value) > 0, len(result.robust_accuracy))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok True 1"
