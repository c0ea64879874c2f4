"""recipes/mnist_small_data/plan.py: the plan lists what run.py then trains, its costs and its split over runners."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import yaml

from recipes._common.results import append_line, read_runs
from tests._recipe_helpers import recipe_module
from tests.test_recipe_mnist import DATA, RECIPE

pytestmark = pytest.mark.skipif(DATA is None, reason="MNIST idx files not found (see test_recipe_mnist.py)")


@pytest.fixture(scope="module")
def plan_module():
    with recipe_module("mnist_small_data_plan", RECIPE / "plan.py") as module:
        yield module


def _tiny_table(tmp_path: Path) -> Path:
    """wd with a two-value grid, wd_aug inheriting it, grad_norm on its own (tuned at n=30)."""
    table = yaml.safe_load((RECIPE / "table2.yaml").read_text())
    keep = {r["name"]: r for r in table["rows"]}
    table["tune_n"] = 30
    table["rows"] = [dict(keep["wd"], grid={"model.weight_decay": [0.0, 0.001]}), keep["wd_aug"],
                     dict(keep["grad_norm"], grid={"model.penalties.gradient_norm.weight": [0.01]})]
    for row in table["rows"]:
        row["config"] = str(RECIPE / row["config"])
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(table, allow_unicode=True))
    return path


def test_plan_lists_exactly_what_run_py_trains_and_writes_nothing(tmp_path, capsys, plan_module, monkeypatch):
    monkeypatch.setattr(plan_module, "PUBLISHED", tmp_path / "no_published_runs")  # no rate known anywhere
    table_path, results = _tiny_table(tmp_path), tmp_path / "results"
    common = ["--table", str(table_path), "--results", str(results), "--rows", "wd_aug,wd,grad_norm", "--n", "30",
              "--seeds", "0-1", "--epochs", "1", "--eval-examples", "100"]
    table = plan_module.run.load_table(table_path)
    jobs = plan_module.plan(table, results, ["wd_aug", "wd", "grad_norm"], [30], [0, 1], epochs=1, eval_examples=100)
    assert not results.exists()                               # planning trains nothing and writes nothing
    planned = [(j.kind, j.label) for j in jobs]
    assert planned == [("tune", "wd[weight_decay=0.0]"), ("tune", "wd[weight_decay=0.001]"), ("run", "wd_aug/30/0"),
                       ("copy", "wd/30/0"),                   # the chosen grid point's run is this cell
                       ("tune", "grad_norm[weight=0.01]"), ("copy", "grad_norm/30/0"),
                       ("run", "wd_aug/30/1"), ("run", "wd/30/1"), ("run", "grad_norm/30/1")]
    assert all(j.steps == 1 and not j.known and math.isnan(j.minutes) for j in jobs if j.kind != "copy")

    assert plan_module.run.main(common + ["--data-dir", DATA, "--log-every", "0"]) == 0
    out = capsys.readouterr().out
    trained = [("tune", point) if point else (kind.strip(), f"{cell}/{n}/{seed}")
               for point, kind, cell, n, seed in re.findall(
                   r"\[tune\] (\S+) \(n=|\[(run |copy)\] (\w+) n=(\d+) seed=(\d+)", out)]
    assert trained == planned                                 # the same runs, in the same order

    again = plan_module.plan(table, results, ["wd_aug", "wd", "grad_norm"], [30], [0, 1], epochs=1,
                             eval_examples=100)
    assert again == []
    assert plan_module.main(common) == 0
    assert "nothing left to train" in capsys.readouterr().out
    # the recorded runs now give every row a rate: a new seed is estimated from them
    more = plan_module.plan(table, results, ["wd_aug", "wd", "grad_norm"], [30], [2], epochs=1, eval_examples=100)
    assert [j.label for j in more] == ["wd_aug/30/2", "wd/30/2", "grad_norm/30/2"]
    assert all(j.known and j.minutes > 0 for j in more)


def test_cost_is_the_rows_recorded_seconds_per_step(tmp_path, plan_module):
    results = tmp_path / "results"
    record = dict.fromkeys(plan_module.run.COLUMNS, "")
    for row, n, epochs, seconds in [("wd", 300, 10, 60.0), ("wd", 300, 10, 120.0), ("wd", 300, 10, 90.0),
                                    ("tau", 1000, 2, 160.0)]:
        append_line(results / "runs.csv", {**record, "row": row, "n": n, "seed": 0, "epochs": epochs,
                                            "seconds": seconds, "config_hash": "x", "finished_at": "t",
                                            "eval_examples": "all"}, plan_module.run.COLUMNS)
    rates = plan_module.seconds_per_step(results)
    assert rates[("wd", 300)] == pytest.approx(90.0 / 30)     # median over 3 runs of 10 epochs × 3 steps
    assert rates[("tau", 1000)] == rates[("tau", None)] == pytest.approx(160.0 / 16)
    table = plan_module.run.load_table(RECIPE / "schedule_paper_init.yaml")   # 160 epochs at 300, 80 at 1000
    for name in ("wd", "sn_proj", "tau"):   # no grid runs needed for this check: the choice is given
        table["rows"][name]["grid"] = None
    jobs = plan_module.plan(table, results, ["wd", "tau", "sn_proj"], [300, 1000], [0])
    by = {(j.row, j.n): j for j in jobs}
    assert by[("wd", 300)].minutes == pytest.approx(3.0 * 480 / 60)          # its own n
    assert by[("wd", 1000)].minutes == pytest.approx(3.0 * 640 / 60)         # another n of the row
    assert by[("tau", 300)].minutes == pytest.approx(10.0 * 480 / 60)
    assert not by[("sn_proj", 300)].known                                    # never run: the median row rate
    assert by[("sn_proj", 300)].minutes == pytest.approx((3.0 + 10.0) / 2 * 480 / 60)


def _job(plan_module, kind, row, seed, minutes, n=300):
    return plan_module.Job(kind, row, n, seed, 1, f"{row}/{n}/{seed}", minutes)


def test_split_keeps_a_grid_with_its_cells_and_balances_the_rest(plan_module):
    table = {"rows": {"a": {}, "b": {"inherit": {"k": "a"}}, "c": {}, "d": {}}}
    jobs = [_job(plan_module, "tune", "a", 0, 5), _job(plan_module, "run", "b", 0, 10),
            _job(plan_module, "run", "c", 0, 30), _job(plan_module, "run", "d", 0, 12),
            _job(plan_module, "run", "a", 1, 5), _job(plan_module, "run", "b", 1, 10),
            _job(plan_module, "run", "c", 1, 30), _job(plan_module, "run", "d", 1, 12)]
    shares = plan_module.split(table, jobs, 2)
    grid = next(s for s in shares if any(j.kind == "tune" for j in s))
    assert {(j.row, j.seed) for j in grid} >= {("a", 1), ("b", 0), ("b", 1)}   # a's grid and every cell needing it
    assert [jobs.index(j) for s in shares for j in s] != [] and all(
        [jobs.index(j) for j in s] == sorted(jobs.index(j) for j in s) for s in shares)   # run.py's order kept
    loads = sorted(sum(j.minutes for j in s) for s in shares)
    assert loads == [54, 60]      # units 30, 30, 30 (grid), 12, 12 longest first: {30, 12, 12} and {30, 30}
    assert sum(len(s) for s in shares) == len(jobs)
    assert plan_module.commands(grid)[0] == ["--n", "300", "--seeds", "0", "--rows", "b"]


def test_commands_group_rows_by_n_and_seed(plan_module):
    jobs = [_job(plan_module, "run", "x", 0, 1), _job(plan_module, "run", "y", 0, 1),
            _job(plan_module, "run", "x", 1, 1), _job(plan_module, "run", "x", 0, 1, n=1000)]
    assert plan_module.commands(jobs) == [["--n", "300", "--seeds", "0", "--rows", "x,y"],
                                          ["--n", "300", "--seeds", "1", "--rows", "x"],
                                          ["--n", "1000", "--seeds", "0", "--rows", "x"]]


def test_launch_runs_the_split_side_by_side_and_leaves_nothing(tmp_path, capsys, plan_module):
    table_path, results = _tiny_table(tmp_path), tmp_path / "results"
    argv = ["--table", str(table_path), "--results", str(results), "--rows", "wd_aug,wd,grad_norm", "--n", "30",
            "--seeds", "0-1", "--epochs", "1", "--eval-examples", "100", "--runners", "2"]
    assert plan_module.main(argv + ["--launch", "--run-args", f"--data-dir {DATA} --log-every 0 --threads 1"]) == 0
    out = capsys.readouterr().out
    assert "[launch] 2 runner(s)" in out and "0 command(s) failed" in out
    runs = read_runs(results / "runs.csv")
    tuning = read_runs(results / "tuning.csv")
    assert sorted((r["row"], r["seed"]) for r in runs) == sorted(
        (row, seed) for row in ("wd_aug", "wd", "grad_norm") for seed in "01")     # every cell, once
    assert sorted(r["row"] for r in tuning) == ["grad_norm", "wd", "wd"]           # each grid point trained once
    logs = sorted(p.name for p in (results / "logs").iterdir())
    assert logs == ["runner-1.log", "runner-2.log"]
    assert all("run.py --table" in (results / "logs" / name).read_text() for name in logs)
    assert plan_module.main(argv) == 0 and "nothing left to train" in capsys.readouterr().out


def test_bad_options_are_refused(plan_module):
    with pytest.raises(SystemExit, match=r"--runners=0 is not allowed; pass an int >= 1"):
        plan_module.main(["--runners", "0"])
    with pytest.raises(SystemExit, match=r"--rows: unknown row\(s\) \['nope'\]"):
        plan_module.main(["--rows", "wd,nope"])


def test_split_joins_two_grids_a_row_waits_on(plan_module):
    table = {"rows": {"a": {}, "f": {}, "e": {"inherit": {"k1": "a", "k2": "f"}}, "c": {}}}
    jobs = [_job(plan_module, "tune", "a", 0, 5), _job(plan_module, "tune", "f", 0, 5),
            _job(plan_module, "run", "c", 0, 9), _job(plan_module, "run", "e", 0, 1)]
    shares = plan_module.split(table, jobs, 2)
    assert sorted(sorted(j.row for j in s) for s in shares) == [["a", "e", "f"], ["c"]]
    with pytest.raises(SystemExit, match=r"--run-args='--threads 1 --seeds=3': --seeds not allowed there"):
        plan_module.main(["--run-args", "--threads 1 --seeds=3"])


def test_rates_report_prints_each_rows_seconds_per_step_and_ratio(tmp_path, plan_module):
    results = tmp_path / "results"
    record = dict.fromkeys(plan_module.run.COLUMNS, "")
    for n, epochs, seconds in [(300, 10, 60.0), (1000, 2, 32.0)]:   # 2.0 s/step at 300, 2.0 / 2 at 1000
        append_line(results / "runs.csv", {**record, "row": "wd", "n": n, "seed": 0, "epochs": epochs,
                                            "seconds": seconds, "config_hash": "x", "finished_at": "t",
                                            "eval_examples": "all"}, plan_module.run.COLUMNS)
    assert plan_module.rates_report(results).splitlines() == [
        "row | s/step n=300 | s/step n=1000 | n=1000 ÷ n=300", "wd | 2.000 | 2.000 | 1.00"]


def test_a_fresh_results_folder_takes_its_rates_from_the_published_runs(tmp_path, plan_module):
    """A user's own (empty) results folder still gets cost estimates: the published runs' seconds per step."""
    fresh = plan_module.seconds_per_step(tmp_path / "fresh")
    published = plan_module.seconds_per_step(plan_module.PUBLISHED / "schedule160_paper_init")
    assert fresh and published and fresh[("wd", 300)] > 0
