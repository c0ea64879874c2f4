"""``RegularizedClassifier``: a LightningModule around any network, with the paper's optimisers.

Penalties and constraints given to it run through the very same :class:`RKHSRegularization` callback
(returned by ``configure_callbacks``; it replaces an ``RKHSRegularization`` given to the Trainer).
Usable from ``LightningCLI``: every argument is type-hinted and saved with ``save_hyperparameters``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Real
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from rkhsreg._checks import check_choice, check_int, check_real
from rkhsreg._errors import ConfigurationError, ParameterError
from rkhsreg._params import Interval, OnlyWhen, signature_defaults, validate_params
from rkhsreg._plugin import Constraint, Penalty
from rkhsreg.lightning._compat import pl
from rkhsreg.lightning.callback import RKHSRegularization
from rkhsreg.functional.schedules import Schedule

__all__ = ["RegularizedClassifier"]

#: The options of :class:`RegularizedClassifier` that apply only in one mode (:class:`rkhsreg._params.OnlyWhen`),
#: refused in the other; its other options are checked by the ``check_*`` calls in ``__init__``. (Not a
#: ``parameters`` attribute: that is ``nn.Module.parameters()``.)
CLASSIFIER_PARAMETERS = {
    "momentum": OnlyWhen("optimizer", "sgd", Interval(Real, 0, 1, closed="both")),
}


def _check_in_chans(model: nn.Module, in_chans: int | None) -> None:
    """in_chans builds a timm model; with an nn.Module it has no effect, so it is refused unless it states what the
    module takes already (its first convolution's input channels: recipes' configs say ``in_chans: 1`` for
    ``mnist_vgg5``)."""
    if in_chans is None:
        return
    first = next((m for m in model.modules() if isinstance(m, nn.modules.conv._ConvNd)), None)
    if first is not None and first.in_channels == in_chans:
        return
    takes = (f"the module's first convolution takes {first.in_channels} channel(s)" if first is not None
             else "the module has no convolution to check it against")
    raise ParameterError(
        f"RegularizedClassifier: in_chans={in_chans!r} has no effect with model={type(model).__name__}(...): it "
        f"applies only when model is a timm model name ('timm:NAME'), and {takes}; configure the nn.Module before "
        "passing it and leave in_chans out (a checkpoint saved when in_chans defaulted to 3: "
        "load_from_checkpoint(..., in_chans=None)).", parameter="in_chans", value=in_chans,
        allowed="None, or the module's own input channels")


def _create_timm(spec: str, num_classes: int, in_chans: int, kwargs: Mapping[str, Any]) -> nn.Module:
    """A timm model from ``"timm:NAME"`` (the one spelling, as on the command line), never pretrained."""
    if not spec.startswith("timm:") or spec == "timm:":
        raise ConfigurationError(f"model={spec!r} is not allowed; name a timm model as 'timm:NAME' (did you mean "
                                 f"'timm:{spec}'?), or pass an nn.Module.")
    name = spec[len("timm:"):]
    try:
        import timm
    except ImportError as exc:
        raise ImportError(f"model={spec!r} is a timm model, but timm is not installed: "
                          "pip install 'rkhsreg[models]', or pass an nn.Module.") from exc
    if not timm.is_model(name):
        raise ConfigurationError(f"model={spec!r} is not a timm model; see timm.list_models('*{name[:6]}*') or "
                                 "pass an nn.Module.")
    return timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, **dict(kwargs))


class RegularizedClassifier(pl.LightningModule):
    """Cross-entropy classification with optional RKHS-norm penalties and constraints.

    Args:
        model: an ``nn.Module`` returning logits, or a timm model as ``"timm:NAME"`` (created with ``pretrained=False``,
            ``num_classes`` and ``in_chans``; weights are never downloaded).
        num_classes: number of classes (accuracy metric, timm head).
        in_chans: input channels for a timm model (None: 3); with an nn.Module, refused unless it is the
            module's own (its first convolution's input channels).
        model_kwargs: extra keyword arguments for ``timm.create_model``.
        optimizer: ``"sgd"`` (paper: momentum 0.9) or ``"adam"`` (paper's protein recipe, lr 0.01).
        lr: learning rate (paper: 0.05 for the MNIST net, 0.1 for ResNets).
        momentum: SGD momentum (refused with ``optimizer="adam"``).
        weight_decay: L2 weight decay of the optimiser.
        lr_step_size: StepLR period in epochs (paper: 40), None for a constant rate.
        lr_gamma: StepLR factor (paper: 0.5).
        penalties: as in :class:`RKHSRegularization` (``{name: {"weight": w, **kwargs}}`` in configs).
        constraints: as in :class:`RKHSRegularization`.
        schedules: as in :class:`RKHSRegularization`.
        global_batch: as in :class:`RKHSRegularization`.

    Example:
        >>> clf = RegularizedClassifier("timm:resnet18", num_classes=10, lr=0.1,             # doctest: +SKIP
        ...                             penalties={"gradient_norm": {"weight": 0.1}},
        ...                             constraints={"spectral_norm_projection": {"radius": 1.0}})
        >>> pl.Trainer(max_epochs=1).fit(clf, train_loader, val_loader)                # doctest: +SKIP
    """

    def __init__(self, model: nn.Module | str, num_classes: int = 10, in_chans: int | None = None, *,
                 model_kwargs: dict[str, Any] | None = None, optimizer: Literal["sgd", "adam"] = "sgd",
                 lr: float = 0.05, momentum: float = 0.9, weight_decay: float = 0.0,
                 lr_step_size: int | None = None, lr_gamma: float = 0.5,
                 penalties: dict[str, dict[str, Any]] | Sequence[Penalty] | None = None,
                 constraints: dict[str, dict[str, Any]] | Sequence[Constraint] | None = None,
                 schedules: dict[str, Schedule] | None = None, global_batch: bool | list[str] = False) -> None:
        super().__init__()
        plain = {"penalties": penalties, "constraints": constraints}
        ignore = [k for k, v in plain.items() if v is not None and not _is_config(v)]
        if isinstance(model, nn.Module):
            ignore.append("model")
        self.save_hyperparameters(ignore=ignore)
        self.num_classes = check_int("num_classes", num_classes, low=2)
        validate_params(CLASSIFIER_PARAMETERS, {"optimizer": optimizer, "momentum": momentum},
                        owner="RegularizedClassifier", defaults=signature_defaults(RegularizedClassifier.__init__))
        in_chans_given = None if in_chans is None else check_int("in_chans", in_chans)
        in_chans = 3 if in_chans_given is None else in_chans_given
        self.optimizer_name = check_choice("optimizer", optimizer, ("sgd", "adam"))
        self.lr = check_real("lr", lr, strict=True)
        self.momentum = check_real("momentum", momentum, high=1.0)
        self.weight_decay = check_real("weight_decay", weight_decay)
        self.lr_step_size = None if lr_step_size is None else check_int("lr_step_size", lr_step_size)
        self.lr_gamma = check_real("lr_gamma", lr_gamma, strict=True, high=1.0)
        if isinstance(model, str):
            self.net = _create_timm(model, num_classes, in_chans, model_kwargs or {})
        elif isinstance(model, nn.Module):
            if model_kwargs:
                raise ConfigurationError(f"model_kwargs={model_kwargs!r} only applies to a timm model name; "
                                         "configure the nn.Module before passing it.")
            _check_in_chans(model, in_chans_given)
            self.net = model
        else:
            raise ConfigurationError(f"model={type(model).__name__} is not allowed; pass an nn.Module or a timm "
                                     "model as 'timm:NAME', e.g. 'timm:resnet18'.")
        self.regularization: RKHSRegularization | None = None
        if penalties or constraints:
            self.regularization = RKHSRegularization(penalties, constraints, schedules=schedules, forward="net",
                                                     global_batch=global_batch)
        elif schedules:
            raise ConfigurationError(f"schedules={schedules!r} given without penalties or constraints to schedule.")
        self.accuracy = nn.ModuleDict({f"{stage}_acc": _accuracy(self.num_classes)
                                       for stage in ("train", "val", "test")})

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.net(x)

    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        inputs, targets = batch[0], batch[1]
        logits = self(inputs)
        if isinstance(logits, torch.Tensor) and logits.ndim == 2 and logits.shape[1] != self.num_classes:
            raise ConfigurationError(
                f"RegularizedClassifier(num_classes={self.num_classes}), but its model returns {logits.shape[1]} "
                f"scores per example (output of shape {tuple(logits.shape)} on a {stage} batch); pass "
                f"num_classes={logits.shape[1]}, or give the model a final layer of {self.num_classes} outputs.")
        loss = F.cross_entropy(logits, targets)
        metric = self.accuracy[f"{stage}_acc"]
        metric(logits.detach(), targets)
        on_step = stage == "train"
        self.log(f"{stage}/loss", loss.detach(), on_step=on_step, on_epoch=True, batch_size=inputs.shape[0],
                 sync_dist=not on_step)
        self.log(f"{stage}/acc", metric, on_step=on_step, on_epoch=True, batch_size=inputs.shape[0])
        return loss

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # noqa: D102
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # noqa: D102
        return self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> torch.Tensor:  # noqa: D102
        return self._shared_step(batch, "test")

    def configure_callbacks(self) -> list[pl.Callback]:  # noqa: D102
        return [] if self.regularization is None else [self.regularization]

    def configure_optimizers(self) -> Any:  # noqa: D102
        params = self.net.parameters()
        if self.optimizer_name == "sgd":
            optimizer = torch.optim.SGD(params, lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)
        else:
            optimizer = torch.optim.Adam(params, lr=self.lr, weight_decay=self.weight_decay)
        if self.lr_step_size is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=self.lr_step_size, gamma=self.lr_gamma)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}


def _is_config(value: Any) -> bool:
    """Whether ``value`` is plain data (a dict of dicts) that hparams files can hold."""
    return isinstance(value, Mapping) and all(isinstance(v, Mapping) or v is None for v in value.values())


def _accuracy(num_classes: int) -> nn.Module:
    try:
        from torchmetrics.classification import MulticlassAccuracy
    except ImportError as exc:
        raise ImportError("RegularizedClassifier needs torchmetrics: pip install 'rkhsreg[lightning]'.") from exc
    return MulticlassAccuracy(num_classes=num_classes, average="micro")
