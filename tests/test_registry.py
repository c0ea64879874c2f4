"""The entry-point registry: discovery, suggestions, argument checks, validation and disabling."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

import rkhsreg
from rkhsreg import ConfigurationError, PluginNotFoundError, PluginValidationError
from rkhsreg import _registry

BUILTIN_PENALTIES = {"adversarial_perturbation", "adversarial_deformation", "gradient_norm", "tangent_propagation",
                     "loss_gradient", "adversarial_training", "spectral_norm"}


def test_builtins_and_third_party_example_are_listed_sorted() -> None:
    names = rkhsreg.list_penalties()
    assert names == sorted(names)
    assert BUILTIN_PENALTIES <= set(names)
    assert "logit_squeezing" in names  # plugins/rkhsreg-logit-squeezing, found by its entry point only
    assert rkhsreg.list_constraints() == ["spectral_norm_projection"]


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(PluginNotFoundError, match="did you mean 'adversarial_perturbation'"):
        rkhsreg.create_penalty("adversarial_perturbaton")
    with pytest.raises(KeyError):  # also a KeyError, for users who catch that
        rkhsreg.create_constraint("nothing_like_it")


def test_unknown_argument_is_named_with_a_suggestion() -> None:
    with pytest.raises(ConfigurationError, match="unknown argument 'epsilno'.*did you mean 'epsilon'"):
        rkhsreg.create_penalty("adversarial_perturbation", epsilno=1.0)
    with pytest.raises(ConfigurationError, match="unknown argument 'eps'.*did you mean 'epsilon'"):   # not 'steps'
        rkhsreg.create_penalty("adversarial_perturbation", eps=1.0)


def test_a_plugin_of_another_kind_is_named_as_such() -> None:
    """A constraint passed as a penalty (or the reverse) says what it is and where it goes, not a near-miss name."""
    with pytest.raises(PluginNotFoundError, match=r"'spectral_norm_projection' is a registered constraint, not a "
                                                  r"penalty; pass it among the constraints \(constraints="):
        rkhsreg.create_penalty("spectral_norm_projection")
    with pytest.raises(PluginNotFoundError, match="'gradient_norm' is a registered penalty, not a constraint"):
        rkhsreg.create_constraint("gradient_norm")


def test_bad_plugin_fails_at_load_naming_it(monkeypatch) -> None:
    fake = {"broken": EntryPoint(name="broken", value="builtins:object", group="rkhsreg.penalties"),
            "missing": EntryPoint(name="missing", value="no_such_module_xyz:Thing", group="rkhsreg.penalties")}
    monkeypatch.setattr(_registry, "_entry_points", lambda group: fake)
    with pytest.raises(PluginValidationError, match="'broken'.*not a subclass of rkhsreg.Penalty"):
        rkhsreg.create_penalty("broken")
    with pytest.raises(PluginValidationError, match="'missing'.*failed to import"):
        rkhsreg.create_penalty("missing")


class WrongBound(rkhsreg.Penalty):
    name = "wrong_bound"
    rkhs_bound = "lowr"

    def estimate(self, model, inputs, targets):
        return inputs.sum() * 0


def test_every_registered_penalty_and_constraint_declares_what_it_bounds(monkeypatch) -> None:
    """``rkhs_bound`` (a lower bound of ‖f‖_H, an upper one, or neither) is the one classification: every built-in
    sets it in its own class, the README's plugin table shows the same, and a plugin declaring another value is
    refused at load."""
    import re
    from pathlib import Path

    from rkhsreg._plugin import BOUNDS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\w+)`(?: \(constraint\))? \| (\w+|—) \|", readme, re.M))
    shown = {"lower": "lower", "upper": "upper", None: "baseline"}
    for group, names in (("rkhsreg.penalties", rkhsreg.list_penalties()),
                         ("rkhsreg.constraints", rkhsreg.list_constraints())):
        for name in names:
            cls = _registry.load_plugin(group, name)
            assert cls.rkhs_bound in BOUNDS, name
            if cls.__module__.startswith("rkhsreg."):
                assert "rkhs_bound" in vars(cls), f"{name} does not declare rkhs_bound itself"
                assert table.get(name) == shown[cls.rkhs_bound], f"README's bound of {name}"
    fake = {"wrong_bound": EntryPoint(name="wrong_bound", value=f"{__name__}:WrongBound", group="rkhsreg.penalties")}
    monkeypatch.setattr(_registry, "_entry_points", lambda group: fake)
    with pytest.raises(PluginValidationError, match=r"'wrong_bound'.*declares rkhs_bound='lowr'; it must be one of "
                                                    r"'lower', 'upper', None"):
        rkhsreg.create_penalty("wrong_bound")


def test_plugins_can_be_disabled_by_name(monkeypatch) -> None:
    monkeypatch.setenv("RKHSREG_DISABLE_PLUGINS", "logit_squeezing, gradient_norm")
    names = rkhsreg.list_penalties()
    assert "logit_squeezing" not in names and "gradient_norm" not in names
    with pytest.raises(PluginNotFoundError):
        rkhsreg.create_penalty("gradient_norm")


def test_unknown_group() -> None:
    with pytest.raises(ConfigurationError, match="group"):
        _registry.list_plugins("rkhsreg.nothing")


def test_two_distributions_registering_one_name_are_refused_naming_both(tmp_path, monkeypatch) -> None:
    """A throw-away distribution on sys.path declares a penalty under a built-in's name."""
    info = tmp_path / "clashing_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: clashing-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[rkhsreg.penalties]\ngradient_norm = clashing_plugin:Other\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginValidationError, match="'gradient_norm'") as info:
        rkhsreg.list_penalties()
    assert "GradientNorm (from rkhsreg)" in str(info.value)
    assert "clashing_plugin:Other (from clashing-plugin)" in str(info.value)
    monkeypatch.setenv("RKHSREG_DISABLE_PLUGINS", "gradient_norm")  # the documented way out
    assert "gradient_norm" not in rkhsreg.list_penalties()


def _throwaway_distribution(root, name: str, entry_points: str, module: str | None = None) -> None:
    """A distribution on sys.path (dist-info + optional module), as `pip install` of a plugin would leave it."""
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    if module is not None:
        (root / f"{name.replace('-', '_')}.py").write_text(module)


SHIFT = '''
import torch
from rkhsreg import Attack


class Shift(Attack):
    """Moves every pixel by the same amount, ε in ℓ2."""

    name = "shift"

    def __init__(self, *, sign: float = 1.0):
        self.sign = sign

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):
        return (inputs + self.sign * epsilon / inputs[0].numel() ** 0.5).clamp(0, 1)


class NotAnAttack:
    pass
'''


def test_a_third_party_attack_is_found_and_runs_in_the_ensemble(tmp_path, monkeypatch) -> None:
    pytest.importorskip("torchattacks")
    from rkhsreg.evaluation import evaluate_robustness
    from rkhsreg.evaluation.ensemble import resolve_attacks
    from rkhsreg.evaluation.settings import AttackSettings
    from tests._evaluation_helpers import linear_problem

    _throwaway_distribution(tmp_path, "shift-attack", "[rkhsreg.attacks]\nshift = shift_attack:Shift\n", SHIFT)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "shift" in rkhsreg.list_attacks() and "square" in rkhsreg.list_attacks()
    assert [a.name for a in resolve_attacks(["default", "shift"], "l2", 10, steps=3)] == \
        ["fab-t", "apgd-ce", "apgd-t", "shift"]
    assert rkhsreg.create_attack("shift", sign=-1.0).sign == -1.0
    model, x, y, _ = linear_problem(n=8)
    result = evaluate_robustness(model, (x, y), epsilons=[0.1], attack=AttackSettings(attacks=["shift"]),
                                 sanity=False)
    assert [s["attack"] for s in result.stages] == ["shift"]


def test_attack_plugins_are_validated_and_unique(tmp_path, monkeypatch) -> None:
    _throwaway_distribution(tmp_path, "odd-attacks", "[rkhsreg.attacks]\nodd = odd_attacks:NotAnAttack\n"
                            "square = odd_attacks:Shift\n", SHIFT)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginValidationError, match="'square'") as info:
        rkhsreg.list_attacks()
    assert "Square (from rkhsreg)" in str(info.value) and "odd_attacks:Shift (from odd-attacks)" in str(info.value)
    monkeypatch.setenv("RKHSREG_DISABLE_PLUGINS", "square")
    with pytest.raises(PluginValidationError, match="not a subclass of rkhsreg.Attack"):
        rkhsreg.create_attack("odd")
