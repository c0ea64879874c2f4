"""Degenerate settings refused or said once (issue 28, item 3) and the contracts checked in one shared place for
penalties, constraints, evaluators and the certificate (item 4)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import rkhsreg
from rkhsreg import InputError, ParameterError
from rkhsreg.evaluation import AttackSettings, certified_accuracy, evaluate_deformations, evaluate_robustness
from rkhsreg.evaluation.settings import DeformationBudget, DeformationSearch


def _net(k: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, k))


X = torch.rand(6, 1, 4, 4)
Y = torch.tensor([0, 1, 2, 0, 1, 2])


# ------------------------------------------------------------------------------------- degenerate settings
@pytest.mark.parametrize("name, kwargs, match", [
    ("adversarial_perturbation", {"epsilon": 0.0}, r"epsilon=0.0 is out of range; it must be > 0"),
    ("adversarial_perturbation", {"step_size": 0.0}, r"step_size=0.0 is out of range; it must be > 0"),
    ("adversarial_deformation", {"max_displacement": 0.0}, r"max_displacement=0.0 is out of range"),
    ("adversarial_deformation", {"max_gradient": 0.0, "translation": 0.0}, r"leaves no deformation"),
    ("adversarial_deformation", {"step_size": 0}, r"step_size=0 is out of range"),
    ("tangent_propagation", {"max_displacement": 0.0}, r"max_displacement=0.0 is out of range"),
    ("adversarial_perturbation", {"norm": "linf", "epsilon": 1.0, "clip": (0, 1)}, r"covers the whole input box"),
    ("adversarial_training", {"norm": "linf", "epsilon": 2.0, "clip": (-1, 1)}, r"covers the whole input box"),
])
def test_a_penalty_zero_or_meaningless_for_every_model_is_refused(name, kwargs, match):
    with pytest.raises(ParameterError, match=match):
        rkhsreg.create_penalty(name, **kwargs)


def test_an_l2_ball_covering_the_box_is_refused_when_the_inputs_are_seen():
    penalty = rkhsreg.create_penalty("adversarial_perturbation", epsilon=4.0, clip=(0.0, 1.0))  # diameter √16 = 4
    with pytest.raises(ParameterError, match=r"epsilon=4.0 with norm='l2' covers the whole input box .* = 4\)"):
        penalty(_net(), X, Y)
    rkhsreg.create_penalty("adversarial_perturbation", epsilon=3.9, clip=(0.0, 1.0), steps=1)(_net(), X, Y)


@pytest.mark.parametrize("name", ["loss_gradient", "adversarial_training"])
def test_a_cross_entropy_penalty_refuses_a_model_with_one_output(name):
    with pytest.raises(InputError, match=r"K = 1 score per example; the cross-entropy of a single score is 0"):
        rkhsreg.create_penalty(name)(_net(k=1), X, torch.zeros(6, dtype=torch.long))


def test_a_deformation_search_that_tries_nothing_is_refused():
    with pytest.raises(ParameterError, match=r"samples=0 with adversarial=False tries no deformation"):
        DeformationSearch(samples=0, adversarial=False)
    with pytest.raises(ParameterError, match=r"max_displacement=0 is out of range; it must be > 0"):
        DeformationBudget(max_displacement=0)


def test_a_callback_given_nothing_to_apply_says_so_once():
    pytest.importorskip("pytorch_lightning")
    from rkhsreg.lightning import RKHSRegularization

    with pytest.warns(UserWarning, match="got no penalty and no constraint: it will not change training"):
        RKHSRegularization()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RKHSRegularization({"gradient_norm": {}})


@pytest.mark.parametrize("fit, trainer_kwargs, reason", [
    ("no val loader", {}, "the fit has no validation data"),
    ("limit_val_batches=0", {"limit_val_batches": 0}, "limit_val_batches=0"),
    ("no validation_step", {}, "defines no validation_step"),
    ("every_n_epochs past max_epochs", {"max_epochs": 2}, "the first epoch it is due at is 3, past max_epochs=2"),
])
def test_a_robust_accuracy_callback_that_would_never_evaluate_says_so_once(fit, trainer_kwargs, reason):
    """RobustAccuracy evaluates at the end of validation epochs: a fit without any logged nothing, silently."""
    pytest.importorskip("torchattacks")
    pytest.importorskip("pytorch_lightning")
    from rkhsreg.lightning import RobustAccuracy
    from tests import _lightning_helpers as H

    module = H.model()
    if fit == "no validation_step":   # the helper's LitNet defines one: a subclass without it
        module = type("NoValidation", (H.LitNet,), {"validation_step": None})(H.TinyNet())
    callback = RobustAccuracy([0.1], n_examples=4, steps=1, every_n_epochs=3 if "every" in fit else 1)
    trainer = H.trainer(**{"max_epochs": 1, "limit_train_batches": 1, **trainer_kwargs}, callbacks=[callback])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        val = () if fit in ("no val loader", "no validation_step") else (H.loader(8),)
        trainer.fit(module, H.loader(8), *val)
    said = [str(w.message) for w in caught if "RobustAccuracy will log nothing" in str(w.message)]
    assert len(said) == 1 and reason in said[0] and not callback.history, said
    with warnings.catch_warnings(record=True) as caught:       # a fit that validates: nothing said
        warnings.simplefilter("always")
        H.trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1,
                  callbacks=[RobustAccuracy([0.1], n_examples=4, steps=1)]).fit(H.model(), H.loader(8), H.loader(8))
    assert not [w for w in caught if "RobustAccuracy will log nothing" in str(w.message)]


# ---------------------------------------------------------------------------------------------- contracts
def _softmax_net(dtype: torch.dtype = torch.float32) -> nn.Module:
    return nn.Sequential(_net(), nn.Softmax(dim=1)).to(dtype)


@pytest.mark.parametrize("call", [
    lambda m: rkhsreg.create_penalty("loss_gradient")(m, X, Y),
    lambda m: rkhsreg.create_penalty("gradient_norm")(m, X, Y),
    lambda m: rkhsreg.create_penalty("adversarial_perturbation", steps=1)(m, X, Y),
    lambda m: evaluate_robustness(m.eval(), (X, Y), epsilons=[0.1], attack=AttackSettings(steps=1), sanity=False),
    lambda m: evaluate_deformations(m.eval(), (X, Y), sizes=[1.0], search=DeformationSearch(samples=1, steps=1)),
], ids=["loss_gradient", "gradient_norm", "adversarial_perturbation", "evaluate_robustness", "evaluate_deformations"])
def test_a_model_returning_probabilities_is_warned_about_once_per_call(call):
    """CE of probabilities (a final nn.Softmax) is another, meaningless quantity: said on the first forward."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(_softmax_net())
    found = [w for w in caught if issubclass(w.category, rkhsreg.ProbabilityOutputWarning)]
    assert len(found) == 1, [str(w.message) for w in caught]
    assert "look like probabilities" in str(found[0].message) and "remove the final Softmax" in str(found[0].message)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16])
def test_probabilities_are_recognised_within_the_dtypes_rounding(dtype):
    with pytest.warns(rkhsreg.ProbabilityOutputWarning):
        rkhsreg.create_penalty("gradient_norm")(_softmax_net(dtype), X.to(dtype), Y)


def _trained_net() -> nn.Module:
    """A small net trained to fit separable data: confident logits."""
    torch.manual_seed(1)
    x = torch.rand(64, 1, 4, 4)
    y = (x.mean((1, 2, 3)) * 3).long().clamp(max=2)
    model = _net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(200):
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
    return model


def test_logits_never_look_like_probabilities():
    """Calibration: random-init and trained logits models, log-softmax outputs and zero logits never warn."""
    import rkhsreg.cifar_models
    import rkhsreg.models

    models = [(_net(k), X) for k in (2, 3, 10)]
    models += [(rkhsreg.models.mnist_vgg5(width=4), torch.rand(4, 1, 28, 28)),
               (rkhsreg.cifar_models.cifar_vgg11(width=4), torch.rand(2, 3, 32, 32)),
               (_trained_net(), X), (nn.Sequential(_net(), nn.LogSoftmax(dim=1)), X)]
    zero = _net()
    nn.init.zeros_(zero[1].weight), nn.init.zeros_(zero[1].bias)
    models.append((zero, X))
    for seed in range(20):
        torch.manual_seed(seed)
        models.append((nn.Sequential(nn.Flatten(), nn.Linear(16, 2), nn.ReLU()), X))   # non-negative scores
    with warnings.catch_warnings():
        warnings.simplefilter("error", rkhsreg.ProbabilityOutputWarning)
        for model, x in models:
            y = torch.zeros(x.shape[0], dtype=torch.long)
            rkhsreg.create_penalty("gradient_norm")(model, x, y)
            rkhsreg.create_penalty("loss_gradient")(model, x, y)
        evaluate_robustness(_trained_net().eval(), (X, Y), epsilons=[0.1], attack=AttackSettings(steps=1),
                            sanity=False)


def test_inputs_outside_the_box_are_refused_by_penalties_and_the_certificate_alike():
    images = X * 255
    with pytest.raises(InputError, match=r"outside clip=\(0.0, 1.0\) \(images in 0–255\? divide by 255\)"):
        rkhsreg.create_penalty("adversarial_perturbation", clip=(0, 1))(_net(), images, Y)
    with pytest.raises(InputError, match=r"outside clip=\(0.0, 1.0\)"):
        rkhsreg.create_penalty("adversarial_training", clip=(0, 1))(_net(), images, Y)
    with pytest.raises(InputError, match=r"outside bounds=\(0.0, 1.0\) \(images in 0–255\? divide by 255\)"):
        certified_accuracy(_net().eval(), (images, Y), epsilons=[0.1])
    with pytest.raises(InputError, match=r"outside bounds=\(0.0, 1.0\)"):
        evaluate_robustness(_net().eval(), (images, Y), epsilons=[0.1], attack=AttackSettings(steps=2), sanity=False)
    assert len(certified_accuracy(_net().eval(), (images, Y), epsilons=[0.1], bounds=None)) == 1


class _Rounded(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _net()

    def forward(self, x):
        return self.body(x).round().long()


def test_integer_model_outputs_are_refused():
    with pytest.raises(InputError, match=r"model output has dtype torch.int64; rkhsreg needs floating-point scores"):
        rkhsreg.create_penalty("gradient_norm")(_Rounded(), X, Y)
    with pytest.raises(InputError, match=r"dtype torch.int64; rkhsreg needs floating-point scores"):
        evaluate_robustness(_Rounded().eval(), (X, Y), epsilons=[0.1], attack=AttackSettings(steps=2), sanity=False)


class _InPlace(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _net()

    def forward(self, x):
        return self.body(x.mul_(1.0))


@pytest.mark.parametrize("name", ["adversarial_perturbation", "gradient_norm", "loss_gradient"])
def test_a_forward_that_modifies_its_input_in_place_is_named(name):
    x = X.clone()
    with pytest.raises(InputError, match=r"forward modified its input in place"):
        rkhsreg.create_penalty(name)(_InPlace(), x, Y)


def test_the_evaluator_names_an_in_place_forward():
    with pytest.raises(InputError, match=r"forward modified its input in place"):
        evaluate_robustness(_InPlace().eval(), (X.clone(), Y), epsilons=[0.1], attack=AttackSettings(steps=2),
                            sanity=False)


class _Counter(nn.Module):
    """A forward that writes a buffer even in eval mode (a call counter)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _net()
        self.register_buffer("calls", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        self.calls += 1
        return self.body(x)


@pytest.mark.parametrize("name, kwargs", [("adversarial_perturbation", {"steps": 2}), ("gradient_norm", {}),
                                          ("adversarial_deformation", {"num_deformations": 2}),
                                          ("adversarial_perturbation", {"steps": 2, "eval_mode": False})])
def test_every_buffer_is_restored_after_a_search_even_one_the_forward_writes(name, kwargs):
    model = _Counter()
    x = torch.rand(6, 1, 8, 8) if name == "adversarial_deformation" else X
    if name == "adversarial_deformation":
        model.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    rkhsreg.create_penalty(name, **kwargs)(model, x, Y)
    assert int(model.calls) == 0


def test_every_buffer_is_restored_after_an_evaluation():
    model = _Counter().eval()
    evaluate_robustness(model, (X, Y), epsilons=[0.1], attack=AttackSettings(steps=2, attacks=["apgd-ce"]),
                        sanity=False)
    certified_accuracy(model, (X, Y), epsilons=[0.1])
    assert int(model.calls) == 0


class _Exp(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = _net()

    def forward(self, x):
        return self.body(x).exp()


@pytest.mark.filterwarnings("ignore::rkhsreg.InputRangeWarning")  # ε = 1e6 on purpose
def test_a_non_finite_output_from_a_huge_perturbation_is_named_as_such():
    with pytest.raises(InputError, match=r"for inputs as large as \|x\| = .* the weights are finite, so the "
                                         r"perturbation or deformation of the search drove the model out of range"):
        rkhsreg.create_penalty("adversarial_perturbation", epsilon=1e6, steps=2, candidates="all")(_Exp(), X, Y)
    diverged = _net()
    with torch.no_grad():
        diverged[1].weight[0, 0] = float("nan")
    with pytest.raises(InputError, match=r"parameter '1.weight' holds NaN/inf, the weights have diverged"):
        rkhsreg.create_penalty("gradient_norm")(diverged, X, Y)


@pytest.mark.parametrize("exact", [False, True])
def test_sigma_squared_that_overflows_float32_is_inf_never_a_small_finite_penalty(exact):
    model = _net()
    with torch.no_grad():
        model[1].weight.mul_(1e20)
    value = rkhsreg.create_penalty("spectral_norm", weight=1.0, exact=exact)(model, X, Y)
    assert torch.isinf(value)
    with torch.no_grad():
        model[1].weight.div_(1e5)   # σ ~ 1e15: σ² ~ 1e30 fits in float32
    expected = float(torch.linalg.matrix_norm(model[1].weight.detach().double(), ord=2)) ** 2
    value = rkhsreg.create_penalty("spectral_norm", weight=1.0, exact=exact, **({} if exact else {"iterations": 20}))(model, X, Y)
    assert float(value.detach()) == pytest.approx(expected, rel=1e-3)


def test_frozen_layers_are_skipped_by_the_projection_with_one_warning():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        for layer in (model[1], model[3]):
            layer.weight.mul_(100)
    model[1].weight.requires_grad_(False)
    frozen_before = model[1].weight.detach().clone()
    project = rkhsreg.create_constraint("spectral_norm_projection", radius=1.0)
    with pytest.warns(UserWarning, match=r"1 layer\(s\) have a weight with requires_grad=False \('1'\)"):
        project(model)
    assert torch.equal(model[1].weight, frozen_before)
    assert float(torch.linalg.matrix_norm(model[3].weight.detach(), ord=2)) <= 1.0 + 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        project(model)  # said once
    rkhsreg.create_constraint("spectral_norm_projection", radius=1.0, frozen="project")(model)
    assert float(torch.linalg.matrix_norm(model[1].weight.detach(), ord=2)) <= 1.0 + 1e-3


def test_a_projection_whose_iteration_did_not_converge_says_so_once():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
    project = rkhsreg.create_constraint("spectral_norm_projection", radius=0.1, iterations=1, tol=0.5)
    with pytest.warns(rkhsreg.ProjectionWarning) as caught:
        project(model)
    assert len(caught) == 1
    message = str(caught[0].message)
    for part in ("iterations=1", "tol=0.5", "'0' (σ estimate", "radius=0.1", "Raise iterations"):
        assert part in message
    sigmas = [float(torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)) for layer in (model[0], model[3])]
    assert max(sigmas) > 0.1 * 1.5  # the warning is warranted: σ stayed above the radius
    with warnings.catch_warnings():
        warnings.simplefilter("error", rkhsreg.ProjectionWarning)
        project(model)  # said once
        converged = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))
        rkhsreg.create_constraint("spectral_norm_projection", radius=0.1)(converged)  # the defaults converge
    for layer in (converged[0], converged[3]):
        assert float(torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)) <= 0.1 * (1 + 1e-4)


def test_an_operator_spectral_norm_at_another_resolution_than_the_inputs_is_warned_about_once():
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3))
    penalty = rkhsreg.create_penalty("spectral_norm", method="operator", input_shape=(1, 16, 16))
    x = torch.rand(8, 1, 8, 8)
    with pytest.warns(rkhsreg.InputShapeWarning, match=r"inputs have shape \(1, 8, 8\).*input_shape=\(1, 16, 16\)"):
        penalty(model, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rkhsreg.InputShapeWarning)
        penalty(model, x)  # said once
        rkhsreg.create_penalty("spectral_norm", method="operator", input_shape=(1, 8, 8))(model, x)


def _conv_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(256, 3))


@pytest.mark.parametrize("name, kwargs, scale, match", [
    ("adversarial_perturbation", {}, 255.0, r"inputs range over \[.*\] with clip=None: this looks like 0–255 pixels"),
    ("adversarial_training", {}, 255.0, r"looks like 0–255 pixels.*Divide the images by 255"),
    ("adversarial_training", {"norm": "linf", "epsilon": 8.0}, 1.0,
     r"epsilon=8 with norm='linf' covers the inputs' whole range.*8/255, not 8"),
    ("adversarial_perturbation", {"norm": "linf", "epsilon": 1.0}, 1.0, r"covers the inputs' whole range"),
])
def test_a_search_without_a_box_warns_once_about_inputs_that_do_not_fit_epsilon(name, kwargs, scale, match):
    x, y = torch.rand(8, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * scale, torch.randint(0, 3, (8,))
    penalty = rkhsreg.create_penalty(name, steps=2, **kwargs)
    with pytest.warns(rkhsreg.InputRangeWarning, match=match) as caught:
        penalty(_conv_net(), x, y)
    assert len([w for w in caught if issubclass(w.category, rkhsreg.InputRangeWarning)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", rkhsreg.InputRangeWarning)
        penalty(_conv_net(), x, y)  # said once


@pytest.mark.parametrize("name", ["adversarial_perturbation", "adversarial_training"])
def test_standardised_and_unit_range_inputs_are_not_taken_for_pixels(name):
    generator = torch.Generator().manual_seed(0)
    standardised = torch.randn(64, 1, 8, 8, generator=generator).clamp(-3.5, 3.5)  # mean 0, std 1, max > 2
    assert float(standardised.max()) > 2
    y = torch.randint(0, 3, (64,), generator=generator)
    with warnings.catch_warnings():
        warnings.simplefilter("error", rkhsreg.InputRangeWarning)
        for x in (standardised, torch.rand(64, 1, 8, 8, generator=generator)):
            rkhsreg.create_penalty(name, steps=2)(_conv_net(), x, y)
            rkhsreg.create_penalty(name, steps=2, norm="linf", epsilon=8 / 255)(_conv_net(), x, y)
