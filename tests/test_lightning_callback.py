"""RKHSRegularization on one process: training, side effects, hooks, schedules, resume, errors."""

from __future__ import annotations

import copy
import types
import warnings
from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader

pl = pytest.importorskip("pytorch_lightning")

from rkhsreg import ConfigurationError, Constraint, InputError, create_penalty  # noqa: E402
from rkhsreg.lightning import Constant, LinearWarmup, RadiusDecay, ResumeWarning, RKHSRegularization  # noqa: E402
from tests._lightning_helpers import (ClampWeights, LitNet, ResumableLoader, SquaredLogits, dataset,  # noqa: E402
                                      loader, model, params, small_kwargs, trainer)  # noqa: F401

pytestmark = pytest.mark.slow
DELTA_TAU_GRAD = ("adversarial_perturbation", "adversarial_deformation", "gradient_norm")


def _fit(lit: LitNet, callbacks: list, steps: int = 3, seed: int = 0, **kwargs: Any) -> pl.Trainer:
    pl.seed_everything(seed, verbose=False)
    tr = trainer(max_steps=steps, callbacks=callbacks, **kwargs)
    tr.fit(lit, loader(n=8 * steps))
    return tr


def _assert_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs"


def _penalties(names: tuple[str, ...] = DELTA_TAU_GRAD) -> dict[str, dict[str, Any]]:
    return {name: small_kwargs(name) for name in names}


# ---------------------------------------------------------------------------------------------- training
def test_callback_without_penalties_changes_nothing() -> None:
    plain = model("bn")
    _fit(plain, [])
    for callback in (RKHSRegularization(), RKHSRegularization({"sq": SquaredLogits(weight=0.0)})):
        lit = model("bn")
        _fit(lit, [callback])
        _assert_equal(params(plain), params(lit))  # bit-identical, BN statistics included


def test_bn_dropout_module_trains_and_logs_under_stable_names() -> None:
    lit = model("bn")
    before = params(lit)
    tr = _fit(lit, [RKHSRegularization(_penalties())])
    after = params(lit)
    assert any(not torch.equal(before[k], after[k]) for k in before)
    metrics = tr.callback_metrics
    for name in DELTA_TAU_GRAD:
        value, weighted = metrics[f"rkhsreg/{name}/value"], metrics[f"rkhsreg/{name}/weighted"]
        assert torch.isfinite(value) and value >= 0
        torch.testing.assert_close(weighted, value * small_kwargs(name)["weight"])
    assert metrics["rkhsreg/passes/forward"] > 0 and metrics["rkhsreg/passes/backward"] > 0
    # what a penalty reports in diagnostics() is logged beside its value: the ‖f‖²_δ search's value ratio
    delta = "adversarial_perturbation"
    ratio = metrics[f"rkhsreg/{delta}/value_ratio"]
    assert 0 <= ratio <= 1 and metrics[f"rkhsreg/{delta}/value_ratio_worst"] <= ratio
    assert "rkhsreg/gradient_norm/value_ratio" not in metrics     # a penalty with nothing to report logs nothing
    assert "training_step" not in lit.__dict__  # restored at teardown


@pytest.mark.parametrize("prog_bar", [False, True])
def test_total_penalty_is_logged_and_shown_on_the_progress_bar_on_request(prog_bar: bool) -> None:
    tr = _fit(model("tiny"), [RKHSRegularization(_penalties(), prog_bar=prog_bar)], steps=2)
    metrics = tr.callback_metrics
    total = sum(metrics[f"rkhsreg/{name}/weighted"] for name in DELTA_TAU_GRAD)
    torch.testing.assert_close(metrics["rkhsreg/total"], total)
    assert ("rkhsreg/total" in tr.progress_bar_metrics) is prog_bar
    assert not any(key.startswith("rkhsreg/") and key != "rkhsreg/total" for key in tr.progress_bar_metrics)


def test_bn_statistics_only_follow_the_clean_forward_passes() -> None:
    """With lr=0 the weights stay put, so BN statistics may only differ through the penalties' forwards."""
    plain, regularized = model("bn", lr=0.0), model("bn", lr=0.0)
    _fit(plain, [], steps=4)
    names = (*DELTA_TAU_GRAD, "loss_gradient", "tangent_propagation", "adversarial_training")
    _fit(regularized, [RKHSRegularization(_penalties(names))], steps=4)
    a, b = params(plain), params(regularized)
    assert not torch.equal(a["net.features.1.running_mean"], model("bn").net.features[1].running_mean)
    _assert_equal(a, b)


def test_penalty_gradient_equals_manual_single_backward() -> None:
    lit_cb, lit_manual = model("tiny", lr=0.1), model("tiny", lr=0.1)
    penalty = create_penalty("gradient_norm", weight=0.5)
    _fit(lit_cb, [RKHSRegularization([penalty])], steps=1)
    x, y = next(iter(loader(n=8)))
    opt = torch.optim.SGD(lit_manual.parameters(), lr=0.1, momentum=0.9)
    loss = torch.nn.functional.cross_entropy(lit_manual(x), y) + create_penalty("gradient_norm", weight=0.5)(
        lit_manual, x, y)
    loss.backward()
    opt.step()
    for k, v in params(lit_manual).items():
        torch.testing.assert_close(params(lit_cb)[k], v, rtol=1e-6, atol=1e-7)


def test_dict_output_and_skipped_batches() -> None:
    callback = RKHSRegularization({"sq": SquaredLogits(weight=0.1)})
    _fit(model("tiny", output="dict"), [callback], steps=2)
    assert callback.regularized_steps == 2
    callback = RKHSRegularization({"sq": SquaredLogits(weight=0.1)})
    pl.seed_everything(0, verbose=False)
    trainer(max_epochs=1, callbacks=[callback]).fit(model("tiny", output="skip_odd"), loader(n=32))
    assert callback.regularized_steps == 2  # batches 1 and 3 returned None: no loss, no penalty


def test_replacing_penalty_takes_the_clean_loss_place() -> None:
    callback = RKHSRegularization({"adversarial_training": {"epsilon": 0.0, "steps": 1}})
    lit_at, lit_plain = model("tiny"), model("tiny")
    _fit(lit_at, [callback], steps=2)
    _fit(lit_plain, [], steps=2)
    for k, v in params(lit_plain).items():  # ε = 0: the adversarial loss is the clean loss
        torch.testing.assert_close(params(lit_at)[k], v, rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------- constraints
def test_constraints_run_after_real_optimizer_steps_only() -> None:
    clamp = ClampWeights(0.05)
    callback = RKHSRegularization(constraints={"clamp": clamp})
    lit = model("tiny")
    pl.seed_everything(0, verbose=False)
    trainer(max_epochs=1, accumulate_grad_batches=2, callbacks=[callback]).fit(lit, loader(n=32))
    assert clamp.calls == callback.projections == 2  # 4 batches, 2 optimiser steps
    assert all(p.abs().max() <= 0.05 for p in lit.parameters())
    assert clamp.epochs == [0, 0, 0]  # set_epoch at the epoch start and before each of the 2 projections
    assert callback._handles == []  # step hooks removed at teardown


def test_spectral_projection_and_forward_submodule() -> None:
    callback = RKHSRegularization(constraints={"spectral_norm_projection": {"radius": 0.3}}, forward="net")
    lit = model("tiny")
    _fit(lit, [callback], steps=2)
    for module in lit.net.modules():
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            sigma = torch.linalg.matrix_norm(module.weight.detach().flatten(1), ord=2)
            assert sigma <= 0.3 * 1.01


def test_forward_callable_is_used_for_penalties() -> None:
    seen = []

    def forward(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
        seen.append(x.shape[0])
        return module(x)

    _fit(model("tiny"), [RKHSRegularization({"sq": SquaredLogits(weight=0.1)}, forward=forward)], steps=1)
    assert seen == [8]


# ---------------------------------------------------------------------------------------------- schedules
def test_schedules_set_weights_and_constraint_radius() -> None:
    sq, clamp = SquaredLogits(weight=123.0), ClampWeights(1.0)
    callback = RKHSRegularization({"sq": sq}, {"clamp": clamp},
                                  schedules={"sq": LinearWarmup(0.4, warmup=4), "clamp": RadiusDecay(0.5, 1.0)})
    pl.seed_everything(0, verbose=False)
    tr = trainer(max_epochs=2, callbacks=[callback])
    tr.fit(model("tiny"), loader(n=16))  # 2 steps per epoch: global_step 0..3
    assert sq.weight == pytest.approx(0.3)  # last step: global_step 3 of a 4-step ramp
    assert tr.callback_metrics["rkhsreg/sq/weight"] == pytest.approx(0.3)
    assert clamp.radius == pytest.approx(0.5 * (1 + 4 * torch.exp(torch.tensor(-1.0)).item()))
    assert clamp.epochs == []  # a scheduled radius replaces set_epoch


class _Halve(Constraint):   # a Constraint that does not follow the epoch (no set_epoch of its own)
    name = "halve"

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, module: torch.nn.Module) -> None:
        self.calls += 1
        with torch.no_grad():
            for p in module.parameters():
                p.mul_(0.5)


def test_a_constraint_without_an_epoch_schedule_inherits_a_set_epoch_that_does_nothing() -> None:
    halve = _Halve()
    halve.set_epoch(3)   # the Constraint contract: every constraint takes the epoch
    assert vars(halve) == {"calls": 0}
    tr = trainer(max_epochs=2, callbacks=[RKHSRegularization(constraints={"halve": halve})])
    tr.fit(model("tiny"), loader(n=16))   # 2 steps per epoch, each followed by a projection
    assert halve.calls == 4


def test_weight_zero_schedule_skips_the_penalty() -> None:
    sq = SquaredLogits(weight=1.0)
    with pytest.warns(UserWarning, match=r"keeps penalty 'sq' at weight 0 for this whole run"):
        tr = _fit(model("tiny"), [RKHSRegularization({"sq": sq}, schedules={"sq": Constant(0.0)})], steps=1)
    assert not any(key.startswith("rkhsreg/") for key in tr.callback_metrics)


@pytest.mark.parametrize("length, warned", [({"max_steps": 2}, True), ({"max_epochs": 3}, False)])
def test_a_schedule_at_weight_0_for_the_whole_run_is_said_once(length: dict, warned: bool) -> None:
    """A 5-epoch warm-up in a 1-epoch run (2 steps of 8 examples): the penalty is never applied; in 3 epochs it is."""
    import warnings

    reg = RKHSRegularization({"sq": SquaredLogits(weight=0.1)}, schedules={"sq": LinearWarmup(0.1, 5, unit="epoch")})
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        trainer(callbacks=[reg], **length).fit(model("tiny"), loader(n=16))
    said = [str(w.message) for w in record if "for this whole run" in str(w.message)]
    if not warned:
        assert said == []
        return
    assert len(said) == 1
    assert ("schedules['sq']=LinearWarmup(value=0.1, warmup=5, start=0.0, unit='epoch') keeps penalty 'sq' at weight "
            "0 for this whole run (max_steps=2: steps 0–1, epochs 0–0): it is never applied nor logged") in said[0]


def test_a_radius_schedule_on_a_constraint_with_its_own_is_refused_naming_both() -> None:
    with pytest.raises(ConfigurationError, match=r"schedules\['spectral_norm_projection'\]=RadiusDecay\(tau=0.5, "
                                                 r"kappa=1.0, factor=4.0\) and constraint 'spectral_norm_projection''s "
                                                 r"own schedule RadiusDecay\(tau=1.0, kappa=2.0, factor=4.0\)"):
        RKHSRegularization(constraints={"spectral_norm_projection": {"radius": 1.0, "kappa": 2.0}},
                           schedules={"spectral_norm_projection": RadiusDecay(0.5, 1.0)})
    RKHSRegularization(constraints={"spectral_norm_projection": {"radius": 1.0}},   # one schedule: accepted
                       schedules={"spectral_norm_projection": RadiusDecay(0.5, 1.0)})


# ---------------------------------------------------------------------------------------------- resume
def test_resume_from_checkpoint_is_exact(tmp_path) -> None:
    def callback() -> RKHSRegularization:
        return RKHSRegularization({"spectral_norm": {},
                                   "adversarial_deformation": small_kwargs("adversarial_deformation")},
                                  {"spectral_norm_projection": {"radius": 0.6, "kappa": 1.0}},
                                  schedules={"spectral_norm": LinearWarmup(0.2, warmup=3)})

    data = loader(n=16)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1,
                                        save_on_train_epoch_end=True)
    full = model("tiny")
    trainer(max_epochs=2, enable_checkpointing=True, callbacks=[callback(), ckpt]).fit(full, data)
    resumed, cb = model("tiny", seed=7), callback()
    trainer(max_epochs=2, callbacks=[cb]).fit(resumed, data, ckpt_path=str(tmp_path / "epoch=0.ckpt"))
    _assert_equal(params(full), params(resumed))
    assert cb.regularized_steps == 4 and cb.projections == 4
    state = cb.state_dict()
    assert set(state["penalties"]) == {"spectral_norm", "adversarial_deformation"}
    with pytest.raises(InputError, match="holds nothing"):  # a state holding nothing is no state this callback wrote
        cb.load_state_dict({})


def _delta_callback(extra: bool = False) -> RKHSRegularization:
    penalties: dict[str, Any] = {"adversarial_perturbation": small_kwargs("adversarial_perturbation")}
    if extra:
        penalties["gradient_norm"] = {"weight": 0.0}
    return RKHSRegularization(penalties)


def _search_state(callback: RKHSRegularization) -> dict[str, Any]:
    state = callback.penalties["adversarial_perturbation"].state_dict()
    return {key: state[key] for key in ("calls", "auto", "highest", "history")}


def test_resume_with_a_changed_callback_restores_what_matches_and_says_what_it_does_not(tmp_path) -> None:
    """A weight-0 penalty added before resuming: the δ search keeps its calibration and the counters go on."""
    data = loader(n=16)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1,
                                        save_on_train_epoch_end=True)
    full, full_cb = model("tiny"), _delta_callback()
    trainer(max_epochs=2, enable_checkpointing=True, callbacks=[full_cb, ckpt]).fit(full, data)
    resumed, cb = model("tiny", seed=7), _delta_callback(extra=True)
    with pytest.warns(ResumeWarning, match=r"Restored: the state of 'adversarial_perturbation' and the step counters"
                                           r"\. Starting fresh \(not in the checkpoint\): penalty 'gradient_norm'"):
        trainer(max_epochs=2, callbacks=[cb]).fit(resumed, data, ckpt_path=str(tmp_path / "epoch=0.ckpt"))
    assert cb.regularized_steps == full_cb.regularized_steps == 4
    assert _search_state(cb) == _search_state(full_cb)
    _assert_equal(params(full), params(resumed))


def test_resume_from_a_checkpoint_keyed_by_labels_or_without_the_callback(tmp_path) -> None:
    data = loader(n=16)
    ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="{epoch}", save_top_k=-1,
                                        save_on_train_epoch_end=True)
    trainer(max_epochs=1, enable_checkpointing=True, callbacks=[_delta_callback(), ckpt]).fit(model("tiny"), data)
    checkpoint = torch.load(tmp_path / "epoch=0.ckpt", weights_only=False)
    state = checkpoint["callbacks"].pop("RKHSRegularization")
    torch.save(checkpoint, tmp_path / "none.ckpt")
    # rkhsreg 0.1.0 keyed the state by the callback's labels
    checkpoint["callbacks"]["RKHSRegularization{'penalties': ['adversarial_perturbation'], 'constraints': []}"] = state
    torch.save(checkpoint, tmp_path / "legacy.ckpt")
    cb = _delta_callback()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResumeWarning)
        trainer(max_epochs=2, callbacks=[cb]).fit(model("tiny"), data, ckpt_path=str(tmp_path / "legacy.ckpt"))
    assert cb.regularized_steps == 4
    cb = _delta_callback()
    with pytest.warns(ResumeWarning, match="holds no state of this callback.*'adversarial_perturbation' start fresh"):
        trainer(max_epochs=2, callbacks=[cb]).fit(model("tiny"), data, ckpt_path=str(tmp_path / "none.ckpt"))
    assert cb.regularized_steps == 2


def test_resume_with_other_hyper_parameters_keeps_the_constructors_and_names_them() -> None:
    saved = RKHSRegularization({"gradient_norm": {"weight": 0.5}}, {"spectral_norm_projection": {"radius": 0.6}},
                               schedules={"spectral_norm_projection": RadiusDecay(0.6, 1.0)}).state_dict()
    cb = RKHSRegularization({"gradient_norm": {"weight": 0.1}}, {"spectral_norm_projection": {"radius": 0.6}})
    with warnings.catch_warnings():  # the same configuration: nothing to say
        warnings.simplefilter("error", ResumeWarning)
        cb.load_state_dict(copy.deepcopy(RKHSRegularization({"gradient_norm": {"weight": 0.1}},
                                                            {"spectral_norm_projection": {"radius": 0.6}}).state_dict()))
    cb = RKHSRegularization({"gradient_norm": {"weight": 0.1, "mode": "joint"}},
                            {"spectral_norm_projection": {"radius": 0.8}})
    with pytest.warns(ResumeWarning) as record:
        cb.load_state_dict(copy.deepcopy(saved))
    message = str(record[0].message)
    assert "the callback's values are used (a checkpoint restores state only)" in message
    assert "penalty 'gradient_norm' weight: 0.5 in the checkpoint, 0.1 here" in message
    assert "penalty 'gradient_norm' mode: 'per_class' in the checkpoint, 'joint' here" in message
    assert "constraint 'spectral_norm_projection' radius: 0.6 in the checkpoint, 0.8 here" in message
    assert cb.penalties["gradient_norm"].weight == 0.1 and cb.constraints["spectral_norm_projection"].radius == 0.8


def test_resume_drops_the_state_of_a_removed_or_replaced_plugin_and_says_why() -> None:
    saved = RKHSRegularization({"a": SquaredLogits(weight=1.0), "g": create_penalty("gradient_norm", weight=0.1)},
                               [ClampWeights()]).state_dict()
    cb = RKHSRegularization({"g": SquaredLogits(weight=0.1)}, [ClampWeights()])
    with pytest.warns(ResumeWarning) as record:
        cb.load_state_dict(copy.deepcopy(saved))
    message = str(record[0].message)
    assert "Not restored: penalty 'a' (this callback has no penalty of that label)" in message
    assert ("penalty 'g' (a rkhsreg.penalties.gradient_norm.GradientNorm in the checkpoint, a "
            "tests._lightning_helpers.SquaredLogits here: it starts fresh)") in message
    assert "Restored: the state of 'clamp_weights'" in message


@pytest.mark.parametrize("state, match", [
    ("not a state", "is a str, not a dict"),
    ({"garbage": 1}, r"holds the keys 'garbage' and none of 'config', 'constraints', .*not a state "
                     r"RKHSRegularization.state_dict wrote"),
    ({}, r"holds nothing \(an empty dict\) and none of 'config'"),
    ({"version": 3}, r"\['version'\]=3; this rkhsreg reads versions 1 to 2"),
    ({"version": 2, "penalties": ["spectral_norm"]}, r"\['penalties'\] is a list, not a dict"),
    ({"version": 2, "regularized_steps": -1}, r"\['regularized_steps'\]=-1 is not a count"),
    ({"version": 2, "penalties": {"spectral_norm": {"vectors": "garbage"}}},
     r"\['penalties'\]\['spectral_norm'\] cannot be read by SpectralNormPenalty.load_state_dict"),
])
def test_an_unreadable_checkpoint_state_is_an_error(state: Any, match: str) -> None:
    cb = RKHSRegularization({"spectral_norm": {"weight": 0.1}})
    with pytest.raises(InputError, match=match):
        cb.load_state_dict(state)


def test_a_partial_checkpoint_state_is_restored_with_a_warning() -> None:
    """Some of the keys state_dict writes (a version-1 state has no config): what is there is restored, the rest said."""
    cb = RKHSRegularization({"spectral_norm": {"weight": 0.1}})
    with pytest.warns(ResumeWarning, match=r"Starting fresh \(not in the checkpoint\): penalty 'spectral_norm'"):
        cb.load_state_dict({"regularized_steps": 5})
    assert cb.regularized_steps == 5


def _scheduled_callback(schedule: str) -> RKHSRegularization:
    """One callback per schedule the library ships, each with a randomised penalty (its generator resumes too)."""
    tau = {"adversarial_deformation": small_kwargs("adversarial_deformation")}
    if schedule == "kappa":  # the projection's own radius schedule, radius·(1 + 4·exp(−epoch/κ))
        return RKHSRegularization(tau, {"spectral_norm_projection": {"radius": 0.3, "kappa": 1.0}})
    if schedule == "radius_decay":
        return RKHSRegularization(tau, {"spectral_norm_projection": {"radius": 0.3}},
                                  schedules={"spectral_norm_projection": RadiusDecay(0.3, 1.0)})
    unit = {"warmup_steps": "step", "warmup_epochs": "epoch"}[schedule]
    return RKHSRegularization({**tau, "spectral_norm": {}},
                              schedules={"spectral_norm": LinearWarmup(0.2, warmup=3, unit=unit),
                                         "adversarial_deformation": LinearWarmup(0.5, warmup=6)})


@pytest.mark.parametrize("schedule", ["kappa", "radius_decay", "warmup_steps", "warmup_epochs"])
@pytest.mark.parametrize("at_step", [4, 6], ids=["epoch_boundary", "mid_epoch"])
def test_resume_from_a_step_checkpoint_follows_every_schedule(tmp_path, schedule: str, at_step: int) -> None:
    """3 epochs of 4 steps; resumed from step 4 (the last batch of epoch 0) or step 6 (inside epoch 1)."""
    torch.use_deterministic_algorithms(True)
    try:
        ckpt = pl.callbacks.ModelCheckpoint(dirpath=tmp_path, filename="{step}", save_top_k=-1, every_n_train_steps=1)
        full = model("tiny")
        trainer(max_epochs=3, enable_checkpointing=True,
                callbacks=[_scheduled_callback(schedule), ckpt]).fit(full, ResumableLoader(n=32))
        resumed = model("tiny", seed=7)  # everything must come from the checkpoint
        trainer(max_epochs=3, callbacks=[_scheduled_callback(schedule)]).fit(
            resumed, ResumableLoader(n=32), ckpt_path=str(tmp_path / f"step={at_step}.ckpt"))
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = params(full), params(resumed)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


# ---------------------------------------------------------------------------------------------- validation
def test_log_validation_values_without_advancing_penalty_state() -> None:
    penalty = create_penalty("spectral_norm", weight=0.1)
    callback = RKHSRegularization({"spectral_norm": penalty, "gradient_norm": {"weight": 0.5}}, log_validation=True)
    pl.seed_everything(0, verbose=False)
    tr = trainer(max_steps=1, inference_mode=False, limit_val_batches=2, val_check_interval=1, callbacks=[callback])
    tr.fit(model("tiny"), loader(n=8), loader(n=16, seed=1))
    assert torch.isfinite(tr.callback_metrics["rkhsreg/gradient_norm/val_value"])
    assert torch.isfinite(tr.callback_metrics["rkhsreg/spectral_norm/val_value"])


def test_log_validation_under_inference_mode_explains_the_fix() -> None:
    callback = RKHSRegularization({"sq": SquaredLogits()}, log_validation=True)
    with pytest.raises(ConfigurationError, match=r"inference_mode=False"):
        trainer(max_steps=1, callbacks=[callback]).fit(model("tiny"), loader(n=8), loader(n=8))


# ---------------------------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs, match", [
    ({"penalties": "gradient_norm"}, r"penalties='gradient_norm' is not allowed"),
    ({"penalties": [SquaredLogits(), SquaredLogits()]}, r"two plugins named 'squared_logits'"),
    ({"penalties": {"sq": 0.1}}, r"penalties\['sq'\]=0.1 is not allowed"),
    ({"penalties": {"gradient_norm": {"weigth": 0.1}}}, r"unknown argument 'weigth' \(did you mean 'weight'\?\)"),
    ({"penalties": {"a": create_penalty("adversarial_training"), "b": create_penalty("adversarial_training")}},
     r"replace the clean loss; at most one"),
    ({"penalties": {"sq": SquaredLogits()}, "schedules": {"sqq": Constant(1.0)}}, r"schedules\['sqq'\] names no"),
    ({"penalties": {"sq": SquaredLogits()}, "schedules": {"sq": 0.5}}, r"schedules\['sq'\]=0.5 is not an"),
    ({"penalties": {"sq": SquaredLogits()}, "global_batch": ["gradient_norm"]},
     r"global_batch names \['gradient_norm'\]"),
    ({"penalties": {"sq": SquaredLogits()}, "global_batch": "yes"}, r"global_batch='yes' is not allowed"),
    ({"batch_to_inputs": 3}, r"batch_to_inputs=3 is not allowed: not callable"),
    ({"forward": 3}, r"forward=3 is not allowed"),
    ({"log_validation": "no"}, r"log_validation='no' is not allowed \(allowed: True or False\)"),
    ({"log_prefix": ""}, r"log_prefix='' is not allowed"),
    ({"prog_bar": "yes"}, r"prog_bar='yes' is not allowed \(allowed: True or False\)"),
    ({"penalties": {"x": SquaredLogits()}, "constraints": {"x": ClampWeights()}}, r"name both a penalty and a"),
])
def test_bad_arguments_raise_at_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RKHSRegularization(**kwargs)


def test_unknown_penalty_name_suggests_the_closest() -> None:
    with pytest.raises(KeyError, match=r"did you mean 'gradient_norm'"):
        RKHSRegularization({"gradient_nrom": {}})


class _ManualLit(LitNet):
    def __init__(self) -> None:
        super().__init__(model("tiny").net)
        self.automatic_optimization = False


def test_manual_optimisation_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"automatic_optimization is False.*regularized_loss"):
        trainer(max_steps=1, callbacks=[RKHSRegularization({"sq": SquaredLogits()})]).fit(_ManualLit(), loader(n=8))


def test_sharded_strategies_are_refused_with_the_fix() -> None:
    fsdp = object.__new__(pl.strategies.FSDPStrategy)
    fake_trainer = types.SimpleNamespace(strategy=fsdp)
    with pytest.raises(ConfigurationError, match=r"FSDPStrategy shards parameters.*strategy='ddp'"):
        RKHSRegularization({"sq": SquaredLogits()}).setup(fake_trainer, model("tiny"), "fit")


def test_two_callbacks_on_one_module_are_refused() -> None:
    first, second = RKHSRegularization({"sq": SquaredLogits()}), RKHSRegularization({"other": SquaredLogits()})
    # one state key per callback class, whatever its labels: Lightning refuses two in one Trainer before any work
    with pytest.raises(RuntimeError, match=r"more than one stateful callback of type `RKHSRegularization`"):
        trainer(max_steps=1, callbacks=[first, second])
    lit = model("tiny")  # a second callback reaching a module the first one drives (another Trainer)
    holder = trainer(callbacks=[first])
    first.setup(holder, lit, "fit")
    try:
        with pytest.raises(ConfigurationError, match=r"already wrapped by another RKHSRegularization"):
            second.setup(trainer(callbacks=[second]), lit, "fit")
    finally:
        first.teardown(holder, lit, "fit")
    assert "training_step" not in lit.__dict__


@pytest.mark.parametrize("build", [
    lambda: RKHSRegularization({"sq": SquaredLogits()}),
    lambda: __import__("rkhsreg.lightning", fromlist=["x"]).RKHSNormMonitor(every_n_steps=1),
    lambda: __import__("rkhsreg.lightning", fromlist=["x"]).RobustAccuracy([0.1], n_examples=4, steps=1),
], ids=["RKHSRegularization", "RKHSNormMonitor", "RobustAccuracy"])
def test_one_callback_given_twice_is_refused_at_setup(build) -> None:
    """Lightning checks the list when the Trainer is built: one appended since ran its hooks twice a step, or (the
    regularization) said 'already wrapped by another RKHSRegularization callback' of itself."""
    callback = build()
    holder = trainer(max_steps=1, callbacks=[callback])
    holder.callbacks.append(callback)
    name = type(callback).__name__
    lit = model("tiny")
    with pytest.raises(ConfigurationError, match=rf"{name}: the same {name} instance is in trainer.callbacks 2 "
                                                 r"times, so each of its hooks would run 2 times a step; pass it once"):
        holder.fit(lit, loader(n=8))
    assert "training_step" not in lit.__dict__


def test_a_second_regularization_callback_added_after_the_trainer_is_refused_at_setup() -> None:
    first, second = RKHSRegularization({"sq": SquaredLogits()}), RKHSRegularization({"other": SquaredLogits()})
    holder = trainer(max_steps=1, callbacks=[first])
    holder.callbacks.append(second)
    with pytest.raises(ConfigurationError, match=r"trainer.callbacks holds 2 RKHSRegularization callbacks .*Pass "
                                                 r"all penalties and constraints to one callback"):
        holder.fit(model("tiny"), loader(n=8))


def test_unknown_forward_submodule_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"forward='body' is not a submodule of LitNet; its children"):
        trainer(max_steps=1, callbacks=[RKHSRegularization(forward="body")]).fit(model("tiny"), loader(n=8))


def test_batch_that_does_not_fit_the_default_explains_batch_to_inputs() -> None:
    class DictLit(LitNet):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            return torch.nn.functional.cross_entropy(self(batch["image"]), batch["label"])

    x, y = dataset(8).tensors
    data = DataLoader([{"image": x[i], "label": y[i]} for i in range(8)], batch_size=8)
    torch.manual_seed(0)
    lit = DictLit(model("tiny").net)
    with pytest.raises(InputError, match=r"dict with keys \['image', 'label'\].*batch_to_inputs="):
        trainer(max_steps=1, callbacks=[RKHSRegularization({"sq": SquaredLogits()})]).fit(lit, data)
    callback = RKHSRegularization({"sq": SquaredLogits()}, batch_to_inputs=lambda b: (b["image"], b["label"]))
    trainer(max_steps=1, callbacks=[callback]).fit(DictLit(model("tiny").net), data)
    assert callback.regularized_steps == 1


def test_training_step_returning_no_loss_is_refused() -> None:
    class StringLit(LitNet):
        def training_step(self, batch: Any, batch_idx: int) -> Any:
            return {"not_loss": super().training_step(batch, batch_idx)}

    with pytest.raises(InputError, match=r"returned dict; RKHSRegularization needs a loss tensor"):
        trainer(max_steps=1, callbacks=[RKHSRegularization({"sq": SquaredLogits()})]).fit(
            StringLit(model("tiny").net), loader(n=8))


def test_one_penalty_object_under_two_labels_is_refused() -> None:
    """The same object under two labels was applied twice a step (twice the value) with one shared state."""
    penalty = create_penalty("gradient_norm")
    with pytest.raises(ConfigurationError, match=r"penalties\['a'\] and penalties\['b'\] are the same penalty object"):
        RKHSRegularization({"a": penalty, "b": penalty})
    RKHSRegularization({"a": penalty, "b": create_penalty("gradient_norm")})   # two objects: two penalties


def test_an_explicit_weight_a_schedule_would_override_is_refused() -> None:
    """A schedule sets the weight every step: an explicit other weight was ignored silently."""
    with pytest.raises(ConfigurationError, match=r"penalties\['gradient_norm'\] gives weight=0.5, but "
                                                 r"schedules\['gradient_norm'\]=Constant\(value=0.3\)"):
        RKHSRegularization({"gradient_norm": {"weight": 0.5}}, schedules={"gradient_norm": Constant(0.3)})
    RKHSRegularization({"gradient_norm": {"weight": 0.1}}, schedules={"gradient_norm": LinearWarmup(0.1, 5)})
    RKHSRegularization({"gradient_norm": {}}, schedules={"gradient_norm": Constant(0.3)})


def test_log_validation_in_a_run_that_never_validates_says_so_once() -> None:
    """log_validation=True logged nothing without a word when the fit ran no validation (as RobustAccuracy says)."""
    reg = RKHSRegularization({"sq": SquaredLogits(weight=0.1)}, log_validation=True)
    with pytest.warns(UserWarning, match=r"RKHSRegularization\(log_validation=True\) will log no validation value "
                                         r"in this run: the Trainer has limit_val_batches=0"):
        _fit(model("tiny"), [reg], steps=1, limit_val_batches=0, inference_mode=False)
