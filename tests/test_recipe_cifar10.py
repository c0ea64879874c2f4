"""The CIFAR-10 robustness recipe: configs, cells, the resumable runner and its summary, on a tiny ImageFolder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from recipes._common.results import read_runs
from tests._cifar10_helpers import make_imagefolder
from tests._recipe_helpers import read_rows

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "cifar10_robustness" / "run.py"


@pytest.fixture(scope="module")
def run_module():
    spec = importlib.util.spec_from_file_location("cifar10_robustness_run", RECIPE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_configs_resolve_to_the_papers_settings(run_module):
    exp = run_module.load_experiment()
    assert exp["eps_test"] == [0.1, 0.5, 1.0, 1.5]
    assert list(exp["rows"]) == ["clean", "pgd_l2", "delta", "grad_norm", "grad_l2"]
    for profile in ("gpu", "cpu-smoke"):
        for row in exp["rows"].values():
            assert row["strengths"][profile], f"{row['name']} has no strengths for {profile}"
    cfg = run_module.resolve(exp, "gpu", "delta", 0.5, True)
    assert cfg["penalties"] == {"adversarial_perturbation": {"weight": 1.0, "steps": 5, "epsilon": 0.5}}
    assert cfg["constraints"]["spectral_norm_projection"]["radius"] == 0.8
    assert cfg["model"] == {"arch": "vgg11", "width": 64} and cfg["data"]["train_examples"] is None
    clean = run_module.resolve(exp, "gpu", "clean", None, False)
    assert clean["penalties"] == {} and clean["constraints"] == {}
    weights = run_module.resolve(exp, "cpu-smoke", "grad_norm", 0.1, False)["penalties"]
    assert weights == {"gradient_norm": {"weight": 0.1}}
    hashes = {run_module.config_hash(run_module.resolve(exp, "gpu", "pgd_l2", s, sn))
              for s in (0.1, 0.5) for sn in (False, True)}
    assert len(hashes) == 4
    workers = run_module.resolve(exp, "gpu", "clean", None, False, {"data.num_workers": 0})
    assert run_module.config_hash(workers) == run_module.config_hash(clean)  # workers do not change results
    grid = run_module.cells(exp, "cpu-smoke", ["clean", "delta"], (False, True), None)
    assert grid == [("clean", None, False), ("clean", None, True), ("delta", 0.25, False), ("delta", 1.0, False),
                    ("delta", 0.25, True), ("delta", 1.0, True)]


def test_runner_end_to_end_resumes_and_summarises(run_module, tmp_path, capsys):
    data = make_imagefolder(tmp_path / "data" / "cifar10_jpeg", train_per_class=2, test_per_class=1).parent
    results = tmp_path / "results"
    argv = ["--profile", "cpu-smoke", "--rows", "clean,pgd_l2", "--sn", "off", "--max-strengths", "1",
            "--epochs", "1", "--train-examples", "16", "--test-examples", "10", "--eval-examples", "4",
            "--eval-steps", "2", "--width", "4", "--data-dir", str(data), "--results", str(results)]
    assert run_module.main(argv) == 0
    runs = read_rows(results / "runs.csv")
    assert [(r["row"], r["sn"], r["strength"]) for r in runs] == [("clean", "0", ""), ("pgd_l2", "0", "0.25")]
    for r in runs:
        robust = json.loads(r["robust_acc"])
        assert json.loads(r["eps_test"]) == [0.1, 0.5, 1.0, 1.5] and len(robust) == 4
        assert all(0 <= a <= float(r["eval_clean_acc"]) for a in robust)
        assert robust == sorted(robust, reverse=True)  # more budget never helps the model
        assert 0 <= float(r["standard_acc"]) <= 1 and r["epochs"] == "1" and r["eval_examples"] == "4"
        assert json.loads(r["config"])["model"]["width"] == 4
    assert (results / "runs").is_dir() and len(list((results / "runs").glob("*.json"))) == 2
    png = (results / "tradeoff.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    table = (results / "table.md").read_text()
    assert "| clean | no | — |" in table and "0.244 (0.907)" in table  # ours next to the paper's clean model

    # resumable: a torn last line (killed writer) is ignored, finished cells are skipped
    with open(results / "runs.csv", "a") as handle:
        handle.write("pgd_l2,1,0.25,0,0.5")
    capsys.readouterr()
    assert run_module.main(argv) == 0
    out = capsys.readouterr().out
    assert out.count("[skip]") == 2 and "[run ]" not in out
    assert len(read_runs(results / "runs.csv")) == 2        # the torn line is not a finished run
    assert run_module.main(["--profile", "cpu-smoke", "--summary", "--results", str(results)]) == 0


def test_runner_refuses_bad_options(run_module, tmp_path):
    with pytest.raises(SystemExit, match="unknown"):
        run_module.main(["--rows", "clean,nope", "--results", str(tmp_path)])
    with pytest.raises(SystemExit, match="--profile='tpu'"):
        run_module.main(["--profile", "tpu", "--results", str(tmp_path)])
    with pytest.raises(SystemExit, match="--epochs=0 is out of range"):
        run_module.main(["--epochs", "0", "--results", str(tmp_path)])
