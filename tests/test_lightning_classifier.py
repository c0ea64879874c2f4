"""RegularizedClassifier: any nn.Module or timm name, the paper's optimisers, penalties, LightningCLI."""

from __future__ import annotations

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

from rkhsreg import ConfigurationError  # noqa: E402
from rkhsreg.lightning import LinearWarmup, RegularizedClassifier, RKHSRegularization  # noqa: E402
from tests._lightning_helpers import TinyNet, loader, trainer  # noqa: E402,F401


def test_wraps_a_module_trains_and_logs() -> None:
    torch.manual_seed(0)
    clf = RegularizedClassifier(TinyNet(), num_classes=3, lr=0.05)
    tr = trainer(max_steps=2, limit_val_batches=1)
    tr.fit(clf, loader(n=16), loader(n=8, seed=1))
    assert {"train/loss_step", "train/acc_step", "val/loss", "val/acc"} <= set(tr.callback_metrics)
    assert "model" not in clf.hparams and clf.hparams.num_classes == 3  # modules are not hyper-parameters
    assert clf.configure_callbacks() == []


def test_timm_model_by_name_without_download() -> None:
    pytest.importorskip("timm")
    clf = RegularizedClassifier("timm:test_resnet", num_classes=3, in_chans=1)
    assert clf(torch.rand(2, 1, 16, 16)).shape == (2, 3)
    assert clf.hparams.model == "timm:test_resnet"


def test_penalties_and_constraints_use_the_callback_on_the_network() -> None:
    torch.manual_seed(0)
    clf = RegularizedClassifier(TinyNet(), num_classes=3, penalties={"gradient_norm": {"weight": 0.1}},
                                constraints={"spectral_norm_projection": {"radius": 0.3}})
    (callback,) = clf.configure_callbacks()
    assert isinstance(callback, RKHSRegularization) and callback.forward == "net"
    tr = trainer(max_steps=2)
    tr.fit(clf, loader(n=16))
    assert callback.projections == 2 and "rkhsreg/gradient_norm/value" in tr.callback_metrics
    weight = clf.net.head.weight.detach()
    assert torch.linalg.matrix_norm(weight, ord=2) <= 0.3 * 1.01
    assert clf.hparams.penalties == {"gradient_norm": {"weight": 0.1}}


def test_checkpoint_round_trip_with_schedules(tmp_path) -> None:
    torch.manual_seed(0)
    clf = RegularizedClassifier(TinyNet(), num_classes=3, penalties={"gradient_norm": {"weight": 0.1}},
                                schedules={"gradient_norm": LinearWarmup(0.1, warmup=3)})
    tr = trainer(max_steps=1)
    tr.fit(clf, loader(n=8))
    tr.save_checkpoint(tmp_path / "clf.ckpt")
    loaded = RegularizedClassifier.load_from_checkpoint(tmp_path / "clf.ckpt", model=TinyNet())
    assert loaded.regularization.schedules["gradient_norm"](1, 0) == pytest.approx(0.1 / 3)
    for a, b in zip(clf.net.parameters(), loaded.net.parameters()):
        assert torch.equal(a, b)


def test_optimisers_match_the_paper() -> None:
    sgd = RegularizedClassifier(TinyNet(), num_classes=3, lr=0.1, weight_decay=5e-4, lr_step_size=40)
    config = sgd.configure_optimizers()
    opt, sched = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9
    assert opt.defaults["weight_decay"] == 5e-4 and sched.step_size == 40 and sched.gamma == 0.5
    adam = RegularizedClassifier(TinyNet(), num_classes=3, optimizer="adam", lr=0.01).configure_optimizers()
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 0.01


def test_lightning_cli_builds_it_from_a_config() -> None:
    cli_module = pytest.importorskip("pytorch_lightning.cli")
    pytest.importorskip("timm")
    try:
        cli = cli_module.LightningCLI(RegularizedClassifier, run=False, save_config_callback=None, args=[
            "--model.model=timm:test_resnet", "--model.num_classes=3", "--model.in_chans=1",
            "--model.penalties={gradient_norm: {weight: 0.1}}", "--model.lr_step_size=40",
            '--model.schedules={"gradient_norm": {"class_path": "rkhsreg.lightning.LinearWarmup", '
            '"init_args": {"value": 0.1, "warmup": 10}}}', "--trainer.logger=false"])
    except ModuleNotFoundError as exc:  # jsonargparse[signatures] missing
        pytest.skip(str(exc))
    model = cli.model
    assert model.lr_step_size == 40 and model.regularization is not None
    assert model.regularization.schedules["gradient_norm"](5, 0) == pytest.approx(0.05)


@pytest.mark.parametrize("kwargs, match", [
    ({"model": 3}, r"model=int is not allowed; pass an nn.Module or a timm model as .timm:NAME."),
    ({"model": "timm:not_a_timm_model"}, r"model='timm:not_a_timm_model' is not a timm model"),
    ({"model": TinyNet(), "model_kwargs": {"drop_rate": 0.1}}, r"model_kwargs=.* only applies to a timm model"),
    ({"model": TinyNet(), "optimizer": "rmsprop"}, r"optimizer='rmsprop' is not allowed \(allowed: one of 'sgd', 'adam'\)"),
    ({"model": TinyNet(), "lr": 0.0}, r"lr=0.0 is out of range; it must be > 0"),
    ({"model": TinyNet(), "num_classes": 1}, r"num_classes=1 is out of range"),
    ({"model": TinyNet(), "schedules": {"x": None}}, r"schedules=.* given without penalties"),
])
def test_bad_classifier_arguments(kwargs, match) -> None:
    if kwargs["model"] == "timm:not_a_timm_model":
        pytest.importorskip("timm")
    with pytest.raises(ConfigurationError, match=match):
        RegularizedClassifier(**kwargs)


def test_rkhsreg_fit_trains_from_a_lightningcli_config(tmp_path, capsys):
    """`rkhsreg fit --config cfg.yaml`: RegularizedClassifier + any LightningDataModule, callbacks included."""
    from rkhsreg.cli import main

    config = tmp_path / "cfg.yaml"
    config.write_text(f"""
seed_everything: 0
trainer:
  accelerator: cpu
  max_epochs: 1
  logger: false
  enable_progress_bar: false
  enable_model_summary: false
  default_root_dir: {tmp_path}
  callbacks:
    - class_path: pytorch_lightning.callbacks.ModelCheckpoint
      init_args: {{dirpath: {tmp_path / "ckpt"}, save_last: true}}
model:
  model:
    class_path: tests._lightning_helpers.TinyNet
  num_classes: 3
  in_chans: 1
  lr: 0.05
  penalties:
    gradient_norm: {{weight: 0.1}}
data:
  class_path: tests._lightning_helpers.TinyData
  init_args: {{n: 16}}
""")
    assert main(["fit", "--config", str(config)]) == 0
    state = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=False)
    assert state["global_step"] == 2 and state["hyper_parameters"]["penalties"] == {"gradient_norm": {"weight": 0.1}}


def test_num_classes_other_than_the_model_output_width_is_named() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    clf = RegularizedClassifier(net, num_classes=10)
    with pytest.raises(ConfigurationError, match=r"RegularizedClassifier\(num_classes=10\), but its model returns 3 "
                                                 r"scores per example \(output of shape \(8, 3\) on a train batch\); "
                                                 r"pass num_classes=3"):
        trainer(max_steps=1).fit(clf, loader(n=16))


@pytest.mark.parametrize("kwargs, match", [
    ({"in_chans": 3}, "in_chans=3 has no effect with model=TinyNet(...): it applies only when model is a timm model "
                      "name ('timm:NAME'), and the module's first convolution takes 1 channel(s)"),
    ({"optimizer": "adam", "momentum": 0.5}, "momentum=0.5 has no effect with optimizer='adam': it applies only when "
                                             "optimizer='sgd'"),
])
def test_an_option_of_the_other_mode_is_refused(kwargs, match):
    """in_chans builds a timm model (an nn.Module is built already) and momentum is SGD's: given where they do
    nothing, they were accepted and ignored (misuse round 3, 5.33 and 5.36)."""
    from rkhsreg import ParameterError

    with pytest.raises(ParameterError) as info:
        RegularizedClassifier(TinyNet(), num_classes=3, **kwargs)
    assert match in str(info.value) and info.value.parameter == next(iter(kwargs.keys() - {"optimizer"}))
    RegularizedClassifier(TinyNet(), num_classes=3, optimizer="adam")    # the defaults are never refused
    RegularizedClassifier(TinyNet(), num_classes=3, in_chans=1)          # nor the module's own channels
    with pytest.raises(ParameterError, match="the module has no convolution to check it against"):   # 5.33
        RegularizedClassifier(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3)), num_classes=3,
                              in_chans=3)


def test_a_checkpoint_saved_with_the_old_in_chans_default_loads_with_in_chans_none(tmp_path):
    """Checkpoints of an nn.Module saved before in_chans defaulted to None hold in_chans=3, refused now with a
    module: load_from_checkpoint(..., in_chans=None) overrides it (the CHANGELOG says so)."""
    from rkhsreg import ParameterError

    clf = RegularizedClassifier(TinyNet(), num_classes=3)
    tr = trainer(max_steps=1)
    tr.fit(clf, loader(n=8))
    tr.save_checkpoint(tmp_path / "clf.ckpt")
    state = torch.load(tmp_path / "clf.ckpt", weights_only=False)
    assert state["hyper_parameters"]["in_chans"] is None
    state["hyper_parameters"]["in_chans"] = 3                         # what the old default saved
    torch.save(state, tmp_path / "old.ckpt")
    with pytest.raises(ParameterError, match="in_chans=3 has no effect"):
        RegularizedClassifier.load_from_checkpoint(tmp_path / "old.ckpt", model=TinyNet())
    loaded = RegularizedClassifier.load_from_checkpoint(tmp_path / "old.ckpt", model=TinyNet(), in_chans=None)
    assert all(torch.equal(a, b) for a, b in zip(clf.net.parameters(), loaded.net.parameters()))
