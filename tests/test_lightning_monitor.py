"""RKHSNormMonitor: bounds logged on a fixed probe without side effects; the plot helper."""

from __future__ import annotations

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

from rkhsreg import ConfigurationError, create_penalty  # noqa: E402
from rkhsreg.lightning import RKHSNormMonitor, plot_norm_bounds  # noqa: E402
from tests._lightning_helpers import loader, model, small_kwargs, trainer  # noqa: E402,F401
from tests.conftest import assert_same_snapshot, snapshot  # noqa: E402

LOWER = {name: small_kwargs(name) for name in ("adversarial_perturbation", "adversarial_deformation",
                                                  "gradient_norm")}


def test_measure_has_no_side_effects(small_cnn, image_batch) -> None:
    monitor = RKHSNormMonitor(image_batch, lower_bounds=LOWER)
    small_cnn(image_batch[0]).sum().backward()  # existing .grad must survive untouched
    before = snapshot(small_cnn)
    states = {k: p.state_dict() for k, p in monitor.lower_bounds.items()}
    metrics = monitor.measure(small_cnn)
    assert_same_snapshot(before, snapshot(small_cnn))
    for key, penalty in monitor.lower_bounds.items():
        for name, value in states[key].items():
            after = penalty.state_dict()[name]
            assert torch.equal(value, after) if isinstance(value, torch.Tensor) else value == after
    assert set(metrics) == {"lower/adversarial_perturbation", "lower/adversarial_deformation",
                            "lower/gradient_norm", "upper/reshape", "upper/operator"}
    assert all(v >= 0 and v == v for v in metrics.values())
    assert metrics["upper/operator"] > 0 and metrics["upper/reshape"] > 0


def test_upper_bound_dominates_the_gradient_lower_bound_without_batchnorm() -> None:
    lit = model("tiny")
    x, y = next(iter(loader(n=8)))
    metrics = RKHSNormMonitor((x, y), lower_bounds={"gradient_norm": {"mode": "joint"}}).measure(lit)
    assert metrics["lower/gradient_norm"] <= metrics["upper/operator"] * (1 + 1e-4)


def test_monitor_logs_every_n_steps_and_plots(tmp_path) -> None:
    monitor = RKHSNormMonitor(every_n_steps=2, probe_size=4, lower_bounds={"gradient_norm": {}})
    logger = pl.loggers.CSVLogger(tmp_path, name="run")
    tr = trainer(max_steps=4, logger=logger, log_every_n_steps=1, callbacks=[monitor])
    tr.fit(model("tiny"), loader(n=32))
    assert [row["step"] for row in monitor.history] == [0.0, 2.0]
    assert monitor.probe[0].shape[0] == 4
    assert "rkhsreg/monitor/lower/gradient_norm" in tr.callback_metrics
    fig = plot_norm_bounds(monitor, tmp_path / "bounds.png")
    assert (tmp_path / "bounds.png").stat().st_size > 0 and len(fig.axes[0].lines) == 3
    plot_norm_bounds(tmp_path / "run" / "version_0" / "metrics.csv", tmp_path / "from_csv.png")
    assert (tmp_path / "from_csv.png").exists()
    restored = RKHSNormMonitor(lower_bounds={"gradient_norm": {}}, every_n_steps=2)
    restored.load_state_dict(monitor.state_dict())
    assert restored.history == monitor.history and torch.equal(restored.probe[0], monitor.probe[0])


def test_logged_rows_carry_the_step_they_were_measured_at(tmp_path) -> None:
    """With Lightning's default log_every_n_steps=50 and a 3-step period, metrics.csv has rows 0, 3, 6, 9."""
    import csv

    monitor = RKHSNormMonitor(every_n_steps=3, probe_size=4, lower_bounds={"gradient_norm": {}})
    logger = pl.loggers.CSVLogger(tmp_path, name="run")
    trainer(max_steps=10, logger=logger, log_every_n_steps=50, callbacks=[monitor]).fit(model("tiny"), loader(n=80))
    with open(tmp_path / "run" / "version_0" / "metrics.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("rkhsreg/monitor/lower/gradient_norm")]
    assert [int(r["step"]) for r in rows] == [0, 3, 6, 9] == [int(h["step"]) for h in monitor.history]
    for row, measured in zip(rows, monitor.history):
        assert float(row["rkhsreg/monitor/upper/reshape"]) == pytest.approx(measured["upper/reshape"], rel=1e-6)


def test_default_lower_bounds_are_the_three_paper_estimates() -> None:
    assert set(RKHSNormMonitor().lower_bounds) == {"perturbation", "deformation", "gradient"}


@pytest.mark.parametrize("kwargs, match", [
    ({"every_n_steps": 0}, r"every_n_steps=0 is out of range"),
    ({"upper_bounds": "reshape"}, r"upper_bounds='reshape' is a string"),
    ({"upper_bounds": ["exact"]}, r"upper_bounds='exact' is not allowed"),
    ({"lower_bounds": {"gradient_nrom": {}}}, r"did you mean 'gradient_norm'"),
])
def test_bad_monitor_arguments(kwargs, match) -> None:
    with pytest.raises((ConfigurationError, KeyError), match=match):
        RKHSNormMonitor(**kwargs)


@pytest.mark.parametrize("lower, match", [
    ({"spectral_norm": {}}, r"'spectral_norm' is the penalty 'spectral_norm', an upper bound of the RKHS norm"),
    ({"gradient_norm": {}, "loss_gradient": {}}, r"'loss_gradient' is the penalty 'loss_gradient', not a bound of "
                                                  r"the RKHS norm \(a baseline\)"),
    ({"pgd": create_penalty("adversarial_training")}, r"'pgd' is the penalty 'adversarial_training', not a bound"),
])
def test_only_penalties_declared_as_lower_bounds_are_measured_as_lower_bounds(lower, match) -> None:
    """An upper bound or a baseline (a loss) logged as lower/... would be a false bound of ‖f‖_H."""
    with pytest.raises(ConfigurationError, match=match) as info:
        RKHSNormMonitor(lower_bounds=lower)
    assert "lower_bounds" in str(info.value) and "'gradient_norm'" in str(info.value)   # the ones allowed


def test_a_monitor_with_no_bound_says_it_measures_nothing() -> None:
    with pytest.warns(UserWarning, match=r"RKHSNormMonitor got no lower bound and no upper bound: it will measure "
                                         r"nothing") as record:
        RKHSNormMonitor(lower_bounds={}, upper_bounds=())
    assert record[0].filename == __file__
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RKHSNormMonitor(lower_bounds={}, upper_bounds=("reshape",))
        RKHSNormMonitor(lower_bounds={"gradient_norm": {}}, upper_bounds=())


def test_a_probe_size_above_the_first_batch_is_said_once() -> None:
    monitor = RKHSNormMonitor(every_n_steps=1, probe_size=1000, lower_bounds={"gradient_norm": {}}, upper_bounds=())
    with pytest.warns(UserWarning, match=r"probe_size=1000, but the first training batch holds 8 examples") as record:
        trainer(max_steps=2, callbacks=[monitor]).fit(model("tiny"), loader(n=16, batch_size=8))
    assert monitor.probe[0].shape[0] == 8 and len(monitor.history) == 2
    assert sum("probe_size=1000" in str(w.message) for w in record) == 1
    import warnings
    with warnings.catch_warnings():   # the default (64, or the whole first batch) is not said
        warnings.filterwarnings("error", message=r".*probe_size")
        monitor = RKHSNormMonitor(every_n_steps=1, lower_bounds={"gradient_norm": {}}, upper_bounds=())
        trainer(max_steps=1, callbacks=[monitor]).fit(model("tiny"), loader(n=8, batch_size=8))
    assert monitor.probe[0].shape[0] == 8


def test_measure_without_probe_and_plot_without_bounds_explain() -> None:
    with pytest.raises(ConfigurationError, match=r"no probe batch yet"):
        RKHSNormMonitor(lower_bounds={}).measure(model("tiny"))
    with pytest.raises(ConfigurationError, match=r"holds no 'lower/...' or 'upper/...' values"):
        plot_norm_bounds([{"step": 0.0, "loss": 1.0}])


def test_a_layer_no_weight_bound_applies_to_skips_the_upper_bounds_with_a_warning() -> None:
    """A weight-standardised conv: the run goes on, the lower bounds are logged, the upper ones are not (said once)."""
    timm_layers = pytest.importorskip("timm.layers")
    torch.manual_seed(0)
    net = torch.nn.Sequential(timm_layers.StdConv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 8 * 8, 3))
    monitor = RKHSNormMonitor((torch.rand(4, 1, 8, 8), torch.tensor([0, 1, 2, 0])),
                              lower_bounds={"gradient_norm": {}})
    with pytest.warns(UserWarning, match=r"upper bounds skipped: layer '0' \(StdConv2d\) standardises"):
        metrics = monitor.measure(net)
    assert set(metrics) == {"lower/gradient_norm"}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert set(monitor.measure(net)) == {"lower/gradient_norm"}   # said once


def test_the_delta_search_calibrates_once_per_monitor_quietly_and_measures_reproducibly(small_cnn) -> None:
    """One exhaustive calibration of the ‖f‖²_δ search per monitor (not one per measurement), no search warning
    (the user never created that penalty), the same value for the same network, and the calibration resumed."""
    import warnings

    x = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    monitor = RKHSNormMonitor(x, lower_bounds={"adversarial_perturbation": {"epsilon": 2.0}}, upper_bounds=())
    penalty = monitor.lower_bounds["adversarial_perturbation"]
    checks = []
    original = penalty._calibrate

    def counting(*args, **kwargs):
        checks.append(1)
        return original(*args, **kwargs)

    penalty._calibrate = counting
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no SearchBudgetWarning (nor any other)
        values = [monitor.measure(small_cnn)["lower/adversarial_perturbation"] for _ in range(3)]
    assert len(checks) == 1 and values[0] == values[1] == values[2] > 0
    resumed = RKHSNormMonitor(x, lower_bounds={"adversarial_perturbation": {"epsilon": 2.0}}, upper_bounds=())
    resumed.load_state_dict(monitor.state_dict())
    resumed.lower_bounds["adversarial_perturbation"]._calibrate = counting
    assert resumed.measure(small_cnn)["lower/adversarial_perturbation"] == values[0] and len(checks) == 1


def test_the_checkpoint_key_does_not_depend_on_the_lower_bounds() -> None:
    """A monitor given other lower bounds on resume still finds its history; a label now holding another plugin
    does not inherit the old plugin's state."""
    a = RKHSNormMonitor(lower_bounds={"gradient_norm": {}})
    b = RKHSNormMonitor(lower_bounds={"gradient_norm": {}, "adversarial_perturbation": {}}, every_n_steps=7)
    assert a.state_key == b.state_key == "RKHSNormMonitor"
    a.history.append({"step": 0.0})
    a._states["gradient_norm"] = {"plugin": "AdversarialPerturbation", "state": {}}   # not what b holds there
    b.load_state_dict(a.state_dict())
    assert b.history == [{"step": 0.0}] and b._states == {}


def test_the_upper_bounds_include_the_input_normalisation() -> None:
    """The lower bounds measure the whole model, input normalisation included: so do the upper bounds (the
    Lipschitz constant of Normalize → Linear is σ_max(W) / std; without the normalisation's 1 / std it was 3× too
    small)."""
    import rkhsreg

    torch.manual_seed(0)
    net = torch.nn.Sequential(rkhsreg.Normalize((0.1307,), (0.3081,)), torch.nn.Flatten(), torch.nn.Linear(784, 10))
    x, y = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))
    metrics = RKHSNormMonitor((x, y), lower_bounds={"gradient_norm": {"mode": "joint"}}).measure(net)
    exact = float(torch.linalg.matrix_norm(net[2].weight.detach(), 2)) / 0.3081
    assert metrics["upper/operator"] == pytest.approx(exact, rel=1e-4)
    assert metrics["upper/reshape"] == pytest.approx(exact, rel=1e-4)


def test_plot_norm_bounds_follows_the_writers_policy(tmp_path) -> None:
    """As every rkhsreg writer: an existing file refused unless overwrite, the format from the suffix, .jpg refused."""
    pytest.importorskip("matplotlib")
    from rkhsreg import OutputExistsError

    history = [{"step": 0.0, "lower/gradient_norm": 1.0, "upper/operator": 3.0},
               {"step": 1.0, "lower/gradient_norm": 1.5, "upper/operator": 3.5}]
    plot_norm_bounds(history, tmp_path / "b.pdf")
    assert (tmp_path / "b.pdf").read_bytes()[:4] == b"%PDF"
    with pytest.raises(OutputExistsError, match=r"b\.pdf already exists; pass another path, or overwrite=True"):
        plot_norm_bounds(history, tmp_path / "b.pdf")
    plot_norm_bounds(history, tmp_path / "b.pdf", overwrite=True)
    with pytest.raises(ConfigurationError, match=r"\.png, \.pdf, \.svg"):
        plot_norm_bounds(history, tmp_path / "b.jpg")
    assert not (tmp_path / "b.jpg").exists()


def test_a_probe_size_given_with_a_fixed_probe_is_refused():
    """probe_size only sizes a probe taken from the first batch: given with probe=..., it was ignored silently."""
    from rkhsreg import ParameterError

    with pytest.raises(ParameterError, match=r"probe_size=10 has no effect with probe=Tensor\(\.\.\.\): it applies "
                                             r"only when probe is None"):
        RKHSNormMonitor(probe=torch.rand(4, 1, 8, 8), probe_size=10)
    RKHSNormMonitor(probe=torch.rand(4, 1, 8, 8))     # the default is never refused


def test_a_lower_bounds_list_of_names_is_refused_naming_lower_bounds():
    """The message named another parameter ('penalties contains ...') and did not show the dict form."""
    with pytest.raises(ConfigurationError, match=r"lower_bounds contains 'gradient_norm', which is not an "
                                                 r"rkhsreg.Penalty; .*or pass a dict \{'gradient_norm': \{\}\}"):
        RKHSNormMonitor(lower_bounds=["gradient_norm"])
