"""‖f‖²_δ against closed forms, an independent brute-force search, and its side-effect contract."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from rkhsreg import ConfigurationError, InputError, create_penalty
from rkhsreg.penalties.adversarial_perturbation import (DEFAULT_BUDGET, WARN_RATIO, AdversarialPerturbation,
                                                        SearchBudgetWarning)
from tests.conftest import assert_same_snapshot, snapshot


def linear_model(weight: torch.Tensor) -> nn.Module:
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return nn.Sequential(nn.Flatten(), layer)


def test_per_class_linear_closed_form_l2() -> None:
    w = torch.randn(5, 12, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 3, 2, 2)
    for candidates in (1, "all"):
        value = AdversarialPerturbation(epsilon=0.7, candidates=candidates)(linear_model(w), x)
        expected = 0.7 ** 2 * w.pow(2).sum()
        torch.testing.assert_close(value, expected, rtol=1e-3, atol=0)


def test_per_class_linear_closed_form_linf() -> None:
    w = torch.randn(4, 6, generator=torch.Generator().manual_seed(1))
    value = AdversarialPerturbation(epsilon=0.1, norm="linf")(linear_model(w), torch.randn(3, 6))
    torch.testing.assert_close(value, 0.1 ** 2 * w.abs().sum(1).pow(2).sum(), rtol=1e-3, atol=0)


def test_joint_linear_equals_top_singular_value() -> None:
    u, _, vh = torch.linalg.svd(torch.randn(6, 10, generator=torch.Generator().manual_seed(2)), full_matrices=False)
    w = u @ torch.diag(torch.tensor([3.0, 1.5, 1.0, 0.5, 0.2, 0.1])) @ vh
    penalty = AdversarialPerturbation(epsilon=0.5, mode="joint", steps=100, step_size=0.5)
    value = penalty(linear_model(w), torch.randn(4, 10))
    torch.testing.assert_close(value, 0.5 ** 2 * torch.linalg.matrix_norm(w, ord=2) ** 2, rtol=1e-3, atol=0)


def test_gradient_wrt_weights_linear_closed_form() -> None:
    w = torch.randn(3, 5, generator=torch.Generator().manual_seed(3))
    model = linear_model(w)
    AdversarialPerturbation(epsilon=0.3)(model, torch.randn(4, 5)).backward()
    # value = Σ_k (W_k·δ_k)² with δ_k = ε W_k/‖W_k‖ detached  ⇒  ∂/∂W_k = 2 ε² W_k
    torch.testing.assert_close(model[1].weight.grad, 2 * 0.3 ** 2 * w, rtol=1e-4, atol=1e-6)


def brute_force(model: nn.Module, x: torch.Tensor, epsilon: float, steps: int) -> torch.Tensor:
    """One PGD per (class, example), written from the paper's description."""
    model.eval()
    clean = model(x).detach()
    total = torch.zeros(())
    for k in range(clean.shape[1]):
        best = -float("inf")
        for i in range(x.shape[0]):
            delta = torch.zeros_like(x[i:i + 1])
            for _ in range(steps):
                delta.requires_grad_(True)
                (g,) = torch.autograd.grad(model(x[i:i + 1] + delta)[0, k], delta)
                with torch.no_grad():
                    delta = delta + 1.5 * epsilon / steps * g / g.norm()
                    delta = delta * min(1.0, epsilon / delta.norm().item())
            with torch.no_grad():
                best = max(best, (model(x[i:i + 1] + delta)[0, k] - clean[i, k]).item())
        total = total + best ** 2
    return total


def test_exhaustive_matches_brute_force_and_candidates_never_exceed_it(small_cnn, image_batch) -> None:
    x, y = image_batch
    small_cnn.eval()
    exhaustive = AdversarialPerturbation(epsilon=0.5, candidates="all")(small_cnn, x, y)
    torch.testing.assert_close(exhaustive, brute_force(small_cnn, x, 0.5, 5), rtol=1e-4, atol=1e-7)
    for c in (1, 2, 3):
        assert AdversarialPerturbation(epsilon=0.5, candidates=c)(small_cnn, x, y) <= exhaustive * (1 + 1e-6)


@pytest.mark.parametrize("candidates", ["all", 2])
def test_pgd_in_chunks_of_max_rows_gives_the_same_value_and_passes(small_cnn, image_batch, candidates) -> None:
    x, y = image_batch
    small_cnn.eval()
    whole = AdversarialPerturbation(epsilon=0.5, candidates=candidates, max_rows=10_000)
    reference = whole(small_cnn, x, y)
    for max_rows in (1, 3, None):                     # None: chunks of the batch size
        chunked = AdversarialPerturbation(epsilon=0.5, candidates=candidates, max_rows=max_rows)
        torch.testing.assert_close(chunked(small_cnn, x, y), reference, rtol=1e-5, atol=1e-7)
        assert chunked.last_passes.forward == pytest.approx(whole.last_passes.forward)
        assert chunked.last_passes.backward == pytest.approx(whole.last_passes.backward)


def test_true_plus_all_other_classes_equals_all_classes(small_cnn, image_batch) -> None:
    x, y = image_batch
    full = AdversarialPerturbation(epsilon=0.5)(small_cnn, x, y)
    subset = AdversarialPerturbation(epsilon=0.5, classes=3)(small_cnn, x, y)
    torch.testing.assert_close(subset, full)
    assert AdversarialPerturbation(epsilon=0.5, classes=0)(small_cnn, x, y) <= full


def test_zero_gradient_gives_zero_not_nan() -> None:
    model = linear_model(torch.zeros(3, 4))
    value = AdversarialPerturbation(epsilon=1.0)(model, torch.randn(2, 4))
    value.backward()
    assert value.item() == 0.0 and torch.isfinite(model[1].weight.grad).all()
    joint = AdversarialPerturbation(epsilon=1.0, mode="joint")(model, torch.randn(2, 4))
    assert joint.item() == 0.0


@pytest.mark.parametrize("kwargs", [{}, {"mode": "joint"}, {"norm": "linf", "epsilon": 0.1}, {"classes": 1},
                                    {"eval_mode": False}])
def test_no_side_effects(small_cnn, image_batch, kwargs) -> None:
    x, y = image_batch
    small_cnn(x).sum().backward()  # pre-existing .grad must survive untouched
    before = snapshot(small_cnn)
    value = AdversarialPerturbation(**kwargs)(small_cnn, x, y)
    assert_same_snapshot(before, snapshot(small_cnn))
    assert torch.isfinite(value)


def test_eval_mode_false_backward_works_with_batchnorm(small_cnn, image_batch) -> None:
    x, y = image_batch
    AdversarialPerturbation(eval_mode=False)(small_cnn, x, y).backward()
    assert small_cnn.head.weight.grad is not None


def test_bfloat16_close_to_float32(image_batch) -> None:
    x, _ = image_batch
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    ref = AdversarialPerturbation(epsilon=0.5)(model, x)
    low = AdversarialPerturbation(epsilon=0.5)(model.to(torch.bfloat16), x.to(torch.bfloat16))
    torch.testing.assert_close(low.float(), ref, rtol=5e-2, atol=1e-6)


def test_joint_random_start_is_reproducible_and_resumable(small_cnn, image_batch) -> None:
    x, y = image_batch
    a, b = AdversarialPerturbation(mode="joint", seed=3), AdversarialPerturbation(mode="joint", seed=3)
    a(small_cnn, x, y)
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(small_cnn, x, y), b(small_cnn, x, y), rtol=0, atol=0)


def test_passes_are_counted_and_far_below_exhaustive(small_cnn, image_batch) -> None:
    x, y = image_batch
    cheap, full = AdversarialPerturbation(candidates=1), AdversarialPerturbation(candidates="all")
    cheap(small_cnn, x, y), full(small_cnn, x, y)
    assert 0 < cheap.last_passes.forward < full.last_passes.forward
    # exhaustive, K = 4 classes, n = 6, 5 steps: the ranking (1 forward, K input backwards) is its first step, then
    # 4 steps of K·n rows, the K·n rows' final forward, and the 2K selected rows with a graph
    k, n, steps = 4, 6, 5
    assert full.last_passes.forward == pytest.approx(1 + k * (steps - 1) + k + 2 * k / n)
    assert full.last_passes.backward == pytest.approx(k + k * (steps - 1) + 2 * k / n)


@pytest.mark.parametrize("kwargs, match", [
    ({"epsilon": -1.0}, "epsilon"), ({"epsilon": float("nan")}, "epsilon"), ({"epsilon": float("inf")}, "epsilon"),
    ({"steps": 0}, "steps"), ({"norm": "l3"}, "norm"), ({"mode": "both"}, "mode"), ({"candidates": 0}, "candidates"),
    ({"classes": -1}, "classes"), ({"clip": (1, 0)}, "clip"), ({"weight": -0.1}, "weight"),
    ({"max_rows": 0}, "max_rows"), ({"max_rows": 2.5}, "max_rows"),
])
def test_bad_arguments(kwargs, match) -> None:
    with pytest.raises(ConfigurationError, match=match):
        create_penalty("adversarial_perturbation", **kwargs)


def test_classes_subset_needs_targets(small_cnn, image_batch) -> None:
    with pytest.raises(InputError, match="targets"):
        AdversarialPerturbation(classes=1)(small_cnn, image_batch[0], None)


class CurvedWinner(nn.Module):
    """f_0(x) = a·x_0 + b·x_0² with (a, b) read from each example's coordinates 1 and 2 (not perturbed: detached);
    f_1 = 0. Examples with b = 0 and a = 1 gain ε; the one with a = 0.05, b = 10 has the smallest gradient at x
    but gains ≈ 10ε², so a first-order ranking puts the winner last."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = x.flatten(1)
        a, b = z[:, 1].detach(), z[:, 2].detach()
        f0 = self.scale * (a * z[:, 0] + b * z[:, 0] ** 2)
        return torch.stack([f0, torch.zeros_like(f0)], dim=1)


def curved_batch(n: int = 12) -> torch.Tensor:
    x = torch.zeros(n, 3)
    x[:, 1] = 1.0
    x[-1, 1], x[-1, 2] = 0.05, 10.0   # the winner, ranked last by its gradient norm
    return x


def test_first_order_ranking_misses_a_curved_winner_that_auto_finds() -> None:
    model, x = CurvedWinner(), curved_batch()
    exhaustive = AdversarialPerturbation(epsilon=1.0, candidates="all")(model, x)
    fixed = AdversarialPerturbation(epsilon=1.0, candidates=4)(model, x)
    assert fixed < 0.5 * exhaustive                       # today's ranking fails here
    auto = AdversarialPerturbation(epsilon=1.0, target=0.995)
    with pytest.warns(SearchBudgetWarning, match=r"the cheapest search, plan \(1, 1\) \(pool, keep\): [\d.]+ passes "
                      r"a call, .* finds 0.0.* using the exhaustive search: [\d.]+ passes"):
        first = auto(model, x)                             # calibration call: the exhaustive value
    torch.testing.assert_close(first, exhaustive)
    ratios = auto.last_search["ratios"]
    assert auto.last_search["checked"] and ratios[(4, 4)] < 0.5 and ratios[(8, 8)] < 0.5
    assert auto.last_search["chosen"] == "all"
    for call in range(1, 6):                               # 2 more checks, then the chosen plan (all 12)
        assert auto(model, x) >= 0.99 * exhaustive
        assert auto.last_search["checked"] == (call < 3) and auto.last_search["plan"] == "all"


def test_calibration_reports_the_exact_value_of_every_plan(small_cnn) -> None:
    """Every plan of the ladder — pools of 4..32 of 40 examples, pruned to half or a quarter after 2 steps or not,
    the first step taken from the ranking's gradients — run on its own finds the value the calibration read off
    the exhaustive run's recorded trajectories."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(40, 1, 8, 8, generator=g)
    small_cnn.eval()
    auto = AdversarialPerturbation(epsilon=2.0, target=1.0)
    value = auto(small_cnn, x)
    ratios, exhaustive = auto.last_search["ratios"], auto.last_search["exhaustive"]
    assert {(4, 4), (8, 8), (8, 2), (16, 8), (16, 4), (32, 32), (32, 8), (40, 40)} <= set(ratios)
    torch.testing.assert_close(value, AdversarialPerturbation(epsilon=2.0, candidates="all")(small_cnn, x))
    assert len({round(r, 6) for r in ratios.values()}) > 2            # the plans do differ on this batch
    tol = 1e-5 if value.dtype == torch.float32 else 1e-10
    for plan, ratio in ratios.items():
        direct = AdversarialPerturbation(epsilon=2.0, candidates=plan)(small_cnn, x).item()
        assert ratio * exhaustive == pytest.approx(direct, rel=tol, abs=tol * exhaustive), plan
    assert auto.last_search["mean"] == auto.last_search["worst"] == ratios   # one check so far
    cost = auto.last_search["cost"]
    ladder = sorted(cost, key=lambda plan: (cost[plan], plan))
    chosen = next(plan for plan in ladder if ratios[plan] >= 1.0)   # the cheapest plan reaching the target
    assert auto.last_search["chosen"] == (chosen if chosen != (40, 40) else "all")


@pytest.mark.parametrize("kwargs, schedule", [
    ({"target": 0.995}, [True, True, True, True, False, False, True]),   # the first 3 calls, then every 3rd
    ({"budget": 40}, [True, False, False, True, False, False, True]),    # the first call, then every 3rd
])
def test_auto_checks_on_schedule_and_resumes_from_its_state(small_cnn, image_batch, kwargs, schedule) -> None:
    x, _ = image_batch
    small_cnn.eval()
    auto = AdversarialPerturbation(epsilon=0.5, check_every=3, **kwargs)
    checked = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SearchBudgetWarning)
        for _ in range(7):
            auto(small_cnn, x)
            checked.append(auto.last_search["checked"])
    assert checked == schedule
    state = auto.state_dict()
    resumed = AdversarialPerturbation(epsilon=0.5, check_every=3, **kwargs)
    resumed.load_state_dict(state)
    for _ in range(3):
        a, b = auto(small_cnn, x), resumed(small_cnn, x)
        assert a.item() == b.item() and auto.last_search == resumed.last_search


@pytest.mark.parametrize("kwargs, name", [({"candidates": "aut"}, "candidates"), ({"candidates": (2, 3)}, "candidates"),
                                          ({"candidates": (4,)}, "candidates"), ({"candidates": (0, 0)}, "candidates"),
                                          ({"check_every": 0}, "check_every"),
                                          ({"target": 1.5}, "target"), ({"target": 0.0}, "target"),
                                          ({"budget": 0}, "budget"), ({"budget": -3.0}, "budget"),
                                          ({"budget": float("inf")}, "budget")])
def test_auto_arguments_are_checked(kwargs, name) -> None:
    with pytest.raises(ConfigurationError, match=name):
        AdversarialPerturbation(**kwargs)


def test_auto_needs_every_recent_check_so_one_easy_batch_does_not_decide() -> None:
    model, hard = CurvedWinner(), curved_batch()
    easy = hard.clone()
    easy[-1, 1] = 2.0                      # the curved example now also has the largest gradient: ranked first
    auto = AdversarialPerturbation(epsilon=1.0, check_every=1, target=0.995)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        auto(model, easy)
        cost = auto.last_search["cost"]
        cheapest = min(cost, key=lambda plan: (cost[plan], plan))     # (1, 1): the best example of each class
        assert auto.last_search["chosen"] == cheapest and auto.last_search["ratios"][cheapest] == 1.0
        auto(model, hard)
        assert auto.last_search["chosen"] == "all"
        auto(model, easy)                  # the cheapest is exact here again, but not on every one of the checks
        assert auto.last_search["ratios"][cheapest] == 1.0 and auto.last_search["worst"][cheapest] < 0.5
        assert auto.last_search["chosen"] == "all"
        for _ in range(3):                 # easy batches again: the hard one still counts among the last 10 checks
            auto(model, easy)
        assert auto.last_search["checked"] and auto.last_search["worst"][cheapest] < 0.5
        assert auto.last_search["mean"][cheapest] > auto.last_search["worst"][cheapest]
        assert auto.last_search["chosen"] == "all"
        for _ in range(9):                 # 10 easy checks later the hard batch has left the window
            auto(model, easy)
        assert auto.last_search["worst"][cheapest] == 1.0 and auto.last_search["chosen"] == cheapest


def test_the_budget_caps_the_passes_and_takes_the_best_measured_plan_within_it(small_cnn) -> None:
    """Default ``candidates="auto"``: the plan is the best mean value ratio among those whose cost, the checks
    amortised in, fits the budget; every call between two checks spends exactly that plan's passes, as counted by
    ``last_passes``; ``diagnostics()`` reports the ratio it measured."""
    g = torch.Generator().manual_seed(3)
    x = torch.rand(64, 1, 8, 8, generator=g)
    small_cnn.eval()
    auto = AdversarialPerturbation(epsilon=2.0, check_every=10)
    assert auto.budget == DEFAULT_BUDGET and auto.target is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SearchBudgetWarning)
        first = auto(small_cnn, x)
    search = auto.last_search
    cost, amortised, mean = search["cost"], search["amortised"], search["mean"]
    exhaustive_passes = auto.last_passes.forward + auto.last_passes.backward
    assert exhaustive_passes == pytest.approx(cost[(64, 64)])          # the check ran the exhaustive search
    torch.testing.assert_close(first, AdversarialPerturbation(epsilon=2.0, candidates="all")(small_cnn, x))
    fits = [plan for plan in cost if amortised[plan] <= DEFAULT_BUDGET]
    assert fits and (64, 64) not in fits
    chosen = search["chosen"]
    assert chosen in fits and mean[chosen] == max(mean[plan] for plan in fits)
    assert auto.diagnostics() == {"value_ratio": mean[chosen], "value_ratio_worst": search["worst"][chosen]}
    for _ in range(3):
        value = auto(small_cnn, x)
        assert not auto.last_search["checked"] and auto.last_search["plan"] == chosen
        assert auto.last_passes.forward + auto.last_passes.backward == pytest.approx(cost[chosen])
        torch.testing.assert_close(value.detach(), torch.tensor(mean[chosen] * search["exhaustive"],
                                                                dtype=value.dtype), rtol=1e-4, atol=1e-7)
    # amortised over the schedule (one check, then 9 calls of the plan): within the budget
    assert (exhaustive_passes + 9 * cost[chosen]) / 10 == pytest.approx(amortised[chosen])
    assert amortised[chosen] <= DEFAULT_BUDGET
    # a budget that covers the exhaustive search finds everything, with the cheapest plan that does
    wide_budget = AdversarialPerturbation(epsilon=2.0, budget=cost[(64, 64)])
    wide_budget(small_cnn, x)
    assert wide_budget.diagnostics()["value_ratio"] == 1.0
    exact = [plan for plan in cost if search["ratios"][plan] == 1.0]
    best = min(exact, key=lambda plan: (cost[plan], plan))
    assert wide_budget.last_search["chosen"] == (best if best != (64, 64) else "all")


def test_a_low_value_ratio_within_the_budget_is_said_once_with_the_budget_that_restores_it() -> None:
    model, x = CurvedWinner(), curved_batch()   # every plan short of the whole batch misses the winner
    auto = AdversarialPerturbation(epsilon=1.0, check_every=2)
    with pytest.warns(SearchBudgetWarning, match=rf"within budget=15 passes .* value ratio 0.0.* below {WARN_RATIO}; "
                                                 r"budget=(\d+) would use the exhaustive search") as record:
        auto(model, x)
    restore = int(re.search(r"budget=(\d+) would", str(record[0].message)).group(1))
    assert auto.diagnostics()["value_ratio"] < 0.1 and auto.last_search["chosen"] != "all"
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchBudgetWarning)    # said once, not at every check
        for _ in range(4):
            auto(model, x)
    assert auto.last_search["checked"]
    fixed = AdversarialPerturbation(epsilon=1.0, check_every=2, budget=restore)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchBudgetWarning)
        fixed(model, x)
    assert fixed.last_search["chosen"] == "all" and fixed.diagnostics()["value_ratio"] == 1.0


def test_a_budget_below_every_plan_uses_the_cheapest_and_says_so(small_cnn, image_batch) -> None:
    x, _ = image_batch
    small_cnn.eval()
    auto = AdversarialPerturbation(epsilon=0.5, budget=2.0)
    with pytest.warns(SearchBudgetWarning, match=r"budget=2 passes is below the cheapest search, plan \(1, 1\).*"
                                                 r"ranking alone takes \d+ passes.*Pass budget >= \d+"):
        auto(small_cnn, x)
    cost = auto.last_search["cost"]
    assert auto.last_search["chosen"] == min(cost, key=lambda plan: (cost[plan], plan)) == (1, 1)


def test_the_cost_model_is_exact_when_only_some_classes_are_ranked(small_cnn) -> None:
    """``classes=k`` ranks the true class and k others (1 + k + 1 passes), with no first step reused: the passes
    ``last_passes`` counts for the check and for the plan equal the cost the choice was made on."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(48, 1, 8, 8, generator=g), torch.randint(0, 4, (48,), generator=g)
    small_cnn.eval()
    auto = AdversarialPerturbation(epsilon=1.0, classes=1, check_every=10, budget=8.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SearchBudgetWarning)
        auto(small_cnn, x, y)
        cost = auto.last_search["cost"]
        assert auto.last_passes.forward + auto.last_passes.backward == pytest.approx(cost[(48, 48)])
        auto(small_cnn, x, y)
    plan = auto.last_search["plan"]
    assert auto.last_passes.forward + auto.last_passes.backward == pytest.approx(cost[plan])
    assert 1 + 2 < cost[plan] <= 8.0          # the ranking is 1 forward + 2 input-gradient passes
