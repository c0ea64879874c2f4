"""The benchmark suite: its helpers measure what they claim, and ``--quick`` runs end to end with a valid JSON.

No timing is asserted anywhere (the numbers depend on the machine and its load); only structure,
pass counts, memory of a known allocation, and values against closed forms or a reference.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

import rkhsreg
from benchmarks import run_all
from benchmarks._reference_delta import reference_delta_penalty
from benchmarks._timing import CountingModel, MemoryProbe, compare_steps, machine_info, machine_tag
from rkhsreg.models import mnist_vgg5

DATA = os.environ.get("RKHSREG_DATA") or str(Path(__file__).resolve().parents[2] / "shared" / "data")


def test_reference_delta_equals_the_exhaustive_search_and_counts_its_passes():
    torch.manual_seed(0)
    model = mnist_vgg5(width=4)
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(12, 1, 28, 28, generator=g), torch.randint(0, 10, (12,), generator=g)
    value, counted = reference_delta_penalty(model, x, epsilon=1.0, steps=5)
    library = rkhsreg.create_penalty("adversarial_perturbation", epsilon=1.0, candidates="all").estimate(model, x, y)
    torch.testing.assert_close(value, library, rtol=1e-5, atol=0)
    k, n, steps = 10, 12, 5  # clean pass, K PGDs of `steps` steps, K gain passes, 2K final rows
    assert counted.forward_passes == pytest.approx(1 + k * steps + k + 2 * k / n)
    assert counted.backward_passes == pytest.approx(k * steps + 2 * k / n)
    value.backward()  # differentiable w.r.t. the parameters
    assert all(p.grad is not None for p in model.parameters())


def test_reference_delta_survives_zero_gradients():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[1].weight.zero_()  # f is constant: every input gradient is 0 (the reference code's NaN case)
    value, _ = reference_delta_penalty(model, torch.rand(5, 1, 2, 2))
    assert value.item() == 0.0


def test_memory_probe_sees_a_known_allocation():
    probe = MemoryProbe("cpu")
    if not probe.available:
        pytest.skip("no peak-memory measurement on this platform")
    megabytes = probe.measure(lambda: torch.ones(16 * 2 ** 20).sum())  # 64 MiB of float32, every page written
    assert 60 <= megabytes <= 100
    assert probe.measure(lambda: None) < 8


def test_compare_steps_interleaves_and_reports_every_round():
    calls: list[str] = []
    result = compare_steps(lambda: calls.append("p"), lambda: calls.append("q"), steps=3, rounds=2, warmup=1,
                           memory=None)
    assert calls == (["p", "q"] + ["p", "q"] * 3) * 2  # warm-up pair, then alternating timed pairs
    assert len(result) == 2 and all(r["memory_ratio"] is None and r["time_ratio"] > 0 for r in result)


def test_counting_model_counts_rows():
    counted = CountingModel(torch.nn.Identity(), batch=8)
    counted(torch.zeros(8, 2))
    counted(torch.zeros(2, 2))
    counted.add_backward(4)
    assert (counted.forward_passes, counted.backward_passes) == (1.25, 0.5)


def test_machine_tag_is_a_file_name():
    info = machine_info()
    tag = machine_tag(info)
    assert tag.startswith("cpu-") and "/" not in tag and " " not in tag
    assert machine_tag({"gpu": "NVIDIA H100 80GB HBM3", "arch": "x86_64", "cores": 16}) == "cuda-nvidia-h100-80gb-hbm3"


def _check(out: Path, sections: list[str]) -> dict:
    assert sorted(p.name for p in out.iterdir()) == ["cpu-x86_64-test.json", "cpu-x86_64-test.md"]
    report = json.loads(next(out.glob("*.json")).read_text())
    assert run_all.validate(report) == []
    assert report["complete"] and report["quick"] and list(report["sections"]) == sections
    text = next(out.glob("*.md")).read_text()
    assert "shared with other jobs" in text and "Quick mode" in text
    return report


def test_quick_run_in_process_sections(tmp_path):
    """``--quick`` for the in-process sections (step costs on both models, Lightning callback)."""
    out = tmp_path / "results"
    code = run_all.main(["--quick", "--sections", "step_cost,delta_search,callback", "--out", str(out), "--tag",
                         "cpu-x86_64-test",
                         "--data-dir", DATA])
    assert code == 0
    report = _check(out, ["step_cost", "delta_search", "callback"])
    models = report["sections"]["step_cost"]["models"]
    assert set(models) == {"mnist_vgg5", "resnet18"}
    rows = {r["label"]: r for r in models["mnist_vgg5"]["rows"]}
    delta = rows["‖f‖²_δ per class (default search, within its budget)"]
    reference = rows["‖f‖²_δ straightforward: one PGD per class and example"]
    # batch 8, K = 10, 5 steps: the reference's passes follow from its algorithm alone
    assert reference["passes"]["forward"] == pytest.approx(1 + 10 * 6 + 20 / 8)
    assert delta["passes"]["forward"] < reference["passes"]["forward"]
    assert delta["value"] <= reference["value"] * (1 + 1e-5)  # the exhaustive value is the sup the search targets
    assert len(report["sections"]["callback"]["rounds"]) == 2
    (row,) = report["sections"]["delta_search"]["rows"]
    # exact selections of one exhaustive run: ratios never above 1, the exhaustive's own is 1
    assert 0 < row["min_value_ratio"] <= row["value_ratio"] <= 1
    # the default's plan fits its budget, checks amortised in (or, where none does — a batch of 16 here — it is the
    # cheapest, one example per class); the exhaustive search is what a check costs
    assert row["amortised_passes"] <= row["budget"] or row["chosen"] == "1"
    assert row["passes"] < row["exhaustive_passes"]
    assert row["readme_loop"]["step_ratio"] and len(row["readme_loop"]["amortised_step_ratio"]) == 2
    from benchmarks.delta_search import EVALUATION
    assert len(row["exhaustive"]) == EVALUATION and row["step_ratio"] and row["exhaustive_step_ratio"]


@pytest.mark.slow
@pytest.mark.parametrize("section", ["evaluation", "ddp"])
def test_quick_run_subprocess_sections(tmp_path, section):
    """``--quick`` for the sections that start processes (evaluation_cost.py; 1- and 2-process DDP), one round."""
    if section == "evaluation" and not (Path(DATA) / "MNIST" / "raw").is_dir():
        pytest.skip("evaluation_cost.py needs MNIST on disk")
    out = tmp_path / "results"
    code = run_all.main(["--quick", "--sections", section, "--rounds", "1", "--out", str(out), "--tag",
                         "cpu-x86_64-test", "--data-dir", DATA])
    assert code == 0
    report = _check(out, [section])
    if section == "ddp":
        run = report["sections"]["ddp"]["runs"][0]
        assert run["penalty"] == "none" and run["ratio_2_to_1"] > 0
    else:
        assert len(report["sections"]["evaluation"]["report"]["autoattack"]) == 8


def test_bad_options_are_refused(capsys):
    with pytest.raises(SystemExit):
        run_all.parse_args(["--sections", "step_cost,nope"])
    assert "unknown ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_all.parse_args(["--rounds", "0"])
    assert "--rounds=0 is out of range" in capsys.readouterr().err


def test_markdown_names_each_failed_section_and_keeps_finished_step_cost_models():
    report = json.loads((Path(__file__).parents[1] / "benchmarks" / "results" / "cpu-x86_64-2cores.json").read_text())
    for key, sec in report["sections"].items():
        report["sections"][key] = {"error": f"RuntimeError: {key} broke",
                                   **({"models": sec["models"]} if key == "step_cost" else {})}
    text = run_all.render_markdown(report)
    for key in report["sections"]:
        assert f"Failed: `RuntimeError: {key} broke`" in text
    assert "### mnist_vgg5" in text  # the models measured before the failure stay in the summary
    assert "| ε | ours | AutoAttack |" not in text and "| round | plain step |" not in text


def test_keep_gives_each_kept_section_the_provenance_it_was_measured_with(tmp_path, monkeypatch):
    """A ``--keep`` run rewrites the file's top-level command and commit: a section kept from an older file that
    has no ``measured`` of its own takes the older run's, so its docs table still names the run that measured it."""
    results = json.loads((Path(__file__).parents[1] / "benchmarks" / "results" / "cpu-x86_64-2cores.json").read_text())
    callback = {k: v for k, v in results["sections"]["callback"].items() if k != "measured"}
    ddp = {**results["sections"]["ddp"], "measured": {"command": "own"}}
    old = {"schema": run_all.SCHEMA_VERSION, "tag": "t", "machine": {"torch_threads": 1, "load_average": [0.5]},
           "command": "python -m benchmarks --sections callback", "git_commit": "0ld", "finished": "then",
           "sections": {"callback": callback, "ddp": ddp}}
    (tmp_path / "t.json").write_text(json.dumps(old))
    def measured_now(opts, log):
        raise RuntimeError("not measured in a test")   # a failed section is recorded like a measured one

    monkeypatch.setitem(run_all.RUNNERS, "evaluation", measured_now)
    assert run_all.main(["--keep", "--sections", "evaluation", "--out", str(tmp_path), "--tag", "t"]) == 1
    new = json.loads((tmp_path / "t.json").read_text())
    assert new["sections"]["callback"]["measured"]["command"] == "python -m benchmarks --sections callback"
    assert new["sections"]["callback"]["measured"]["git_commit"] == "0ld"
    assert new["sections"]["ddp"]["measured"] == {"command": "own"}
    assert new["sections"]["evaluation"]["measured"]["command"] != old["command"]


def test_delta_search_workers_give_the_rows_one_process_gives():
    """``jobs`` > 1 (spawned workers, each state seeded on its own): the same values and plans, in the table's
    order; every job's seconds reported."""
    if not (Path(DATA) / "MNIST" / "raw").is_dir():
        pytest.skip("delta_search needs MNIST on disk")
    from benchmarks import delta_search

    parallel = delta_search.run(["mnist_vgg5_4", "mnist_vgg5_4"], data_dir=DATA, quick=True, jobs=2, threads=1,
                                log=lambda line: None)
    serial = delta_search.run(["mnist_vgg5_4"], data_dir=DATA, quick=True, jobs=1, threads=1, log=lambda line: None)
    keys = ("model", "epsilon", "chosen", "exhaustive", "value_ratio", "min_value_ratio", "passes")
    assert [[r[k] for k in keys] for r in parallel["rows"]] == [[r[k] for k in keys] for r in serial["rows"]] * 2
    assert parallel["jobs"] == 2 and list(parallel["job_seconds"]) == ["mnist_vgg5_4/0"]
    with pytest.raises(SystemExit, match="--models: 'nope'"):
        delta_search.jobs_of(["nope"], quick=True)


def test_gpu_check_quick_runs_every_part_on_the_cpu(tmp_path):
    """``benchmarks/gpu_check.py --quick``: every penalty in float32 and the mixed precisions (fp16 with a GradScaler,
    on the CPU's autocast), the fp16 input-gradient check, the K input-gradient passes, one JSON."""
    from benchmarks import gpu_check

    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--quick", "--device", "cpu", "--data-dir", DATA, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["step_cost"]
    import rkhsreg
    assert {r["penalty"] for r in rows if r["precision"] == "float32"} == set(rkhsreg.list_penalties())
    assert {r["precision"] for r in rows} == set(gpu_check.PRECISIONS)
    for row in rows:
        assert "error" not in row, row
        assert row["values_finite"] and all(t > 0 for t in row["time_ratio"])
    fp16 = report["fp16_input_gradients"]
    assert fp16["finite"] and fp16["underflow_fraction"] < 0.01 and fp16["norm_relative_error_max"] < 0.05
    assert report["k_gradient_passes"]["same_gradients"]
    assert "autoattack" in report and "defaults" in report
    with pytest.raises(SystemExit):
        gpu_check.main(["--quick", "--rounds", "0"])
