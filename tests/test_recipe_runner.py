"""The recipes' shared runner (``recipes/_common/runner.py``): results files, provenance, the validation grid."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from recipes._common.config_keys import set_key
from recipes._common.runner import GridRunner, Runner, check_positive, config_hash, mean_std, select_rows

COLUMNS = ["row", "seed", "val", "config_hash", "git_commit", "machine", "threads", "finished_at"]


class ToyRunner(GridRunner):
    """Scores a config by a fixed function of its values; counts what it trains."""

    columns = COLUMNS

    def __init__(self, rows, results, value, **kwargs) -> None:
        super().__init__(rows, results, **kwargs)
        self.value, self.trained = value, []

    def train(self, cfg, seed, label):
        self.trained.append(label)
        return {"val": self.value(cfg)}

    def grid_config(self, name, choice):
        cfg = copy.deepcopy(self.rows[name]["cfg"])
        for key, value in choice.items():
            set_key(cfg, key, value)
        return cfg

    def score(self, name, cfg, label):
        h = self.config_hash(cfg)
        done = self.finished(self.tuning_path, key=lambda r: (r["row"], r["config_hash"]))
        if (name, h) not in done:
            if self.dry:
                return None
            result = self.train(cfg, 0, label)
            done[name, h] = self.record(self.tuning_path, {"row": name, "seed": 0, "config_hash": h, **result})
        return float(done[name, h]["val"])


def rows():
    base = {"m": {"a": 1, "b": 0}}
    return {"r": {"cfg": base, "grid": {"m.a": [1, 2, 3], "m.b": [0, 5]}},
            "child": {"cfg": copy.deepcopy(base), "inherit": {"m.a": "r", "m.b": "r"}}}


def test_the_grid_is_searched_coordinate_by_coordinate(tmp_path):
    # the best a is chosen with b at its base value, then b with that a: (a=2, b=5) beats everything tried;
    # the point (a=2, b=0) is reached by both coordinates and trained once
    value = lambda cfg: {1: 1.0, 2: 3.0, 3: 2.0}[cfg["m"]["a"]] + cfg["m"]["b"] / 10  # noqa: E731
    runner = ToyRunner(rows(), tmp_path, value)
    assert runner.choose("r") == {"m.a": 2, "m.b": 5}
    assert runner.trained == ["r[a=1]", "r[a=2]", "r[a=3]", "r[b=5]"]
    assert runner.choose("child") == {"m.a": 2, "m.b": 5}   # inherited: nothing more trained
    assert len(runner.trained) == 4
    records = runner.read(runner.tuning_path)
    assert [float(r["val"]) for r in records] == [1.0, 3.0, 2.0, 3.5]
    assert runner.code and all(r["git_commit"] == runner.code and r["machine"] and r["threads"] == "1"
                               and r["finished_at"] for r in records)


def test_ties_keep_the_first_listed_value(tmp_path):
    runner = ToyRunner(rows(), tmp_path, lambda cfg: 1.0)
    assert runner.choose("r") == {"m.a": 1, "m.b": 0}


def test_a_new_runner_resumes_from_the_files_and_a_dry_one_never_trains(tmp_path):
    value = lambda cfg: float(cfg["m"]["a"])  # noqa: E731
    dry = ToyRunner(rows(), tmp_path, value, dry=True)
    assert dry.choose("r") is None and dry.choose("child") is None and dry.trained == []
    first = ToyRunner(rows(), tmp_path, value)
    first.choose("r")
    again = ToyRunner(rows(), tmp_path, value)
    assert again.choose("r") == first.choose("r") == {"m.a": 3, "m.b": 0}
    assert again.trained == []
    assert ToyRunner(rows(), tmp_path, value, dry=True).choose("child") == {"m.a": 3, "m.b": 0}


def test_a_torn_last_line_is_ignored_and_not_merged(tmp_path):
    runner = ToyRunner(rows(), tmp_path, lambda cfg: 0.0)
    record = {"row": "wd", "seed": 0, "finished_at": "2026-01-01T00:00:00"}
    runner.append(runner.runs_path, record)
    with open(runner.runs_path, "a") as f:
        f.write("wd,1,0.5")                     # a writer killed mid-line
    assert [r["seed"] for r in runner.read(runner.runs_path)] == ["0"]
    with pytest.warns(RuntimeWarning, match="torn last line"):
        runner.append(runner.runs_path, dict(record, seed=2))
    assert [r["seed"] for r in runner.read(runner.runs_path)] == ["0", "2"]


def test_config_hash_covers_what_it_names():
    cfg = {"model": {"lr": 0.1}, "data": {"workers": 4}}
    assert config_hash(cfg) != config_hash({**cfg, "model": {"lr": 0.2}})
    assert config_hash(cfg, ["model"]) == config_hash({**cfg, "data": {"workers": 0}}, ["model"])
    assert config_hash(cfg) != config_hash({**cfg, "data": {"workers": 0}})
    assert len(config_hash(cfg)) == 12


def test_mean_std_and_option_checks():
    assert mean_std([2.0]) == (2.0, None)
    mean, std = mean_std([1.0, 2.0, 3.0])
    assert mean == 2.0 and std == pytest.approx(1.0)
    with pytest.raises(ValueError, match=r"values=\[\]"):
        mean_std([])
    assert select_rows("all", ["a", "b"]) == ["a", "b"]
    assert select_rows(" b, a ", ["a", "b"]) == ["b", "a"]
    with pytest.raises(SystemExit, match=r"--rows='a,zz'.*\['zz'\].*choose from a, b"):
        select_rows("a,zz", ["a", "b"])
    with pytest.raises(SystemExit, match="--rows=','"):
        select_rows(",", ["a", "b"])
    check_positive("epochs", None)
    check_positive("workers", 0, minimum=0)
    with pytest.raises(SystemExit, match=r"--epochs=0 is out of range; pass an int >= 1"):
        check_positive("epochs", 0)


def test_the_base_runners_name_what_a_recipe_must_supply(tmp_path: Path):
    with pytest.raises(TypeError, match="abstract method.*train"):
        Runner({}, tmp_path)

    class NoGrid(GridRunner):
        def train(self, cfg, seed, label):
            return {}

    with pytest.raises(TypeError, match="abstract methods.*grid_config.*score"):
        NoGrid({}, tmp_path)
