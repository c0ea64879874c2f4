"""Registry-wide parameter fuzzing (issue 28, item 2), after scikit-learn's ``check_param_validation``.

For every registered penalty, constraint and attack (third-party ones included: ``logit_squeezing``) and for
the public evaluators and settings that declare their parameters, every declared parameter is tried with values
generated from its declaration itself (wrong types, just outside each bound, NaN/±inf, strings for booleans,
numpy scalars and 0-d tensors inside the bounds). A value the declaration refuses must raise
:class:`~rkhsreg.ParameterError` naming the parameter; a value it accepts must be stored as the python value
(``np.float32(0.25)`` as ``0.25``, a float). A plugin or a parameter added tomorrow is fuzzed without a new case,
and :func:`test_every_constructor_parameter_is_declared` keeps it from skipping its declaration.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import pytest
import torch
from torch import nn

from rkhsreg import ConfigurationError, ParameterError
from rkhsreg._params import _forms, declared_parameters, validate_params
from rkhsreg._registry import GROUPS, list_plugins, load_plugin
from rkhsreg.evaluation import certified_accuracy, evaluate_deformations, evaluate_robustness
from rkhsreg.evaluation.attacks import default_attacks
from rkhsreg.evaluation.certified import certified_radii
from rkhsreg.evaluation.settings import AttackSettings, DeformationBudget, DeformationSearch, SanityChecks

PLUGINS = [(group, name) for group in GROUPS for name in list_plugins(group)]
IDS = [f"{GROUPS[group][0]}:{name}" for group, name in PLUGINS]
COUNTS: dict[str, int] = {}


def _constructor_parameters(function) -> list[str]:
    params = inspect.signature(function).parameters
    return [n for n, p in params.items() if n != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _same(a, b) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return type(a) is type(b) and a == b


def _generated(declaration):
    """``(invalid values, (given, stored) valid pairs)`` generated from a declaration."""
    forms = _forms(declaration)
    invalid, valid = [], []
    for form in forms:
        for value in form.invalid_examples():
            others = [f for f in forms if f is not form]
            if not any(_accepts(f, value) for f in others) and not _accepts(form, value):
                invalid.append(value)
        valid += form.valid_examples()
    return invalid, valid


def _accepts(form, value) -> bool:
    try:
        form.convert(value)
    except Exception:
        return False
    return True


def _says_what_is_allowed(error: ParameterError, name: str) -> None:
    """The message names the parameter and what is allowed (the validator's own ``name=value ... (allowed: ...)``,
    or a declared check's message, e.g. "attacks holds the unknown attack 'x'; choose from ...")."""
    text = str(error)
    assert name in text and error.allowed, text
    assert "allowed:" in text or "choose" in text or "pass" in text, text


#: what ``stored`` returns for an option the object keeps in another form (nothing to compare)
NOT_KEPT = object()


def _fuzz(build, declarations: dict, owner: str, stored=None) -> int:
    """Try every generated value of every declared parameter with ``build(**{name: value})``; return the count.

    ``stored(obj, name)``: the value ``obj`` keeps for ``name`` (default: the attribute of that name, if any).
    """
    count = 0
    for name, declaration in declarations.items():
        invalid, valid = _generated(declaration)
        assert invalid, f"{owner}: no invalid value generated for {name}"
        for value in invalid:
            count += 1
            with pytest.raises(ParameterError) as info:
                build(**{name: value})
            assert info.value.parameter == name, (owner, name, value, str(info.value))
            _says_what_is_allowed(info.value, name)
        for given, expected in valid:
            count += 1
            try:
                obj = build(**{name: given})
            except ConfigurationError as exc:  # a rule between parameters (e.g. method='operator' needs input_shape)
                with pytest.raises(type(exc)) as same:
                    build(**{name: expected})
                assert str(same.value) == str(exc).replace(repr(given), repr(expected)) or name in str(exc)
                continue
            kept = stored(obj, name) if stored else getattr(obj, name, expected)
            if kept is NOT_KEPT:   # an option the object turns into something else (built plugins, a tuple of names)
                continue
            if expected is not None and not callable(expected):
                assert _same(kept, expected) or (isinstance(expected, tuple) and tuple(kept) == expected), \
                    f"{owner}: {name}={given!r} stored as {kept!r}, expected {expected!r}"
    return count


@pytest.mark.parametrize("group, name", PLUGINS, ids=IDS)
def test_every_constructor_parameter_is_declared(group, name):
    cls = load_plugin(group, name)
    missing = sorted(set(_constructor_parameters(cls.__init__)) - set(declared_parameters(cls)))
    assert missing == [], f"{name}: declare {missing} in {cls.__name__}.parameters (rkhsreg._params)"


@pytest.mark.parametrize("group, name", PLUGINS, ids=IDS)
def test_every_declared_parameter_is_fuzzed(group, name):
    cls = load_plugin(group, name)
    declared = {n: d for n, d in declared_parameters(cls).items() if n in _constructor_parameters(cls.__init__)}
    COUNTS[name] = _fuzz(cls, declared, name)
    assert COUNTS[name] > 0


SETTINGS = [AttackSettings, SanityChecks, DeformationBudget, DeformationSearch]


@pytest.mark.parametrize("cls", SETTINGS, ids=lambda c: c.__name__)
def test_every_settings_field_is_declared_and_fuzzed(cls):
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    assert sorted(set(fields) - set(declared_parameters(cls))) == []
    assert _fuzz(cls, {n: declared_parameters(cls)[n] for n in fields}, cls.__name__) > 0


def _tiny_problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    return model, (torch.rand(4, 1, 4, 4), torch.tensor([0, 1, 2, 0]))


FUNCTIONS = {
    "evaluate_robustness": (evaluate_robustness, {"epsilons": [0.1]}),
    "evaluate_deformations": (evaluate_deformations, {}),
    "certified_accuracy": (certified_accuracy, {"epsilons": [0.1]}),
    "certified_radii": (certified_radii, {}),
    "default_attacks": (default_attacks, {}),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_evaluator_option_is_declared_and_fuzzed(name):
    """Refused values are refused by the function itself, before any work; accepted values are checked through
    the same declarations (running a whole evaluation for each would take minutes)."""
    function, required = FUNCTIONS[name]
    options = [n for n in _constructor_parameters(function) if n not in ("model", "data", "inputs", "labels")]
    assert sorted(set(options) - set(function.parameters)) == [], f"{name}: declare them in @validates"
    model, (x, y) = _tiny_problem()
    data = (x, y) if name != "certified_radii" else None

    def build(**kwargs):
        if name == "default_attacks":
            return function(**kwargs)
        if name == "certified_radii":
            return function(model, x, y, **kwargs)
        return function(model, data, **{**required, **kwargs})

    count = 0
    for option in options:
        invalid, valid = _generated(function.parameters[option])
        for value in invalid:
            count += 1
            with pytest.raises(ParameterError) as info:
                build(**{option: value})
            assert info.value.parameter == option, (name, option, value, str(info.value))
            _says_what_is_allowed(info.value, option)
        for given, expected in valid:
            count += 1
            kept = validate_params(function.parameters, {option: given})[option]
            assert _same(kept, expected) or kept == expected, (name, option, given, kept, expected)
    COUNTS[name] = count


def _data_modules() -> list[type]:
    pytest.importorskip("pytorch_lightning")
    from rkhsreg.lightning.cifar10_data import CIFAR10Data
    from rkhsreg.lightning.mnist_data import MNISTSubset
    return [MNISTSubset, CIFAR10Data]


@pytest.mark.parametrize("index", [0, 1], ids=["MNISTSubset", "CIFAR10Data"])
def test_every_data_module_option_is_declared_and_fuzzed(index):
    cls = _data_modules()[index]
    options = _constructor_parameters(cls.__init__)
    assert sorted(set(options) - set(cls.parameters)) == []
    COUNTS[cls.__name__] = _fuzz(cls, {n: cls.parameters[n] for n in options}, cls.__name__)


def test_robust_accuracy_options_are_declared_and_fuzzed():
    pytest.importorskip("pytorch_lightning")
    from rkhsreg.lightning.robust_accuracy import RobustAccuracy

    options = _constructor_parameters(RobustAccuracy.__init__)
    assert sorted(set(options) - set(RobustAccuracy.parameters)) == []
    build = lambda **kw: RobustAccuracy(**{"epsilons": [0.5], **kw})  # noqa: E731
    COUNTS["RobustAccuracy"] = _fuzz(build, {n: RobustAccuracy.parameters[n] for n in options}, "RobustAccuracy")


@pytest.mark.parametrize("name", ["RKHSRegularization", "RKHSNormMonitor"])
def test_the_lightning_callbacks_options_are_declared_and_fuzzed(name):
    pytest.importorskip("pytorch_lightning")
    import rkhsreg.lightning

    cls = getattr(rkhsreg.lightning, name)
    options = _constructor_parameters(cls.__init__)
    assert sorted(set(options) - set(cls.parameters)) == []
    build = (lambda **kw: cls(**{"penalties": {"gradient_norm": {}}, **kw})) if name == "RKHSRegularization" else cls

    def stored(obj, option):   # the plugins and names are built into other objects: the plain options are compared
        kept = ("log_prefix", "prog_bar", "log_validation", "every_n_steps", "probe_size")
        return getattr(obj, option) if option in kept else NOT_KEPT

    COUNTS[name] = _fuzz(build, {n: cls.parameters[n] for n in options}, name, stored=stored)


def test_the_fuzz_covers_the_registry():
    """Prints plugins × parameters × generated values (run with -s to read it)."""
    total_params, total_values = 0, 0
    for group, name in PLUGINS:
        cls = load_plugin(group, name)
        for param in _constructor_parameters(cls.__init__):
            invalid, valid = _generated(declared_parameters(cls)[param])
            total_params += 1
            total_values += len(invalid) + len(valid)
    others_params, others_values = 0, 0
    from rkhsreg.lightning.robust_accuracy import RobustAccuracy
    modules = [c.parameters for c in _data_modules()] + [RobustAccuracy.parameters]
    functions = [f.parameters for f, _ in FUNCTIONS.values()]
    for declared in [declared_parameters(c) for c in SETTINGS] + functions + modules:
        for declaration in declared.values():
            invalid, valid = _generated(declaration)
            others_params += 1
            others_values += len(invalid) + len(valid)
    print(f"\nparameter fuzz: {len(PLUGINS)} plugins, {total_params} parameters, {total_values} generated values; "
          f"{len(SETTINGS)} settings classes + {len(FUNCTIONS)} functions + 2 data modules + RobustAccuracy, "
          f"{others_params} parameters, "
          f"{others_values} generated values")
    assert len(PLUGINS) >= 16 and total_params >= 80
