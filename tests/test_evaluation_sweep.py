"""evaluate_robustness: known answers, side-effect containment, masking warnings, argument errors."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
from torch import nn

pytest.importorskip("torchattacks")

from rkhsreg import ConfigurationError, InputError  # noqa: E402
from rkhsreg.evaluation import (APGD, FAB, Attack, MaskedGradientWarning, NondeterminismWarning,  # noqa: E402
                                RobustnessResult, default_attacks, evaluate_robustness)
from rkhsreg.evaluation.settings import AttackSettings, SanityChecks  # noqa: E402
from tests._evaluation_helpers import Masked, linear_problem, quadrant_data, trained_cnn  # noqa: E402
from tests.conftest import assert_same_snapshot, snapshot  # noqa: E402

EPS = [0.0, 0.08, 0.18, 0.32, 0.44, 0.55]



@pytest.fixture(scope="module")
def linear():
    return linear_problem(n=40)


@pytest.fixture(scope="module")
def cnn():
    return trained_cnn()


def _closed_form_curve(true: torch.Tensor, eps: list[float]) -> list[float]:
    return [float((true > e).double().mean()) for e in eps]


@pytest.mark.parametrize("order", ["descending", "ascending"])
def test_linear_distances_and_curve_match_closed_form(linear, order):
    model, x, y, true = linear
    result = evaluate_robustness(model, (x, y), epsilons=EPS, attack=AttackSettings(steps=20, order=order),
                                 batch_size=16)
    assert isinstance(result, RobustnessResult)
    correct = true > 0
    assert torch.equal(result.correct, correct)
    assert torch.all(result.distances[~correct] == 0)
    rel = result.distances[correct] / true[correct]
    assert float(rel.min()) >= 1 - 1e-4, "an upper bound below the true minimal distance: a bug in verification"
    assert float(rel.max()) <= 1.01, f"per-example distances off by {float(rel.max()) - 1:.2%}"
    assert result.clean_accuracy == pytest.approx(float(correct.double().mean()))
    # distances in [d, 1.01 d] bracket the curve between the closed form at ε and at ε / 1.01 ...
    for e, acc in zip(EPS, result.robust_accuracy):
        assert _closed_form_curve(true, [e])[0] <= acc <= _closed_form_curve(true, [e / 1.01])[0]
    # ... which coincide on this grid (no true distance within 1% of a grid point): the exact closed form
    assert all(float(((true - e).abs() / max(e, 1e-9)).min()) > 0.01 for e in EPS if e > 0)
    assert result.robust_accuracy == pytest.approx(_closed_form_curve(true, EPS))
    assert result.robust_accuracy[0] == pytest.approx(result.clean_accuracy)
    assert result.sanity["warnings"] == []


def test_result_curve_is_the_distance_tail(linear):
    model, x, y, _ = linear
    result = evaluate_robustness(model, (x, y), epsilons=[0.2, 0.4], attack=AttackSettings(steps=10), batch_size=64,
                                 sanity=False)
    for e, acc in zip(result.epsilons, result.robust_accuracy):
        assert acc == result.accuracy_at(e)
    assert result.n_examples == 40 and result.sanity == {"checks": {}, "warnings": []}


def test_no_side_effects_on_model_rng_and_grads(cnn):
    x, y = quadrant_data(24, seed=3)
    cnn.train()
    cnn.features[1].eval()  # a frozen BatchNorm: its own flag must survive
    cnn.head.weight.grad = torch.full_like(cnn.head.weight, 0.5)
    before = snapshot(cnn)
    requires = [p.requires_grad for p in cnn.parameters()]
    result = evaluate_robustness(cnn, (x, y), epsilons=[0.25, 1.0], attack=AttackSettings(steps=5), batch_size=8)
    assert_same_snapshot(before, snapshot(cnn))
    assert [p.requires_grad for p in cnn.parameters()] == requires
    assert result.clean_accuracy > 0.5
    cnn.head.weight.grad = None


def test_same_seed_same_result_and_generator_is_used(cnn):
    x, y = quadrant_data(24, seed=4)
    a = evaluate_robustness(cnn, (x, y), epsilons=[0.3], attack=AttackSettings(steps=5), seed=3, sanity=False)
    b = evaluate_robustness(cnn, (x, y), epsilons=[0.3], attack=AttackSettings(steps=5), seed=3, sanity=False)
    assert torch.equal(a.distances, b.distances)
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    evaluate_robustness(cnn, (x, y), epsilons=[0.3], attack=AttackSettings(steps=2), generator=g, sanity=False)
    assert not torch.equal(state, g.get_state())


def test_skips_examples_already_broken(cnn):
    x, y = quadrant_data(32, seed=6)
    result = evaluate_robustness(cnn, (x, y), epsilons=[0.1, 0.2, 0.4, 0.8],
                                 attack=AttackSettings(steps=5, order="ascending"), batch_size=64,
                                 sanity=False)
    fab = result.stages[0]
    assert fab["attack"] == "fab-t" and fab["epsilon"] is None
    correct = int(result.correct.sum())
    assert fab["attacked"] == correct
    for stage in result.stages[1:]:
        # never more than the examples still open at that ε, and never a misclassified one
        assert stage["attacked"] <= int((result.correct & (result.distances > stage["epsilon"] * 0)).sum())
    ce = [s for s in result.stages if s["attack"] == "apgd-ce" and s["restart"] == 0]   # not the borderline reruns
    assert [s["epsilon"] for s in ce] == sorted(s["epsilon"] for s in ce)
    assert all(later["attacked"] <= earlier["attacked"] for earlier, later in zip(ce, ce[1:]))


def test_descending_attacks_each_example_fully_at_most_once(cnn):
    x, y = quadrant_data(32, seed=6)
    result = evaluate_robustness(cnn, (x, y), epsilons=[0.1, 0.2, 0.4, 0.8], attack=AttackSettings(steps=5),
                                 batch_size=64, sanity=False)
    own = [s for s in result.stages if s["attack"] == "apgd-t" and s["restart"] == 0]   # not the borderline reruns
    targeted = sum(s["attacked"] - s["successes"] for s in own)
    assert targeted <= int(result.correct.sum())
    assert result.robust_accuracy == sorted(result.robust_accuracy, reverse=True)


def test_zeroed_gradients_trigger_masking_warning(linear):
    model, x, y, _ = linear
    with pytest.warns(MaskedGradientWarning, match="zero or non-finite input gradient"):
        result = evaluate_robustness(Masked(model), (x, y), epsilons=[0.2], attack=AttackSettings(steps=5),
                                     batch_size=64)
    assert not result.sanity["checks"]["gradients"]["passed"]


def test_saturated_logits_trigger_ce_disagreement(cnn):
    class Scaled(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(x) * 1e6  # softmax saturated even near the boundary; DLR and FAB are scale-free

    x, y = quadrant_data(32, seed=5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_robustness(Scaled(cnn), (x, y), epsilons=[0.25, 1.0], attack=AttackSettings(steps=10),
                                     batch_size=64)
    assert any("APGD-CE alone missed" in str(w.message) for w in caught)
    assert not result.sanity["checks"]["ce_agreement"]["passed"]


def test_randomised_model_warns(cnn):
    class Noisy(nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner(nn.functional.dropout(x, 0.2, training=True))

    x, y = quadrant_data(16, seed=5)
    before = torch.get_rng_state()
    with pytest.warns(NondeterminismWarning, match="randomised or non-deterministic"):
        evaluate_robustness(Noisy(cnn), (x, y), epsilons=[0.25], attack=AttackSettings(steps=2), batch_size=64,
                            sanity=SanityChecks(noise_samples=0, examples=0))
    assert torch.equal(before, torch.get_rng_state())


def test_data_as_loader_and_dataset(linear):
    model, x, y, _ = linear
    dataset = torch.utils.data.TensorDataset(x, y)
    loader = torch.utils.data.DataLoader(dataset, batch_size=7)
    a = evaluate_robustness(model, loader, epsilons=[0.2], attack=AttackSettings(steps=5), n_examples=20, sanity=False)
    b = evaluate_robustness(model, dataset, epsilons=[0.2], attack=AttackSettings(steps=5), n_examples=20, sanity=False)
    c = evaluate_robustness(model, (x[:20], y[:20]), epsilons=[0.2], attack=AttackSettings(steps=5), sanity=False)
    assert a.n_examples == b.n_examples == c.n_examples == 20
    assert torch.equal(a.distances, c.distances) and torch.equal(b.distances, c.distances)


def test_other_bounds_and_rank_2_inputs():
    model, x, y, true = linear_problem(n=20)
    flat = nn.Sequential(nn.Flatten(), model)  # rank-2 inputs are handled by the view
    scaled = x.flatten(1) * 2 - 1  # inputs in [-1, 1]; the model sees them mapped back

    class Back(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = flat

        def forward(self, z):
            return self.inner((z + 1) / 2)

    result = evaluate_robustness(Back(), (scaled, y), epsilons=[0.2], bounds=(-1.0, 1.0),
                                 attack=AttackSettings(steps=10), sanity=False)
    correct = true > 0
    rel = result.distances[correct] / (2 * true[correct])  # distances double in [-1, 1] units
    assert float(rel.max()) <= 1.01 and float(rel.min()) >= 1 - 1e-4


def test_linf_norm_runs_and_bounds_distances(linear):
    model, x, y, true = linear
    result = evaluate_robustness(model, (x, y), norm="linf", epsilons=[0.01, 0.05], attack=AttackSettings(steps=10),
                                 sanity=False)
    correct = true > 0
    w = model.w.detach()
    linf_true = true[correct] * w.norm() / w.abs().sum()  # |v| / ‖w‖₁ (box inactive at these sizes)
    assert torch.all(result.distances[correct] >= linf_true.double() * (1 - 1e-4))
    assert float((result.distances[correct] / linf_true).max()) < 1.5


def test_custom_attack_objects_and_bad_candidates(linear):
    model, x, y, _ = linear

    class WrongShape(Attack):
        name = "wrong"

        def perturb(self, model, inputs, labels, *, epsilon, norm, seed):
            return inputs[:, :, :2]

    with pytest.raises(InputError, match="attack 'wrong' returned"):
        evaluate_robustness(model, (x, y), epsilons=[0.1], attack=AttackSettings(attacks=[WrongShape()]), sanity=False)
    result = evaluate_robustness(model, (x, y), epsilons=[0.2], attack=AttackSettings(attacks=[APGD("ce", steps=5)]),
                                 sanity=False)
    assert [a["name"] for a in result.attacks] == ["apgd-ce"]


def test_default_ensemble_adapts_to_class_count():
    assert [a.name for a in default_attacks("l2", 10)] == ["fab-t", "apgd-ce", "apgd-t"]
    assert [a.name for a in default_attacks("l2", 3)] == ["fab-t", "apgd-ce", "apgd-dlr"]
    assert [a.name for a in default_attacks("l2", 2)] == ["fab", "apgd-ce"]
    assert default_attacks("l2", 10)[2].settings()["targets"] == 9
    assert default_attacks("l2", 10)[0].settings()["targets"] == 9
    assert default_attacks("l2", 10, steps=100)[1].settings()["steps"] == 100
    assert FAB().minimum_norm and APGD("dlr").supports(2, "l2")


@pytest.mark.parametrize("kwargs, match", [
    ({"epsilons": []}, "epsilons=\\[\\] is not allowed"),
    ({"epsilons": [0.1, -1.0]}, "epsilons\\[1\\]=-1.0 is out of range"),
    ({"epsilons": "0.1,0.2"}, "epsilons='0.1,0.2' is not allowed"),
    ({"epsilons": [math.inf]}, "epsilons\\[0\\]=inf is not finite"),
    ({"epsilons": [0.1], "norm": "l3"}, "norm='l3' is not allowed"),
    ({"epsilons": [0.1], "batch_size": 0}, "batch_size=0 is out of range"),
    ({"epsilons": [0.1], "bounds": (1.0, 0.0)}, "bounds=\\(1.0, 0.0\\) is empty"),
    ({"epsilons": [0.1], "bounds": (0.2, 0.3)}, "outside bounds"),
    ({"epsilons": [0.1], "attack": {"steps": 5}}, "attack=\\{'steps': 5\\} is not allowed: it is a dict \\(allowed: None or an AttackSettings"),
    ({"epsilons": [0.1], "sanity": "yes"}, "sanity='yes' is not allowed"),
    ({"epsilons": [0.1], "certify": 1}, "certify=1 is not allowed"),
    ({"epsilons": [0.1], "seed": 1, "generator": torch.Generator()}, "seed and generator were both given"),
    ({"epsilons": [0.1], "device": "meta"}, "device='meta', but the model is on 'cpu'"),
    ({"epsilons": [0.1], "n_examples": 0}, "n_examples=0 is out of range; it must be >= 1"),
])
def test_bad_arguments_name_the_parameter(linear, kwargs, match):
    model, x, y, _ = linear
    with pytest.raises(ConfigurationError if "outside" not in match else InputError, match=match):
        evaluate_robustness(model, (x, y), **kwargs)


@pytest.mark.parametrize("kind, kwargs, match", [
    (AttackSettings, {"order": "random"}, "order='random' is not allowed"),
    (AttackSettings, {"attacks": [3]}, "attacks=\\[3\\] is not allowed"),
    (AttackSettings, {"attacks": ["fabt"]}, "unknown attack 'fabt'; did you mean 'fab-t'\\?"),
    (AttackSettings, {"steps": 0}, "steps=0 is out of range"),
    (AttackSettings, {"refine_steps": -1}, "refine_steps=-1 is out of range"),
    (AttackSettings, {"borderline_restarts": -2}, "borderline_restarts=-2 is out of range"),
    (SanityChecks, {"noise_samples": -1}, "noise_samples=-1 is out of range"),
    (SanityChecks, {"disagreement_threshold": 2.0}, "disagreement_threshold=2.0 is out of range"),
    (SanityChecks, {"enabled": "no"}, "enabled='no' is not allowed"),
])
def test_bad_settings_name_the_field_when_built(kind, kwargs, match):
    with pytest.raises(ConfigurationError, match=match):
        kind(**kwargs)


def test_settings_are_values_and_sanity_false_turns_the_checks_off(linear):
    from dataclasses import replace

    quick = AttackSettings(steps=5, attacks=["apgd-ce"])
    assert quick == AttackSettings(steps=5, attacks=("apgd-ce",)) and replace(quick, steps=7).steps == 7
    model, x, y, _ = linear
    off = evaluate_robustness(model, (x, y), epsilons=[0.2], attack=quick, sanity=False)
    also_off = evaluate_robustness(model, (x, y), epsilons=[0.2], attack=quick, sanity=SanityChecks(enabled=False))
    assert off.sanity == also_off.sanity == {"checks": {}, "warnings": []}
    assert torch.equal(off.distances, also_off.distances)


def test_bad_data(linear):
    model, x, y, _ = linear
    with pytest.raises(InputError, match=r"labels contains class \d, but the model returns 2 scores per example"):
        evaluate_robustness(model, (x, y + 5), epsilons=[0.1])
    with pytest.raises(InputError, match="integer class indices"):
        evaluate_robustness(model, (x, y.float()), epsilons=[0.1])
    with pytest.raises(InputError, match="is not a torch.nn.Module"):
        evaluate_robustness(lambda z: z, (x, y), epsilons=[0.1])


def test_fab_t_keeps_the_closest_success_over_all_targets(cnn, monkeypatch):
    """The kept example is, per input, the closest misclassified one among every target's run.

    Asserted against the per-target runs recorded during the same call (no tolerance needed: the same
    tensors), not against which target happens to win on one machine.
    """
    import torchattacks

    runs: list[torch.Tensor] = []
    original = torchattacks.FAB.attack_single_run_targeted

    def recorded(self, x, y, *args, **kwargs):
        adv = original(self, x, y, *args, **kwargs)
        runs.append(adv.clone())
        return adv

    monkeypatch.setattr(torchattacks.FAB, "attack_single_run_targeted", recorded)
    cnn = copy.deepcopy(cnn).eval()  # as the sweep runs it (Dropout off)
    x, y = quadrant_data(16, seed=9)
    kept = FAB(steps=10, targets=3).perturb(cnn, x, y, epsilon=math.inf, norm="l2", seed=0)
    assert len(runs) == 3
    with torch.no_grad():
        sizes = torch.stack([(adv - x).flatten(1).norm(dim=1) for adv in runs])
        success = torch.stack([cnn(adv).argmax(1) != y for adv in runs])
        kept_success = cnn(kept).argmax(1) != y
    best = torch.where(success, sizes, torch.full_like(sizes, math.inf)).min(0).values
    assert torch.equal(kept_success, success.any(0))
    assert torch.equal((kept - x).flatten(1).norm(dim=1)[kept_success], best[kept_success])
    assert torch.equal(kept[~kept_success], x[~kept_success])


class _FlipAwayFrom(nn.Module):
    """Predicts the label at the given inputs and class (label + 1) mod 4 anywhere else."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        super().__init__()
        self.x, self.y = x, y

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        near = (z[:, None] - self.x[None, : z.shape[0]]).flatten(2).norm(dim=2).min(1).values < 1e-6
        label = self.y[: z.shape[0]]
        return nn.functional.one_hot(torch.where(near, label, (label + 1) % 4), 4).float()


def test_fab_t_prefers_a_later_target_when_it_is_closer(monkeypatch):
    """Control: every target succeeds and the last is the closest; keeping the first success would fail."""
    import torchattacks

    x, y = torch.zeros(4, 1, 2, 2), torch.tensor([0, 1, 2, 3])

    def fake(self, inputs, labels, *args, **kwargs):  # target 2 → distance 3, target 3 → 2, target 4 → 1
        return inputs + (5 - self.target_class) / 2.0

    monkeypatch.setattr(torchattacks.FAB, "attack_single_run_targeted", fake)
    kept = FAB(steps=1, targets=3).perturb(_FlipAwayFrom(x, y), x, y, epsilon=math.inf, norm="l2", seed=0)
    assert torch.allclose((kept - x).flatten(1).norm(dim=1), torch.ones(4))


def test_progress_counts_this_process_share(linear, monkeypatch):
    """Under torch.distributed each process runs every other batch: its bars must end at its own share."""
    import rkhsreg.evaluation.sweep as sweep_module

    class FirstOfTwo:  # rank 0 of 2, reductions left out: only the progress calls matter here
        rank, world, active = 0, 2, True

        def __init__(self, enabled, device):
            pass

        def mine(self, number):
            return number % 2 == 0

        def min_(self, tensor):
            return tensor

        max_ = sum_ = min_

        def check_same(self, inputs, labels):
            pass

    monkeypatch.setattr(sweep_module, "Sync", FirstOfTwo)
    model, x, y, _ = linear
    calls: dict[str, list[tuple[int, int]]] = {}
    result = evaluate_robustness(model, (x, y), epsilons=[0.2], attack=AttackSettings(steps=2), batch_size=8,
                                 sanity=False,
                                 progress=lambda label, done, total: calls.setdefault(label, []).append((done, total)))
    assert calls and len(calls) == len(result.stages)
    for stage in result.stages:
        label = stage["attack"] if stage["epsilon"] is None else f"{stage['attack']} eps={stage['epsilon']:g}"
        if stage["restart"]:
            label += f" borderline restart {stage['restart']}"
        batches = [min(8, stage["attacked"] - start) for start in range(0, stage["attacked"], 8)]
        share = sum(batches[0::2])
        assert calls[label] == [(sum(batches[0:2 * k + 1:2]), share) for k in range(len(batches[0::2]))]


def test_non_finite_logits_or_inputs_are_refused(linear):
    model, x, y, _ = linear

    class NaNRow(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, z):
            out = self.inner(z).clone()
            out[z.flatten(1)[:, 0] > 0.55] = float("nan")
            return out

    with pytest.raises(InputError, match="non-finite logits \\(nan or inf\\) for [1-9][0-9]* of 40 clean inputs"):
        evaluate_robustness(NaNRow(), (x, y), epsilons=[0.1], sanity=False)
    bad = x.clone()
    bad[3, 0, 0, 0] = float("nan")
    with pytest.raises(InputError, match=r"inputs contains 1 non-finite value\(s\) \(NaN or inf\)"):
        evaluate_robustness(model, (bad, y), epsilons=[0.1])


def test_non_finite_candidates_are_discarded(linear):
    model, x, y, _ = linear

    class NaNAttack(Attack):
        name = "nan"

        def perturb(self, model, inputs, labels, *, epsilon, norm, seed):
            out = inputs.clone()
            out[::2] = float("nan")  # the model's argmax of NaN logits is a class, often a wrong one
            return out

    result = evaluate_robustness(model, (x, y), epsilons=[0.1, 0.5], attack=AttackSettings(attacks=[NaNAttack()]),
                                 sanity=False)
    assert not torch.isnan(result.distances).any()
    assert torch.equal(result.distances, torch.where(result.correct, math.inf, 0.0).double())
    assert result.robust_accuracy == [result.clean_accuracy] * 2


class _Threshold(nn.Module):
    """Class 1 wins where u·(x − 0.5) > d (u the unit diagonal of a 2×2 image): every example's true distance is d."""

    def __init__(self, d: float) -> None:
        super().__init__()
        self.layer = nn.Linear(4, 2)
        with torch.no_grad():
            self.layer.weight.copy_(torch.tensor([[0.0] * 4, [0.5] * 4]))
            self.layer.bias.copy_(torch.tensor([0.0, -0.5 * 4 * 0.5 - d]))

    def forward(self, x):
        return self.layer(x.flatten(1))


class _Oblique(Attack):
    """Minimum-norm stand-in: an adversarial example along a direction 18° off the optimal one (found distance d/0.95)."""

    name = "oblique"
    minimum_norm = True

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):
        v = torch.tensor([0.5, 0.5, 0.5, 0.5]) * 0.95 + torch.tensor([0.5, -0.5, 0.5, -0.5]) * (1 - 0.95 ** 2) ** 0.5
        return (inputs + 0.4 * v.view(1, 1, 2, 2)).clamp(0, 1)   # inside the box: the direction is kept


class _Lucky(Attack):
    """An ε-bounded attack that only succeeds on its third run (a seed that happens to work), along u."""

    name = "lucky"

    def __init__(self) -> None:
        self.runs = 0

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):
        self.runs += 1
        if self.runs < 3:
            return inputs.clone()
        return (inputs + epsilon * torch.full_like(inputs, 0.5)).clamp(0, 1)


@pytest.mark.parametrize("restarts, robust", [(0, 1.0), (4, 0.0)])
def test_borderline_examples_get_restarts_until_a_seed_breaks_them(restarts, robust):
    x, y = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, dtype=torch.long)
    lucky = _Lucky()
    result = evaluate_robustness(_Threshold(0.3), (x, y), epsilons=[0.31],
                                 attack=AttackSettings(attacks=[_Oblique(), lucky], borderline=0.1,
                                                       borderline_restarts=restarts),
                                 sanity=False)
    assert 0.31 < 0.3 / 0.95 <= 0.31 * 1.1          # the minimum-norm distance found is just above ε: borderline
    assert result.robust_accuracy == [robust]
    assert lucky.runs == (1 if restarts == 0 else 3)  # restarts stop as soon as it is broken


def test_examples_far_above_epsilon_are_not_restarted():
    x, y = torch.full((1, 1, 2, 2), 0.5), torch.zeros(1, dtype=torch.long)
    lucky = _Lucky()
    result = evaluate_robustness(_Threshold(0.3), (x, y), epsilons=[0.2],
                                 attack=AttackSettings(attacks=[_Oblique(), lucky], borderline=0.1,
                                                       borderline_restarts=4),
                                 sanity=False)
    assert result.robust_accuracy == [1.0] and lucky.runs == 1   # found distance 0.316 > 1.1 · 0.2


def test_radii_covering_the_input_box_are_said_and_numpy_radii_taken():
    """ε = 8 meant as 8/255: in ℓ∞ the ball covers the whole [0, 1] box, so the accuracy there says nothing of the
    model; one warning names the radii and the units. A numpy array of radii is a list of radii."""
    import warnings

    import numpy as np

    from rkhsreg.evaluation import AttackSettings, evaluate_robustness
    from tests._evaluation_helpers import tiny_cnn

    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 3, 8, 8, generator=g), torch.randint(0, 4, (4,), generator=g)
    settings = AttackSettings(attacks=["apgd-ce"], steps=2, borderline_restarts=0)
    with pytest.warns(UserWarning, match=r"epsilons \[8.0\] cover the whole input box bounds=\(0.0, 1.0\) in linf"):
        evaluate_robustness(tiny_cnn(), (x, y), norm="linf", epsilons=[0.03, 8.0], attack=settings, sanity=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        result = evaluate_robustness(tiny_cnn(), (x, y), norm="l2", epsilons=np.array([0.5, 1.0]), attack=settings,
                                     sanity=False)
    assert result.epsilons == [0.5, 1.0]
