"""Weight and radius schedules: values along training and argument checks."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pytorch_lightning")

from rkhsreg import ConfigurationError  # noqa: E402
from rkhsreg.lightning import Constant, LinearWarmup, RadiusDecay  # noqa: E402


def test_constant() -> None:
    assert Constant(0.1)(0, 0) == Constant(0.1)(10_000, 99) == 0.1


def test_linear_warmup_in_steps_and_epochs() -> None:
    ramp = LinearWarmup(1.0, warmup=4, start=0.2)
    assert [ramp(s, 0) for s in (0, 2, 4, 100)] == pytest.approx([0.2, 0.6, 1.0, 1.0])
    assert LinearWarmup(0.5, warmup=2, unit="epoch")(step=999, epoch=1) == pytest.approx(0.25)


def test_radius_decay_is_the_paper_schedule() -> None:
    schedule = RadiusDecay(tau=0.5, kappa=2.0)
    for epoch in (0, 1, 5, 40):
        assert schedule(0, epoch) == pytest.approx(0.5 * (1 + 4 * math.exp(-epoch / 2.0)))
    assert "RadiusDecay(tau=0.5, kappa=2.0, factor=4.0)" == repr(schedule)


@pytest.mark.parametrize("make, match", [
    (lambda: Constant(-1.0), r"value=-1.0 is out of range"),
    (lambda: LinearWarmup(1.0, warmup=0), r"warmup=0 is out of range"),
    (lambda: LinearWarmup(1.0, warmup=3, unit="batch"), r"unit='batch' is not allowed \(allowed: one of 'step', 'epoch'\)"),
    (lambda: RadiusDecay(tau=0.5, kappa=0.0), r"kappa=0.0 is out of range; it must be > 0"),
    (lambda: RadiusDecay(tau=float("nan")), r"tau=nan is not finite"),
])
def test_bad_schedule_arguments(make, match) -> None:
    with pytest.raises(ConfigurationError, match=match):
        make()
