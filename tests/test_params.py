"""rkhsreg._params: the declarations and the one validator (issue 28, item 1)."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
import pytest
import torch

import rkhsreg
from rkhsreg import ConfigurationError, ParameterError
from rkhsreg._params import (SEED, Boolean, Device, Interval, Options, Tuple, describe, validate_param,
                             validate_params, validates)
from rkhsreg.plugin_api import Penalty


@pytest.mark.parametrize("closed, low_ok, high_ok", [("left", True, False), ("right", False, True),
                                                     ("both", True, True), ("neither", False, False)])
def test_interval_ends(closed, low_ok, high_ok):
    form = Interval(Real, 0, 1, closed=closed)
    for value, ok in [(0, low_ok), (1, high_ok), (0.5, True), (-1e-9, False), (1 + 1e-9, False)]:
        if ok:
            assert validate_param("x", value, form) == value
        else:
            with pytest.raises(ParameterError, match=r"x=.* is out of range; it must be"):
                validate_param("x", value, form)


def test_numbers_accept_numpy_scalars_and_0d_tensors_and_return_python_numbers():
    real, integral = Interval(Real, 0, None), Interval(Integral, 1, None)
    for given in (np.float32(0.25), np.float64(0.25), torch.tensor(0.25), np.array(0.25), 0.25):
        out = validate_param("x", given, real)
        assert out == 0.25 and type(out) is float
    assert type(validate_param("x", 2, real)) is float
    for given in (np.int64(3), np.int32(3), torch.tensor(3), 3):
        out = validate_param("n", given, integral)
        assert out == 3 and type(out) is int
    for bad, reason in [(True, "is not a number"), ("0.5", "is not a number"), (torch.ones(2), "is not a number")]:
        with pytest.raises(ParameterError, match=reason):
            validate_param("x", bad, real)
    with pytest.raises(ParameterError, match="x=.* is not finite"):
        validate_param("x", 10 ** 400, real)      # beyond float's range: not a silent OverflowError
    with pytest.raises(ParameterError, match=r"n=2.0 is not an integer \(allowed: an int >= 1\)"):
        validate_param("n", 2.0, integral)


def test_nan_and_inf_are_refused_unless_declared():
    with pytest.raises(ParameterError, match="x=nan is not finite"):
        validate_param("x", math.nan, Interval(Real, None, None))
    with pytest.raises(ParameterError, match="x=inf is not finite"):
        validate_param("x", math.inf, Interval(Real, 0, None))
    assert validate_param("x", math.inf, Interval(Real, 0, math.inf, closed="both")) == math.inf


def test_booleans_refuse_strings_and_ints():
    assert validate_param("flag", np.bool_(False), Boolean()) is False
    for bad in ("False", "no", 0, 1, None):
        with pytest.raises(ParameterError, match=r"flag=.* is not allowed \(allowed: True or False\)"):
            validate_param("flag", bad, Boolean())


def test_options_match_by_value_not_by_truthiness():
    form = Options((2, 1))
    assert validate_param("p", np.int64(2), form) == 2
    for bad in (True, 2.5, "2"):
        with pytest.raises(ParameterError, match=r"p=.* is not allowed \(allowed: one of 2, 1\)"):
            validate_param("p", bad, form)


def test_seeds_are_range_checked():
    assert validate_param("seed", 2 ** 63 - 1, SEED) == 2 ** 63 - 1
    for bad in (-1, 2 ** 63):
        with pytest.raises(ParameterError, match="seed=.* is out of range"):
            validate_param("seed", bad, SEED)
    with pytest.raises(ParameterError, match="seed=-1 is out of range"):
        rkhsreg.create_penalty("adversarial_perturbation", seed=-1)


def test_devices():
    assert validate_param("device", "cpu", Device()) == torch.device("cpu")
    with pytest.raises(ParameterError, match=r"device='gpu0' is not a device; pass cpu, cuda or cuda:0"):
        validate_param("device", "gpu0", Device())


def test_tuples_alternatives_and_the_message_names_every_allowed_form():
    clip = [None, Tuple(Interval(Real, None, None), length=2, where=lambda t: t[0] < t[1], where_doc="low < high")]
    assert validate_param("clip", [np.float32(0), 1], clip) == (0.0, 1.0)
    with pytest.raises(ParameterError, match=r"clip=\(1, 0\) is not allowed: it breaks low < high \(allowed: None "
                                             r"or a tuple of 2 \(each a finite float\) with low < high\)"):
        validate_param("clip", (1, 0), clip)
    assert describe([None, Interval(Integral, 1, None)]) == "None or an int >= 1"
    with pytest.raises(ParameterError) as info:
        validate_params({"k": [Interval(Integral, 1, None), Options(("all",))]}, {"k": "al"}, owner="thing")
    err = info.value
    assert isinstance(err, ConfigurationError) and isinstance(err, ValueError)
    assert (err.parameter, err.value) == ("k", "al")
    assert str(err) == "thing: k='al' is not allowed (allowed: an int >= 1 or 'all')."


def test_a_tuple_declared_unique_refuses_an_element_given_twice():
    indices = Tuple(Interval(Integral, 0, None), length=(1, None), unique=True)
    assert validate_param("indices", [3, np.int64(1)], indices) == (3, 1)
    with pytest.raises(ParameterError, match=r"indices=\[3, 1, 3\] is not allowed: it lists 3 more than once; "
                                             r"list each once \(allowed: a tuple of 1 or more \(each an int >= 0, "
                                             r"each once\)\)"):
        validate_param("indices", [3, 1, 3], indices)
    # the fuzz test tries a repeated element
    assert any(isinstance(v, tuple) and len(v) == 2 and v[0] == v[1] for v in indices.invalid_examples())


def test_validates_decorator_checks_and_normalises_declared_arguments():
    @validates({"steps": Interval(Integral, 1, None)})
    def run(model, *, steps=10):
        return steps

    assert run(None, steps=np.int64(3)) == 3 and type(run(None, steps=np.int64(3))) is int
    with pytest.raises(ParameterError, match=r"run: steps=0 is out of range; it must be >= 1"):
        run(None, steps=0)
    assert "steps" in run.parameters


def test_a_plugin_that_declares_is_validated_without_writing_checks():
    class Scaled(Penalty):
        name = "scaled"
        parameters = {"power": Interval(Real, 0, None, closed="neither")}

        def __init__(self, *, weight: float = 1.0, power: float = 2.0) -> None:
            super().__init__(weight=weight)
            self.power = power

        def estimate(self, model, inputs, targets):  # pragma: no cover - not called
            raise NotImplementedError

    assert type(Scaled(power=np.float32(0.5)).power) is float
    with pytest.raises(ParameterError, match=r"scaled: power=0 is out of range; it must be > 0"):
        Scaled(power=0)
    with pytest.raises(ParameterError, match=r"scaled: weight=nan is not finite"):  # inherited declaration
        Scaled(weight=math.nan)


def test_the_module_examples_run_as_written():
    import doctest

    import rkhsreg._params as params

    result = doctest.testmod(params, report=False)
    assert result.attempted >= 6 and result.failed == 0


def test_only_when_refuses_a_value_given_where_its_condition_is_false():
    """OnlyWhen: a value other than the default, given while the condition is false, is refused by the one
    validator, naming both parameters and the condition; the default (what the signature shows) never is."""
    from rkhsreg._params import OnlyWhen, Options, validate_params

    declared = {"mode": Options({"auto", "fixed"}),
                "every": OnlyWhen("mode", "auto", Interval(Integral, 1, None))}
    defaults = {"mode": "auto", "every": 100}
    assert validate_params(declared, {"mode": "fixed", "every": 100}, defaults=defaults)["every"] == 100
    assert validate_params(declared, {"mode": "auto", "every": 5}, defaults=defaults)["every"] == 5
    assert validate_params(declared, {"every": 5}, defaults=defaults)["every"] == 5       # mode left at its default
    with pytest.raises(ParameterError) as info:
        validate_params(declared, {"mode": "fixed", "every": 5}, owner="thing", defaults=defaults)
    assert str(info.value) == ("thing: every=5 has no effect with mode='fixed': it applies only when mode='auto'; "
                               "leave every out (default 100) or pass mode='auto'.")
    assert info.value.parameter == "every"
    with pytest.raises(ParameterError, match="every=0 is out of range"):    # its own form is checked first
        validate_params(declared, {"mode": "fixed", "every": 0}, defaults=defaults)
    assert validate_params(declared, {"mode": "fixed", "every": 5}) == {"mode": "fixed", "every": 5}   # no defaults


def test_at_most_refuses_a_value_above_the_other_parameter():
    from rkhsreg._params import AtMost, validate_params

    declared = {"high": Interval(Real, 0, None), "low": AtMost("high", Interval(Real, 0, None), text="why")}
    defaults = {"high": 2.0, "low": 0.0}
    assert validate_params(declared, {"low": 2.0}, defaults=defaults)["low"] == 2.0
    with pytest.raises(ParameterError, match=r"low=3 is larger than high=2.0: why, so it would be cut to 2.0; "
                                             r"pass low <= 2.0 or raise high"):
        validate_params(declared, {"low": 3}, defaults=defaults)
