"""recipes/mnist_small_data/trace.py: per-step records of one run, relapse detection, argument checks."""

from __future__ import annotations

import pytest

from tests._recipe_helpers import read_rows, recipe_module
from tests.test_recipe_mnist import DATA, RECIPE, pytestmark  # noqa: F401  (skip without MNIST)


@pytest.fixture(scope="module")
def trace_module():
    with recipe_module("mnist_small_data_trace", RECIPE / "trace.py") as module:
        yield module


def test_relapses_count_falls_to_chance_after_fitting(trace_module):
    accs = [0.1, 0.4, 0.85, 0.9, 0.2, 0.1, 0.45, 0.95, 0.25, 0.9]
    records = [{"step": i, "batch_acc": a} for i, a in enumerate(accs)]
    # step 4 falls below 0.3 after step 2 reached 0.5; step 5 is the same relapse; step 8 is a second one
    assert trace_module.relapses(records) == [4, 8]
    assert trace_module.relapses(records, fit=0.99) == []          # never fitted: no relapse
    early = [{"step": i, "batch_acc": a} for i, a in enumerate([0.1, 0.4, 0.2])]
    assert trace_module.relapses(early) == [] and trace_module.relapses(early, fit=0.4) == [2]
    assert trace_module.relapses(records[:4]) == []


def test_parse_set_reads_yaml_scalars_and_refuses_a_missing_value(trace_module):
    assert trace_module.parse_set(["model.lr=0.1", "data.augment=true"]) == {"model.lr": 0.1, "data.augment": True}
    with pytest.raises(SystemExit, match="--set 'model.lr' is not allowed"):
        trace_module.parse_set(["model.lr"])


def test_trace_writes_one_record_per_sgd_step_with_each_penalty(tmp_path, capsys, trace_module):
    out = tmp_path / "trace.csv"
    # n=300, 1 epoch = 3 SGD steps (128 + 128 + 44); no grid runs in that results folder, so the tuned λ
    # must come from --set
    argv = ["--row", "grad_l2", "--epochs", "1", "--eval-examples", "20", "--data-dir", DATA, "--results",
            str(tmp_path / "no-results"), "--out", str(out)]
    with pytest.raises(SystemExit, match=r"grid is unfinished .* \(model.penalties.loss_gradient.weight\)"):
        trace_module.main(argv)
    assert trace_module.main(argv + ["--set", "model.penalties.loss_gradient.weight=0.5"]) == 0
    rows = read_rows(out)
    assert [int(r["step"]) for r in rows] == [0, 1, 2] and {r["epoch"] for r in rows} == {"0"}
    for r in rows:
        assert float(r["ce"]) > 0 and float(r["grad_norm"]) > 0 and 0 <= float(r["batch_acc"]) <= 1
        # the loss is the cross-entropy plus the weighted penalty, as trained
        assert float(r["loss"]) == pytest.approx(float(r["ce"]) + float(r["penalty:loss_gradient"]), rel=1e-5)
    assert '"weight":0.5' in capsys.readouterr().out


def test_trace_refuses_bad_arguments(trace_module):
    with pytest.raises(SystemExit, match="--row='weight_decay' is unknown"):
        trace_module.main(["--row", "weight_decay"])
    with pytest.raises(SystemExit, match=r"--threads=0 is out of range; pass an int >= 1"):
        trace_module.main(["--row", "wd", "--threads", "0"])
    with pytest.raises(SystemExit, match=r"--n=0 is out of range"):
        trace_module.main(["--row", "wd", "--n", "0"])
    with pytest.raises(SystemExit, match="need 0 <= chance < fit <= 1"):
        trace_module.main(["--row", "wd", "--fit", "0.2", "--chance", "0.3"])
    with pytest.raises(SystemExit, match="--set model.nope=1"):
        trace_module.main(["--row", "wd", "--set", "model.nope=1", "--epochs", "1", "--results", str(RECIPE / "published")])
