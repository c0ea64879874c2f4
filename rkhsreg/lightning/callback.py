"""``RKHSRegularization``: add penalties and constraints to any LightningModule with one callback.

How it hooks in, and why:

- Penalties join the loss **before the single backward**. In ``setup`` the module's ``training_step`` is
  wrapped (restored in ``teardown``): the wrapper calls the original, takes its loss (a tensor or the
  ``"loss"`` of a dict) and adds Σ weight × penalty on the same batch. No hook calls ``backward()``: a
  second backward desynchronises DDP ranks. Gradient accumulation scales the penalties with the loss.
- Constraints run right after each *real* optimiser step, through
  ``torch.optim.Optimizer.register_step_post_hook`` on the trainer's optimizers (removed at teardown): a
  step skipped by accumulation or by AMP's inf check is not followed by a projection.
- Weights follow :mod:`~rkhsreg.functional.schedules`, recomputed from ``global_step`` / ``current_epoch``
  before each step's penalties and before each projection (a constraint's scheduled ``radius``, or else
  :meth:`~rkhsreg.Constraint.set_epoch`, through which the projection follows the paper's radius schedule).
  Nothing of a schedule is state: a run resumed from any checkpoint (epoch end, step checkpoint at an epoch
  boundary or mid-epoch) follows the same curve, whatever hooks Lightning calls or skips on restart.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg._params import Boolean, Check, InstanceOf, IsCallable, validates
from rkhsreg.lightning._adapters import (BatchToInputs, ForwardSpec, check_batch_to_inputs, check_forward,
                                         extract_inputs, resolve_network)
from rkhsreg.lightning._compat import check_trainer, never_validates, pl
from rkhsreg.lightning._resume import (STATE_KEY, STATE_VERSION, Report, ResumeWarning, check_state, compare,
                                       describe, legacy_key)
from rkhsreg.functional.schedules import Schedule
from rkhsreg.training import (ConstraintSpec, PenaltySpec, PenaltyTerms, apply_constraints, build_constraints,
                              build_penalties, check_global_batch, evaluate_penalties)

__all__ = ["RKHSRegularization", "ResumeWarning"]

_UNSUPPORTED = ("FSDPStrategy", "DeepSpeedStrategy", "ModelParallelStrategy")


def _unsupported_strategies() -> tuple[type, ...]:
    return tuple(cls for cls in (getattr(pl.strategies, name, None) for name in _UNSUPPORTED) if cls is not None)


def _refuse() -> Any:
    raise ValueError("")


class RKHSRegularization(pl.Callback):
    """Adds RKHS-norm penalties to the training loss and projects weights after each optimiser step.

    Args:
        penalties: plugin objects, ``{label: Penalty}`` or ``{registered_name: {"weight": w, **kwargs}}``.
            A penalty whose weight is 0 is skipped (costs nothing). At most one may replace the clean
            loss (``replaces_loss``, e.g. PGD adversarial training).
        constraints: plugin objects, ``{label: Constraint}`` or ``{registered_name: {**kwargs}}``.
        schedules: ``{label: Schedule}``. A penalty label schedules its weight (every step); a constraint
            label schedules its ``radius`` (from the current epoch, before each projection) instead of its
            own ``set_epoch``.
        batch_to_inputs: ``batch -> (inputs, targets)``; default ``(batch[0], batch[1])``.
        forward: the network f the penalties differentiate and the constraints project: None (the
            LightningModule, called as ``pl_module(inputs)``), a submodule name (``"net"``) or a function
            ``(pl_module, inputs) -> logits``.
        global_batch: True, or a list of penalty labels, to take the sup over the batch of all DDP processes:
            each process gathers every process's batch and computes the penalty on it, so a 2-process run
            equals a 1-process run on the same global batch; those penalties then cost ``world_size`` times
            their local work. Penalties that average over examples (``loss_gradient``) or ignore the data
            (``spectral_norm``) are already exact without it. BatchNorm running statistics are averaged
            over the processes while these penalties run, so every rank gets the same value.
        log_validation: also log each penalty's value on validation batches (``<prefix>/<label>/val_value``).
            Penalties need input gradients: this requires ``Trainer(inference_mode=False)``.
        log_prefix: prefix of the logged names ``<prefix>/<label>/value``, ``<prefix>/<label>/weighted``,
            ``<prefix>/<label>/weight`` (scheduled ones), ``<prefix>/<label>/<key>`` for what the penalty
            reports in ``diagnostics()`` (the ‖f‖²_δ search's ``value_ratio``), ``<prefix>/passes/forward`` and
            ``<prefix>/passes/backward`` (extra passes of the step, in local-batch equivalents); every step
            on which at least one penalty is active, with ``on_step=True``; and ``<prefix>/total``, the sum
            of the weighted penalties (their whole contribution to the loss).
        prog_bar: also show ``<prefix>/total`` on Lightning's progress bar.

    One callback per Trainer, listed once (its checkpoint key is ``"RKHSRegularization"`` whatever its labels;
    Lightning refuses two callbacks with one key when the Trainer is built, and ``setup`` refuses a second one or
    a repeat added to ``trainer.callbacks`` since). Resuming restores the plugins' state by label and keeps the
    constructor's hyper-parameters; a configuration that changed since the checkpoint is said in a
    :class:`ResumeWarning` (see :meth:`load_state_dict`).

    Raises:
        ConfigurationError: at construction for bad arguments; at ``setup`` for manual optimisation,
            FSDP / DeepSpeed / model-parallel strategies, ``log_validation`` under inference mode, or this
            callback twice (or another RKHSRegularization) in ``trainer.callbacks``.
        InputError: resuming from a checkpoint whose RKHSRegularization state cannot be read.

    Example:
        >>> reg = RKHSRegularization(                                          # doctest: +SKIP
        ...     penalties={"gradient_norm": {"weight": 0.1}},
        ...     constraints={"spectral_norm_projection": {"radius": 1.0}})
        >>> pl.Trainer(callbacks=[reg], strategy="ddp", devices=2).fit(model, loader)  # doctest: +SKIP
    """

    #: Each option's allowed forms (rkhsreg._params), checked before ``__init__`` runs (``schedules`` and
    #: ``global_batch`` name labels: checked against the penalties in the body).
    parameters = {
        "penalties": [None, Check(lambda value: (build_penalties(value), value)[1],
                                  "{label: Penalty}, {name: {kwargs}} or a list of penalties",
                                  domain=(Mapping, list, tuple), examples=[{"gradient_norm": {}}])],
        "constraints": [None, Check(lambda value: (build_constraints(value), value)[1],
                                    "{label: Constraint}, {name: {kwargs}} or a list of constraints",
                                    domain=(Mapping, list, tuple), examples=[{"spectral_norm_projection": {}}])],
        "schedules": [None, InstanceOf(Mapping, doc="{label: Schedule}")],
        "batch_to_inputs": [None, IsCallable(doc="batch -> (inputs, targets)")],
        "forward": [None, InstanceOf(str), IsCallable(doc="fn(pl_module, inputs) -> logits")],
        "global_batch": [Boolean(), InstanceOf(list, tuple, doc="a list of penalty labels")],
        "log_validation": Boolean(),
        "log_prefix": Check(lambda value: value if isinstance(value, str) and value else _refuse(),
                            "a non-empty string", examples=["rkhsreg"]),
        "prog_bar": Boolean(),
    }

    @validates(parameters, owner="RKHSRegularization")
    def __init__(self, penalties: PenaltySpec = None, constraints: ConstraintSpec = None, *,
                 schedules: Mapping[str, Schedule] | None = None, batch_to_inputs: BatchToInputs | None = None,
                 forward: ForwardSpec = None, global_batch: bool | Sequence[str] = False,
                 log_validation: bool = False, log_prefix: str = "rkhsreg", prog_bar: bool = False) -> None:
        self.penalties = build_penalties(penalties)
        self.constraints = build_constraints(constraints)
        if not self.penalties and not self.constraints:  # said once, not refused: a baseline run may want it
            warnings.warn("RKHSRegularization got no penalty and no constraint: it will not change training; pass "
                          "penalties={...} and/or constraints={...}.", UserWarning, stacklevel=3)
        clash = sorted(set(self.penalties) & set(self.constraints))
        if clash:
            raise ConfigurationError(f"labels {clash} name both a penalty and a constraint; give them distinct "
                                     "labels with a dict {label: plugin}.")
        self.schedules = self._check_schedules(schedules)
        self._check_scheduled_weights(penalties)
        self.global_batch = global_batch
        check_global_batch(global_batch, list(self.penalties))
        self.batch_to_inputs = check_batch_to_inputs(batch_to_inputs)
        self.forward = check_forward(forward)
        self.log_validation = log_validation
        self.log_prefix = log_prefix
        self.prog_bar = prog_bar
        self.regularized_steps = 0
        self.projections = 0
        self._module: pl.LightningModule | None = None
        self._original: Any = None
        self._net: nn.Module | None = None
        self._handles: list[Any] = []
        self._config = {"penalties": describe(self.penalties), "constraints": describe(self.constraints)}

    # ------------------------------------------------------------------ configuration
    def _check_scheduled_weights(self, spec: Any) -> None:
        """A penalty given an explicit weight and a schedule: the schedule sets the weight every step, so a weight
        other than the schedule's value would be ignored silently — refused, naming both."""
        for label, schedule in self.schedules.items():
            item = spec.get(label) if isinstance(spec, Mapping) else None
            weight = item.get("weight") if isinstance(item, Mapping) else None
            target = getattr(schedule, "value", None)
            if weight is not None and target is not None and float(weight) != float(target):
                raise ConfigurationError(f"penalties[{label!r}] gives weight={weight!r}, but schedules[{label!r}]="
                                         f"{schedule!r} sets the weight every step (to {target!r} at the end): the "
                                         "given weight would be ignored. Leave the weight out, or give the schedule "
                                         "that value.")

    def _check_schedules(self, schedules: Mapping[str, Schedule] | None) -> dict[str, Schedule]:
        if schedules is None:
            return {}
        if not isinstance(schedules, Mapping):
            raise ConfigurationError(f"schedules={schedules!r} is not allowed; pass a dict {{label: Schedule}}.")
        checked: dict[str, Schedule] = {}
        for label, schedule in schedules.items():
            if not isinstance(schedule, Schedule):
                raise ConfigurationError(f"schedules[{label!r}]={schedule!r} is not an rkhsreg.lightning Schedule; "
                                         "use Constant, LinearWarmup or RadiusDecay.")
            if label in self.constraints:
                if not hasattr(self.constraints[label], "radius"):
                    raise ConfigurationError(f"schedules[{label!r}]: constraint {label!r} has no 'radius' to "
                                             "schedule; schedule a penalty weight or a constraint with a radius.")
                own = self.constraints[label].own_schedule()
                if own is not None:   # both would scale the radius: their product, neither schedule
                    raise ConfigurationError(
                        f"schedules[{label!r}]={schedule!r} and constraint {label!r}'s own schedule {own!r} "
                        f"(from its arguments, e.g. kappa) would both set its radius, compounding into neither. "
                        f"Keep one: create the constraint without its schedule (kappa=None), or drop "
                        f"schedules[{label!r}].")
            elif label not in self.penalties:
                known = sorted([*self.penalties, *self.constraints])
                raise ConfigurationError(f"schedules[{label!r}] names no penalty or constraint; known labels: {known}.")
            checked[label] = schedule
        return checked

    @property
    def state_key(self) -> str:
        """``"RKHSRegularization"``, whatever the labels: a changed callback still finds its checkpointed state."""
        return STATE_KEY

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_trainer(trainer, self, alone=RKHSRegularization)
        if self.log_validation and stage in ("fit", "validate") and trainer.validate_loop.inference_mode:
            raise ConfigurationError("log_validation=True evaluates penalties on validation batches, which needs "
                                     "gradients w.r.t. the inputs, but the Trainer runs validation under "
                                     "torch.inference_mode. Create it with Trainer(inference_mode=False), or pass "
                                     "log_validation=False.")
        self._net = resolve_network(pl_module, self.forward)
        if stage != "fit":
            return
        reason = never_validates(trainer, pl_module) if self.log_validation else ""
        if reason:   # said once, not refused, as RobustAccuracy does
            pl.utilities.rank_zero_warn(f"RKHSRegularization(log_validation=True) will log no validation value in "
                                        f"this run: {reason}.", category=UserWarning)
        if not pl_module.automatic_optimization:
            raise ConfigurationError(
                f"{type(pl_module).__name__}.automatic_optimization is False; RKHSRegularization adds penalties to "
                "the loss Lightning back-propagates, which manual optimisation bypasses. Remove the callback and "
                "call rkhsreg.training.regularized_loss(loss, model, x, y, penalties) before manual_backward, then "
                "rkhsreg.training.apply_constraints(model, constraints) after opt.step().")
        unsupported = _unsupported_strategies()
        if unsupported and isinstance(trainer.strategy, unsupported):
            raise ConfigurationError(
                f"strategy={type(trainer.strategy).__name__} shards parameters, so penalties and spectral-norm "
                "constraints would see partial weights. Use strategy='ddp' (multi-GPU / multi-node via torchrun or "
                "SLURM) or a single device.")
        current = pl_module.__dict__.get("training_step")
        if getattr(current, "_rkhsreg_wrapped", False):
            raise ConfigurationError(f"{type(pl_module).__name__}.training_step is already wrapped by another "
                                     "RKHSRegularization callback; pass all penalties and constraints to one callback.")
        self._wrap(pl_module)

    def _wrap(self, pl_module: pl.LightningModule) -> None:
        self._module = pl_module
        self._original = pl_module.__dict__.get("training_step")
        step = pl_module.training_step

        @functools.wraps(step)
        def training_step(*args: Any, **kwargs: Any) -> Any:
            output = step(*args, **kwargs)
            batch = args[0] if args else kwargs.get("batch")
            return self._regularize(pl_module, output, batch)

        training_step._rkhsreg_wrapped = True  # type: ignore[attr-defined]
        pl_module.training_step = training_step  # type: ignore[method-assign]

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.constraints:
            for optimizer in trainer.optimizers:
                self._handles.append(optimizer.register_step_post_hook(self._project))

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._warn_never_on(trainer)

    def _warn_never_on(self, trainer: pl.Trainer) -> None:
        """Say once, when the run's length is known (the data is set up by now), which scheduled penalty keeps
        weight 0 over the whole run: it is never applied nor logged (a warm-up longer than the run)."""
        try:
            total = float(trainer.estimated_stepping_batches)
        except Exception:   # accumulation that varies by epoch: the length is unknown, say nothing
            return
        batches = float(trainer.num_training_batches)
        per_epoch = math.ceil(batches / trainer.accumulate_grad_batches) if math.isfinite(batches) and batches else None
        if not math.isfinite(total) or total < 1:
            return
        first_step, first_epoch = trainer.global_step, trainer.current_epoch
        last_step = int(total) - 1
        if last_step < first_step:
            return
        epochs = [last_step if per_epoch is None else last_step // per_epoch]
        if trainer.max_epochs is not None and trainer.max_epochs > 0:
            epochs.append(trainer.max_epochs - 1)
        last_epoch = max(first_epoch, min(epochs))
        positions = []
        for i in range(65):   # the run's start, its end and points between (a schedule of step and epoch)
            step = first_step + round(i / 64 * (last_step - first_step))
            epoch = (min(last_epoch, max(first_epoch, step // per_epoch)) if per_epoch
                     else first_epoch + round(i / 64 * (last_epoch - first_epoch)))
            positions.append((step, epoch))
        length = ", ".join(f"{name}={value}" for name, value in (("max_steps", trainer.max_steps),
                                                                 ("max_epochs", trainer.max_epochs))
                           if value is not None and value >= 0)
        for label in self.penalties:
            schedule = self.schedules.get(label)
            if schedule is None or any(float(schedule(step, epoch)) > 0 for step, epoch in positions):
                continue
            pl.utilities.rank_zero_warn(
                f"RKHSRegularization: schedules[{label!r}]={schedule!r} keeps penalty {label!r} at weight 0 for this "
                f"whole run ({length or 'its length'}: steps {first_step}–{last_step}, epochs {first_epoch}–"
                f"{last_epoch}): it is never applied nor logged. Shorten the schedule (a warm-up that ends within "
                "the run, or unit='step'), train longer, or remove the penalty.", category=UserWarning)

    def _project(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        if self._module is not None:
            self._schedule_constraints(self._module.trainer)
        apply_constraints(self._net, self.constraints)
        self.projections += 1

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._schedule_constraints(trainer)

    def _schedule_constraints(self, trainer: pl.Trainer) -> None:
        for label, constraint in self.constraints.items():
            if label in self.schedules:
                constraint.radius = self.schedules[label](trainer.global_step, trainer.current_epoch)
            else:
                constraint.set_epoch(trainer.current_epoch)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        self._restore()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._restore()

    def _restore(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        module = self._module
        if module is not None and getattr(module.__dict__.get("training_step"), "_rkhsreg_wrapped", False):
            if self._original is None:
                del module.__dict__["training_step"]
            else:
                module.__dict__["training_step"] = self._original
        self._module = self._original = None

    # ------------------------------------------------------------------ the step
    def _apply_schedules(self, trainer: pl.Trainer) -> None:
        for label, penalty in self.penalties.items():
            if label in self.schedules:
                penalty.weight = float(self.schedules[label](trainer.global_step, trainer.current_epoch))

    def _regularize(self, pl_module: pl.LightningModule, output: Any, batch: Any) -> Any:
        if output is None:  # the user skipped this batch: no loss, no backward
            return output
        if isinstance(output, torch.Tensor):
            loss = output
        elif isinstance(output, Mapping) and isinstance(output.get("loss"), torch.Tensor):
            loss = output["loss"]
        else:
            raise InputError(f"{type(pl_module).__name__}.training_step returned {type(output).__name__}; "
                             "RKHSRegularization needs a loss tensor, a dict with a 'loss' tensor, or None.")
        self._apply_schedules(pl_module.trainer)
        inputs, targets = extract_inputs(self.batch_to_inputs, batch)
        terms = evaluate_penalties(self._net, inputs, targets, self.penalties, global_batch=self.global_batch)
        total = terms.combine(loss)
        self.regularized_steps += 1
        if terms.values:  # nothing to log when every penalty is off (Lightning's log costs ~1 ms a call)
            self._log(pl_module, terms, inputs.shape[0])
        if isinstance(output, torch.Tensor):
            return total
        return {**output, "loss": total}

    def _log(self, pl_module: pl.LightningModule, terms: PenaltyTerms, batch_size: int) -> None:
        prefix = self.log_prefix
        metrics: dict[str, Any] = {f"{prefix}/passes/forward": terms.passes.forward,
                                   f"{prefix}/passes/backward": terms.passes.backward}
        for label, value in terms.values.items():
            metrics[f"{prefix}/{label}/value"] = value
            metrics[f"{prefix}/{label}/weighted"] = terms.weighted[label]
            for key, number in self.penalties[label].diagnostics().items():
                metrics[f"{prefix}/{label}/{key}"] = number
        for label in self.schedules.keys() & self.penalties.keys():
            metrics[f"{prefix}/{label}/weight"] = self.penalties[label].weight
        total = torch.stack(list(terms.weighted.values())).sum()
        if self.prog_bar:
            pl_module.log(f"{prefix}/total", total, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
        else:
            metrics[f"{prefix}/total"] = total
        pl_module.log_dict(metrics, on_step=True, on_epoch=False, batch_size=batch_size)

    # ------------------------------------------------------------------ validation values
    def on_validation_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                                batch_idx: int, dataloader_idx: int = 0) -> None:
        if not self.log_validation or not self.penalties:
            return
        inputs, targets = extract_inputs(self.batch_to_inputs, batch)
        saved = {label: copy.deepcopy(p.state_dict()) for label, p in self.penalties.items()}
        try:
            with torch.enable_grad():
                terms = evaluate_penalties(self._net, inputs, targets, self.penalties)
        finally:  # validation must not advance the penalties' state (power iterations, generators)
            for label, penalty in self.penalties.items():
                penalty.load_state_dict(saved[label])
        metrics = {f"{self.log_prefix}/{label}/val_value": value for label, value in terms.values.items()}
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=True, batch_size=inputs.shape[0])

    # ------------------------------------------------------------------ checkpointing
    def state_dict(self) -> dict[str, Any]:
        return {"version": STATE_VERSION,
                "penalties": {label: p.state_dict() for label, p in self.penalties.items()},
                "constraints": {label: c.state_dict() for label, c in self.constraints.items()},
                "weights": {label: p.weight for label, p in self.penalties.items()},
                "config": copy.deepcopy(self._config),
                "regularized_steps": self.regularized_steps, "projections": self.projections}

    def on_load_checkpoint(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           checkpoint: dict[str, Any]) -> None:
        states = checkpoint.get("callbacks") or {}
        if STATE_KEY in states:
            return
        legacy = legacy_key(states)
        if legacy is not None:  # written by rkhsreg 0.1.0, keyed by its labels: found under the fixed key now
            states[STATE_KEY] = states[legacy]
        elif trainer.state.fn == "fit":
            labels = [*self.penalties, *self.constraints]
            pl.utilities.rank_zero_warn(
                f"RKHSRegularization: the checkpoint holds no state of this callback (it was written without it): "
                f"{', '.join(map(repr, labels)) or 'nothing'} start fresh and the step counters at 0. Resume from a "
                "checkpoint written with the callback to continue its penalties' state.", category=ResumeWarning)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore the plugins' state, matched by label; hyper-parameters stay the constructor's.

        A label the checkpoint has and the callback lacks (or holds a plugin of another type) is not restored, a
        label the callback has and the checkpoint lacks starts fresh, and hyper-parameters that differ keep the
        constructor's value: each of these is said in one :class:`ResumeWarning`.

        Raises:
            InputError: the state is not one this callback wrote (wrong structure, newer version, or a
                plugin that cannot read its part).
        """
        state = check_state(state_dict)
        report = Report()
        for kind, plugins in (("penalty", self.penalties), ("constraint", self.constraints)):
            part = "penalties" if kind == "penalty" else "constraints"
            saved, configs, current = state[part], state["config"][part], self._config[part]
            for label, plugin_state in saved.items():
                if label not in plugins:
                    report.dropped.append(f"{kind} {label!r} (this callback has no {kind} of that label)")
                    continue
                was = configs.get(label, {}).get("type") if isinstance(configs.get(label), Mapping) else None
                if was is not None and was != current[label]["type"]:
                    report.dropped.append(f"{kind} {label!r} (a {was} in the checkpoint, a "
                                          f"{current[label]['type']} here: it starts fresh)")
                    continue
                try:
                    plugins[label].load_state_dict(dict(plugin_state))
                except Exception as exc:
                    raise InputError(f"checkpoint['callbacks'][{STATE_KEY!r}][{part!r}][{label!r}] cannot be read by "
                                     f"{type(plugins[label]).__name__}.load_state_dict ({type(exc).__name__}: {exc}). "
                                     "Resume with the plugin that wrote it, or from another checkpoint.") from exc
                report.restored.append(repr(label))
                if label in configs:
                    report.changed += compare(kind, label, configs[label], current[label])
                elif kind == "penalty" and label in state["weights"] and label not in self.schedules:
                    saved_weight = state["weights"][label]
                    if saved_weight != plugins[label].weight:  # version 1: only the weight was kept
                        report.changed.append(f"penalty {label!r} weight: {saved_weight!r} in the checkpoint, "
                                              f"{plugins[label].weight!r} here")
            report.fresh += [f"{kind} {label!r}" for label in plugins if label not in saved]
        self.regularized_steps = state["regularized_steps"]
        self.projections = state["projections"]
        message = report.message()
        if message:
            pl.utilities.rank_zero_warn(message, category=ResumeWarning)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(penalties={self.penalties!r}, constraints={self.constraints!r}, "
                f"global_batch={self.global_batch!r})")
