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
from rkhsreg._params import (AtMost, OnlyWhen, _chain, _forms, _relations, _same_value, declared_parameters,
                             signature_defaults, validate_param, validate_params)
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
        enabling = _enabling(declarations, name)
        count += _refused(owner, build, name, invalid)
        for given, expected in valid:
            count += 1
            try:
                obj = build(**{**enabling, name: given})
            except ConfigurationError as exc:  # a rule between parameters (e.g. method='operator' needs input_shape)
                with pytest.raises(type(exc)) as same:
                    build(**{**enabling, name: expected})
                assert str(same.value) == str(exc).replace(repr(given), repr(expected)) or name in str(exc)
                continue
            kept = stored(obj, name) if stored else getattr(obj, name, expected)
            if kept is NOT_KEPT:   # an option the object turns into something else (built plugins, a tuple of names)
                continue
            if expected is not None and not callable(expected):
                assert _same(kept, expected) or (isinstance(expected, tuple) and tuple(kept) == expected), \
                    f"{owner}: {name}={given!r} stored as {kept!r}, expected {expected!r}"
    return count


def _enabling(declarations: dict, name: str) -> dict:
    """The other parameter's value under which ``name`` has an effect (its :class:`OnlyWhen` condition), so that
    its accepted values are fuzzed where they apply; ``{}`` for an unconditional parameter."""
    out = {}
    for relation in _chain(declarations.get(name)):
        if not isinstance(relation, OnlyWhen) or relation.other not in declarations:
            continue
        holding = [given for given, stored in _generated(declarations[relation.other])[1] if relation.holds(stored)]
        assert holding, f"{name}: no value of {relation.other} generated under which it applies"
        out[relation.other] = holding[0]
    return out


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

    COUNTS[name] = _fuzz_function(name, function, build, options, require_invalid=False)


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
    from rkhsreg.evaluation import RobustnessResult
    loaders = [f.parameters for f, _ in _loaders().values()]
    results = [getattr(RobustnessResult, m).parameters for m in RESULT_METHODS]
    results.append(declared_parameters(RobustnessResult))
    for declared in [declared_parameters(c) for c in SETTINGS] + functions + modules + loaders + results:
        for declaration in declared.values():
            invalid, valid = _generated(declaration)
            others_params += 1
            others_values += len(invalid) + len(valid)
    print(f"\nparameter fuzz: {len(PLUGINS)} plugins, {total_params} parameters, {total_values} generated values; "
          f"{len(SETTINGS)} settings classes + {len(FUNCTIONS)} functions + 2 data modules + RobustAccuracy + "
          f"{len(loaders)} loaders + RobustnessResult and {len(RESULT_METHODS)} of its methods, "
          f"{others_params} parameters, "
          f"{others_values} generated values")
    assert len(PLUGINS) >= 16 and total_params >= 80


# ------------------------------------------------------------------ loaders, result files, command-line options
def _loaders() -> dict:
    """Data loaders that declare their options: ``name -> (function, positional arguments)``."""
    import rkhsreg.data as data
    from rkhsreg.data.cifar10_files import cifar10_datasets, find_cifar10, load_cifar10_tensors
    from rkhsreg.data.protein import encode_sequences, sequence_indices
    from rkhsreg.data.protein_tasks import build_standin_tasks
    from rkhsreg.data.scop import load_scop_task

    return {
        "select_indices": (data.select_indices, (10,)),
        "subset_indices": (data.subset_indices, (300,)),
        "load_mnist": (data.load_mnist, ()),
        "load_cifar10": (data.load_cifar10, ()),
        "cifar10_split": (data.cifar10_split, ()),
        "find_cifar10": (find_cifar10, ()),
        "cifar10_datasets": (cifar10_datasets, ()),
        "load_cifar10_tensors": (load_cifar10_tensors, ()),
        "sequence_indices": (sequence_indices, (["ACD"],)),
        "encode_sequences": (encode_sequences, (["ACD"],)),
        "load_scop_task": (load_scop_task, ("/nonexistent", "a.1.1")),
        "build_standin_tasks": (build_standin_tasks, ()),
        "read_fasta": (data.read_fasta, ()),
    }


LOADERS = ["select_indices", "subset_indices", "load_mnist", "load_cifar10", "cifar10_split", "find_cifar10",
           "cifar10_datasets", "load_cifar10_tensors", "sequence_indices", "encode_sequences", "load_scop_task",
           "build_standin_tasks", "read_fasta"]


def _refused(owner: str, build, name: str, invalid: list) -> int:
    """Each invalid value of ``name`` makes ``build`` raise a ParameterError naming ``name`` and what it allows."""
    for value in invalid:
        with pytest.raises(ParameterError) as info:
            build(**{name: value})
        assert info.value.parameter == name, (owner, name, value, str(info.value))
        _says_what_is_allowed(info.value, name)
    return len(invalid)


def _fuzz_function(owner: str, function, build, options=None, *, require_invalid: bool = True) -> int:
    """Refused values are refused by ``build(**{option: value})`` before any work (no file is read); accepted ones
    are checked through the same declarations. ``options``: the declared parameters to fuzz (default: all)."""
    count = 0
    for option in function.parameters if options is None else options:
        invalid, valid = _generated(function.parameters[option])
        assert invalid or not require_invalid, f"{owner}: no invalid value generated for {option}"
        count += _refused(owner, build, option, invalid)
        for given, expected in valid:
            count += 1
            kept = validate_params(function.parameters, {option: given})[option]
            assert _same(kept, expected) or kept == expected, (owner, option, given, kept, expected)
    return count


@pytest.mark.parametrize("name", LOADERS)
def test_every_loader_option_is_declared_and_fuzzed(name):
    function, positional = _loaders()[name]
    names = _constructor_parameters(function)
    given = dict(zip(names, positional))
    options = [n for n in names if n != "sequences"]     # the data itself, checked by the body
    assert sorted(set(options) - set(function.parameters)) == [], f"{name}: declare them in @validates"

    def build(**kwargs):
        return function(**{**given, **kwargs})

    COUNTS[name] = _fuzz_function(name, function, build)
    assert COUNTS[name] > 0


def _small_result():
    from rkhsreg.evaluation import RobustnessResult

    return RobustnessResult(norm="l2", epsilons=[0.5], clean_accuracy=1.0, robust_accuracy=[0.5],
                            distances=torch.tensor([0.3, math.inf], dtype=torch.float64),
                            correct=torch.tensor([True, True]))


RESULT_METHODS = ["accuracy_at", "save", "load", "plot", "to_json", "to_csv", "to_dict"]


@pytest.mark.parametrize("method", RESULT_METHODS)
def test_every_result_method_option_is_declared_and_fuzzed(method, tmp_path):
    from rkhsreg.evaluation import RobustnessResult

    function = getattr(RobustnessResult, method)
    options = [n for n in _constructor_parameters(function) if n != "cls"]
    assert sorted(set(options) - set(function.parameters)) == [], f"{method}: declare them in @validates"
    result = _small_result()
    required = {"accuracy_at": {"epsilon": 0.5}, "save": {"prefix": tmp_path / "r"}, "load": {"path": tmp_path},
                "to_json": {"path": tmp_path / "r.json"}, "to_csv": {"path": tmp_path / "r.csv"}}.get(method, {})

    def build(**kwargs):
        call = getattr(RobustnessResult if method == "load" else result, method)
        return call(**{**required, **kwargs})

    COUNTS[f"RobustnessResult.{method}"] = _fuzz_function(method, function, build)
    assert not list(tmp_path.iterdir())          # nothing written by a refused call


def test_every_result_field_is_declared_and_fuzzed():
    """The fields a result is built with, and read back with (RobustnessResult.load checks files against them)."""
    from rkhsreg.evaluation import RobustnessResult

    fields = [f.name for f in dataclasses.fields(RobustnessResult) if f.init]
    assert sorted(set(fields) - set(declared_parameters(RobustnessResult))) == []
    base = {name: getattr(_small_result(), name) for name in ("norm", "epsilons", "clean_accuracy",
                                                              "robust_accuracy", "distances", "correct")}
    build = lambda **kw: RobustnessResult(**{**base, **kw})  # noqa: E731
    COUNTS["RobustnessResult"] = _fuzz(build, declared_parameters(RobustnessResult), "RobustnessResult")


def _declared_actions():
    from rkhsreg.cli.parser import Declared, build_parser

    evaluate = build_parser()._subparsers._group_actions[0].choices["evaluate"]
    return [action for action in evaluate._actions if isinstance(action, Declared)]


def test_command_line_options_reuse_the_api_declarations_and_are_fuzzed(capsys):
    """Every option that sets an API parameter is checked by that parameter's own declaration (the same objects), and
    the declaration's numeric and text refusals, written on the command line, exit 2 naming the option."""
    from rkhsreg.cli import main
    from rkhsreg.data.examples import SELECT_PARAMETERS
    from rkhsreg.evaluation.sweep import ROBUSTNESS_PARAMETERS

    api = {"--epsilons": ROBUSTNESS_PARAMETERS["epsilons"], "--norm": ROBUSTNESS_PARAMETERS["norm"],
           "--bounds": ROBUSTNESS_PARAMETERS["bounds"], "--seed": ROBUSTNESS_PARAMETERS["seed"],
           "--batch-size": ROBUSTNESS_PARAMETERS["batch_size"], "--device": ROBUSTNESS_PARAMETERS["device"],
           "--steps": AttackSettings.parameters["steps"], "--attacks": AttackSettings.parameters["attacks"],
           "--order": AttackSettings.parameters["order"],
           "--borderline-restarts": AttackSettings.parameters["borderline_restarts"],
           "--n-examples": SELECT_PARAMETERS["n_examples"], "--first-n": SELECT_PARAMETERS["first_n"],
           "--indices": SELECT_PARAMETERS["indices"], "--subset-seed": SELECT_PARAMETERS["seed"]}
    actions = {action.option_strings[0]: action for action in _declared_actions()}
    assert set(api) <= set(actions), sorted(set(api) - set(actions))
    count = 0
    for flag, action in actions.items():
        if flag in api:
            assert all(any(form is same for same in _forms(api[flag])) for form in action.declaration), flag
        invalid, _ = _generated(action.declaration)
        for value in invalid:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                continue                               # no command-line spelling
            text = str(value)
            try:                                        # the text may spell an accepted value ("1" for 1)
                validate_params({"v": action.declaration}, {"v": action.parse(text)})
                continue
            except (ValueError, ParameterError):
                pass
            count += 1
            argv = ["evaluate", "--model", "m:f", "--data", "mnist", "--random-init", "--epsilons", "0.5",
                    f"{flag}={text}"]
            with pytest.raises(SystemExit) as stop:
                main(argv)
            line = capsys.readouterr().err.strip().splitlines()[-1]
            assert stop.value.code == 2 and flag in line, (flag, text, line)
    COUNTS["command line"] = count
    assert count >= 20


# ------------------------------------------------- options that apply only in another mode (OnlyWhen, AtMost)
def _relation_owners() -> list:
    """``(owner, build, declarations, defaults, others)`` for every declaring owner: ``others`` gives values of an
    undeclared parameter a condition is on (``optimizer`` of RegularizedClassifier), or of one whose form
    generates none."""
    owners = []
    for group, name in PLUGINS:
        cls = load_plugin(group, name)
        owners.append((name, cls, declared_parameters(cls), signature_defaults(cls.__init__), {}))
    for cls in SETTINGS:
        owners.append((cls.__name__, cls, declared_parameters(cls), signature_defaults(cls), {}))
    for name, (function, positional) in _loaders().items():
        build = (lambda f, p: lambda **kw: f(*p, **kw))(function, positional)
        owners.append((name, build, function.parameters, signature_defaults(function), {}))
    model, data = _tiny_problem()
    for name, (function, required) in FUNCTIONS.items():
        def build(function=function, required=required, name=name, **kw):
            if name == "default_attacks":
                return function(**kw)
            if name == "certified_radii":
                return function(model, *data, **kw)
            return function(model, data, **{**required, **kw})
        owners.append((name, build, function.parameters, signature_defaults(function), {}))
    try:
        from rkhsreg.lightning.mnist_data import MNISTSubset
        owners.append(("MNISTSubset", MNISTSubset, MNISTSubset.parameters, signature_defaults(MNISTSubset.__init__),
                       {"augment_kwargs": [{"max_displacement": 1.0}]}))   # InstanceOf(dict) generates no value
        from rkhsreg.lightning import RegularizedClassifier
        from rkhsreg.lightning.classifier import CLASSIFIER_PARAMETERS
    except ImportError:
        return owners
    owners.append(("RegularizedClassifier", lambda **kw: RegularizedClassifier(**{"model": nn.Linear(4, 3), **kw}),
                   CLASSIFIER_PARAMETERS, signature_defaults(RegularizedClassifier.__init__),
                   {"optimizer": ["sgd", "adam"]}))
    from rkhsreg.lightning import RKHSNormMonitor, RKHSRegularization, RobustAccuracy
    for cls in (RKHSNormMonitor, RKHSRegularization, RobustAccuracy):
        owners.append((cls.__name__, cls, cls.parameters, signature_defaults(cls.__init__),
                       {"probe": [None, torch.rand(2, 1, 8, 8)]}))   # InstanceOf(Tensor, ...) generates no value
    return owners


def _other_values(declarations: dict, others: dict, other: str) -> list:
    if other in others:
        return list(others[other])
    return [stored for _, stored in _generated(declarations[other])[1]]


RELATIONS = [(owner, name, i) for owner, _, declarations, _, _ in _relation_owners()
             for name, chain in _relations(declarations).items() for i in range(len(chain))]


def test_the_conditional_options_are_declared_where_the_misuse_rounds_found_them():
    declared = {(owner, name) for owner, name, _ in RELATIONS}
    for case in [("adversarial_perturbation", "budget"), ("adversarial_perturbation", "target"),
                 ("adversarial_perturbation", "check_every"), ("adversarial_deformation", "num_deformations"),
                 ("adversarial_deformation", "steps"), ("adversarial_deformation", "step_size"),
                 ("adversarial_deformation", "translation"), ("spectral_norm_projection", "input_shape"),
                 ("spectral_norm", "input_shape"), ("DeformationBudget", "translation"),
                 ("select_indices", "seed"), ("SanityChecks", "examples"), ("MNISTSubset", "augment_clamp"),
                 ("RegularizedClassifier", "momentum")]:
        assert case in declared, case


@pytest.mark.parametrize("owner, name, index", RELATIONS, ids=[f"{o}:{n}:{i}" for o, n, i in RELATIONS])
def test_an_option_given_where_it_has_no_effect_is_refused(owner, name, index):
    """Generated from the declarations: for every :class:`OnlyWhen` condition of a parameter, a valid value other
    than its default, given while that condition is false (its other conditions true), raises ParameterError naming
    it and the condition (and is accepted while the conditions hold); for every :class:`AtMost`, a value above the
    other parameter's."""
    _, build, declarations, defaults, others = next(o for o in _relation_owners() if o[0] == owner)
    relation = _relations(declarations)[name][index]
    enabling = {r.other: next(v for v in _other_values(declarations, others, r.other) if r.holds(v))
                for r in _relations(declarations)[name] if r is not relation and isinstance(r, OnlyWhen)}
    assert relation.other in defaults or relation.other in others or relation.other in declarations, \
        f"{owner}: {name} is declared relative to {relation.other!r}, which {owner} does not take"
    valid = [(g, s) for g, s in _generated(relation)[1] + [(v, v) for v in others.get(name, [])]
             if not _same_value(s, defaults[name])]
    assert valid, f"{owner}: no value of {name} other than its default generated"
    given = valid[0][0]
    if isinstance(relation, OnlyWhen):
        false = [v for v in _other_values(declarations, others, relation.other) if not relation.holds(v)]
        assert false, f"{owner}: no value of {relation.other} generated under which {name} has no effect"
        with pytest.raises(ParameterError) as info:
            build(**{**enabling, name: given, relation.other: false[0]})
        assert info.value.parameter == name and "has no effect" in str(info.value), str(info.value)
        assert relation.text in str(info.value) and f"{relation.other}=" in str(info.value), str(info.value)
        true = [v for v in _other_values(declarations, others, relation.other) if relation.holds(v)]
        if true:   # the same value is accepted where it applies (by the declarations: no work is run)
            validate_params(declarations, {**enabling, name: given, relation.other: true[0]}, defaults=defaults)
    else:
        assert isinstance(relation, AtMost)
        bound = _other_values(declarations, others, relation.other)[0]
        value = validate_param(name, float(bound) + 1.0, relation)
        with pytest.raises(ParameterError) as info:
            build(**{name: value, relation.other: bound})
        assert info.value.parameter == name and f"larger than {relation.other}" in str(info.value), str(info.value)
        validate_params(declarations, {name: float(bound), relation.other: bound}, defaults=defaults)
