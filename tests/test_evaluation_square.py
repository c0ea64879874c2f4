"""Square (opt-in, gradient-free): breaks what masked gradients hide, leaves the global RNG alone; attack names."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("torchattacks")

from rkhsreg import ConfigurationError  # noqa: E402
from rkhsreg.evaluation import Square, evaluate_robustness  # noqa: E402
from rkhsreg.evaluation.ensemble import check_attacks, resolve_attacks  # noqa: E402
from rkhsreg.evaluation.settings import AttackSettings, SanityChecks  # noqa: E402
from tests._evaluation_helpers import Masked, linear_problem  # noqa: E402


@pytest.fixture(scope="module")
def masked():
    model, x, y, true = linear_problem(n=24)
    return Masked(model), x, y, true


def test_square_breaks_what_masked_gradients_hide(masked):
    model, x, y, true = masked
    eps = [0.3, 0.6]
    common = dict(epsilons=eps, batch_size=32, sanity=SanityChecks(noise_samples=0, examples=0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gradient = evaluate_robustness(model, (x, y), attack=AttackSettings(steps=10), **common)
        with pytest.warns(Warning, match="gradient-free attacks \\(square\\) found [1-9]"):
            both = evaluate_robustness(model, (x, y), attack=AttackSettings(attacks=["default", Square(queries=300)],
                                                                            steps=10), **common)
    assert [a["name"] for a in both.attacks] == ["fab", "apgd-ce", "square"]
    # zero gradients: FAB and APGD-CE leave examples the linear model's closed form says are breakable
    broken_truly = [float((true <= e).double().mean()) for e in eps]
    assert gradient.robust_accuracy[-1] > 1 - broken_truly[-1] + 0.1
    assert all(b <= g for b, g in zip(both.robust_accuracy, gradient.robust_accuracy))
    assert both.robust_accuracy[-1] < gradient.robust_accuracy[-1]
    # every distance is a real adversarial example: never below the exact minimal distance
    assert torch.all(both.distances >= true * (1 - 1e-4))
    check = both.sanity["checks"]["gradient_free"]
    assert not check["passed"] and check["by_attack"]["square"] >= 1
    squares = [s for s in both.stages if s["attack"] == "square"]
    assert squares and all(s["epsilon"] is not None for s in squares)
    # at each ε Square runs after the gradient attacks, on what they left
    for stage in squares:
        ce = next(s for s in both.stages if s["attack"] == "apgd-ce" and s["epsilon"] == stage["epsilon"])
        assert stage["attacked"] == ce["attacked"] - ce["successes"]


def test_square_is_reproducible_and_leaves_the_global_rng(masked):
    model, x, y, _ = masked
    attack = Square(queries=50)
    state = torch.get_rng_state()
    a = attack.perturb(model, x[:8], y[:8], epsilon=0.5, norm="l2", seed=3)
    assert torch.equal(state, torch.get_rng_state())
    b = attack.perturb(model, x[:8], y[:8], epsilon=0.5, norm="l2", seed=3)
    c = attack.perturb(model, x[:8], y[:8], epsilon=0.5, norm="l2", seed=4)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert float((a - x[:8]).flatten(1).norm(dim=1).max()) <= 0.5 + 1e-5
    assert Square(queries=50).settings() == {"queries": 50, "restarts": 1, "p_init": 0.8, "loss": "margin"}


def test_attack_names_resolve_and_bad_ones_are_refused():
    assert [a.name for a in resolve_attacks(None, "l2", 10, steps=7)] == ["fab-t", "apgd-ce", "apgd-t"]
    ensemble = resolve_attacks(["default", "square"], "linf", 10, steps=7)
    assert [a.name for a in ensemble] == ["fab-t", "apgd-ce", "apgd-t", "square"]
    assert ensemble[1].steps == 7 and ensemble[3].queries == 5000
    assert [a.name for a in resolve_attacks(["apgd-ce", "noise"], "l2", 2)] == ["apgd-ce", "noise"]
    with pytest.raises(ConfigurationError, match="unknown attack 'sqare'; did you mean 'square'\\?"):
        check_attacks(["default", "sqare"])
    with pytest.raises(ConfigurationError, match="lists 'apgd-ce' more than once"):
        check_attacks(["apgd-ce", "apgd-ce"])
    with pytest.raises(ConfigurationError, match="lists 'apgd-ce' next to 'default', which already runs it"):
        resolve_attacks(["default", "apgd-ce"], "l2", 10)
    with pytest.raises(ConfigurationError, match=r"give 'apgd-dlr' twice \('default' runs fab-t, apgd-ce, apgd-dlr"):
        resolve_attacks(["default", "apgd-dlr"], "l2", 3)     # with 3 classes 'default' holds apgd-dlr
    with pytest.raises(ConfigurationError, match="attacks=\\[3\\] is not allowed"):
        check_attacks([3])
    with pytest.raises(ConfigurationError, match="queries=0 is out of range"):
        Square(queries=0)
