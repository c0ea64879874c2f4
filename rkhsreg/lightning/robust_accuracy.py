"""``RobustAccuracy``: a Lightning callback logging the robust accuracy at a few ε every N epochs.

Importing this module imports Lightning (``pytorch_lightning``, else ``lightning.pytorch``, chosen
by :mod:`rkhsreg.lightning._compat`); ``import rkhsreg.evaluation`` alone does not.

What it handles for you:

* Lightning runs validation under ``torch.inference_mode``, where no gradient can be taken: the
  attacks run inside ``torch.inference_mode(False)`` and ``torch.enable_grad()``, on copies of the
  probe inputs made outside inference mode. No ``Trainer(inference_mode=False)`` is needed.
* The network is evaluated in eval mode with every side effect contained
  (:func:`~rkhsreg.evaluation.evaluate_robustness`): modes, BatchNorm statistics, ``.grad``, RNG.
* Under DDP, a probe taken from the validation batches differs on each rank: each rank evaluates
  its own and the logged value is averaged over ranks (``sync_dist=True``). A probe given as
  ``data=`` is the same on every rank: the work is sharded over the ranks instead.

Example:
    >>> from rkhsreg.lightning import RobustAccuracy                 # doctest: +SKIP
    >>> trainer = pl.Trainer(callbacks=[RobustAccuracy([0.5, 1.0], every_n_epochs=5, n_examples=128)])
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from rkhsreg._errors import ConfigurationError
from rkhsreg._params import SEED, Boolean, Check, InstanceOf, Interval, IsCallable, Options, validates
from rkhsreg.evaluation._data import BOUNDS, EPSILONS, collect
from rkhsreg.evaluation.attacks import Attack
from rkhsreg.evaluation.ensemble import check_attacks
from rkhsreg.evaluation.result import epsilon_key
from rkhsreg.evaluation.settings import AttackSettings
from rkhsreg.evaluation.sweep import evaluate_robustness
from rkhsreg.lightning._adapters import (BatchToInputs, ForwardSpec, check_batch_to_inputs, check_forward,
                                         extract_inputs, resolve_network)
from rkhsreg.lightning._compat import check_trainer, never_validates, pl

__all__ = ["RobustAccuracy"]


def _non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"log_prefix={value!r} is not allowed; pass a non-empty string.")
    return value


class RobustAccuracy(pl.Callback):
    """Log ``<prefix>/clean`` and ``<prefix>/eps=<ε>`` (robust accuracy) at the end of validation epochs.

    Args:
        epsilons: the radii (input units).
        norm: ``"l2"`` or ``"linf"``.
        every_n_epochs: evaluate after the validation of epochs ``N-1, 2N-1, …``.
        n_examples: probe size: the first ``n_examples`` validation examples (per rank), or of ``data`` (at most:
            a smaller validation set or ``data`` is evaluated whole).
        data: a fixed probe ``(inputs, labels)`` (or a Dataset / DataLoader) instead of validation batches.
        steps: iterations of the default attacks (cheaper than the 100 of a final evaluation).
        attacks: an explicit ensemble (default: FAB-T, APGD-CE, targeted APGD-DLR).
        batch_size: attack batch size.
        bounds: the valid input box.
        batch_to_inputs: ``batch -> (inputs, targets)``; default ``(batch[0], batch[1])``.
        forward: the network to attack: None (the LightningModule), a submodule name, or
            ``fn(pl_module, inputs) -> logits``.
        log_prefix: prefix of the logged names.
        seed: seed of the attacks' randomness (the same at every evaluation).
        sanity: also run the sanity checks (warnings); off by default to keep validation cheap.

    A fit in which it would never evaluate (no validation data or ``validation_step``, ``limit_val_batches=0``,
    or ``every_n_epochs`` past ``max_epochs``) is said once, with a ``UserWarning``, when the fit starts.

    Example:
        >>> cb = RobustAccuracy([0.5, 1.0], every_n_epochs=2, n_examples=64, steps=20)  # doctest: +SKIP
    """

    #: Each option's allowed forms (rkhsreg._params), checked before ``__init__`` runs.
    parameters = {
        "epsilons": EPSILONS,
        "norm": Options(("l2", "linf")),
        "every_n_epochs": Interval(Integral, 1, None),
        "n_examples": Interval(Integral, 1, None),
        "data": [None, InstanceOf(tuple, list, Dataset, DataLoader, doc="(inputs, labels) tensors, or batches")],
        "steps": Interval(Integral, 1, None),
        "attacks": [None, Check(lambda value: tuple(check_attacks(value)), "a non-empty list of Attack objects "
                                "and/or registered names", examples=[("default",)])],
        "batch_size": Interval(Integral, 1, None),
        "bounds": BOUNDS,
        "batch_to_inputs": [None, IsCallable(doc="batch -> (inputs, targets)")],
        "forward": [None, InstanceOf(str), IsCallable(doc="fn(pl_module, inputs) -> logits")],
        "log_prefix": Check(_non_empty, "a non-empty string", examples=["robust"]),
        "seed": SEED,
        "sanity": Boolean(),
    }

    @validates(parameters, owner="RobustAccuracy")
    def __init__(self, epsilons: Sequence[float], *, norm: str = "l2", every_n_epochs: int = 1, n_examples: int = 128,
                 data: Any = None, steps: int = 20, attacks: Sequence[Attack] | None = None, batch_size: int = 128,
                 bounds: tuple[float, float] = (0.0, 1.0), batch_to_inputs: BatchToInputs | None = None,
                 forward: ForwardSpec = None, log_prefix: str = "robust", seed: int = 0, sanity: bool = False) -> None:
        super().__init__()
        self.epsilons = epsilons    # the options are checked against `parameters` before the body runs
        self.norm = norm
        self.every_n_epochs = every_n_epochs
        self.n_examples = n_examples
        self.attack = AttackSettings(attacks=attacks, steps=steps)   # checked here, reused at every evaluation
        self.steps, self.attacks = self.attack.steps, self.attack.attacks
        self.batch_size = batch_size
        self.bounds = bounds
        self.batch_to_inputs = check_batch_to_inputs(batch_to_inputs)
        self.forward = check_forward(forward)
        self.log_prefix = log_prefix
        self.seed = seed
        self.sanity = sanity
        self.fixed = None if data is None else collect(data, n_examples, at_most=True)
        self._probe: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.history: list[dict[str, float]] = []
        self.last_result: Any = None

    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:  # noqa: D102
        check_trainer(trainer, self)
        if stage == "fit":
            reason = never_validates(trainer, pl_module, self.every_n_epochs)
            if reason:   # said once, not refused: a debugging run may skip validation on purpose
                pl.utilities.rank_zero_warn(
                    f"RobustAccuracy will log nothing in this run: it evaluates at the end of validation epochs, and "
                    f"{reason}. Give the Trainer validation (trainer.fit(model, train_loader, val_loader) or a "
                    "datamodule with val_dataloader, a validation_step, limit_val_batches > 0; data= only replaces "
                    "the probe, not the loop), or remove the callback.", category=UserWarning)

    def _due(self, trainer: Any) -> bool:
        return not trainer.sanity_checking and (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def on_validation_epoch_start(self, trainer: Any, pl_module: Any) -> None:  # noqa: D102
        self._probe = []

    def on_validation_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int,
                                dataloader_idx: int = 0) -> None:  # noqa: D102
        if self.fixed is not None or dataloader_idx != 0 or not self._due(trainer):
            return
        have = sum(x.shape[0] for x, _ in self._probe)
        if have >= self.n_examples:
            return
        inputs, targets = extract_inputs(self.batch_to_inputs, batch)
        if targets is None:
            raise ConfigurationError("RobustAccuracy needs labels, but batch_to_inputs returned targets=None; "
                                     "pass batch_to_inputs returning (inputs, labels).")
        take = self.n_examples - have
        with torch.inference_mode(False):  # copies that are ordinary tensors, usable by autograd later
            self._probe.append((inputs[:take].detach().cpu().clone(), targets[:take].detach().cpu().clone()))

    def on_validation_epoch_end(self, trainer: Any, pl_module: Any) -> None:  # noqa: D102
        if not self._due(trainer):
            return
        result = self.measure(pl_module)
        if result is None:
            return
        metrics = {f"{self.log_prefix}/clean": result.clean_accuracy}
        metrics.update({f"{self.log_prefix}/eps={epsilon_key(e)}": a
                        for e, a in zip(result.epsilons, result.robust_accuracy)})
        self.history.append({"epoch": float(trainer.current_epoch), **metrics})
        pl_module.log_dict(metrics, on_step=False, on_epoch=True, sync_dist=self.fixed is None,
                           batch_size=result.n_examples)

    def measure(self, pl_module: Any) -> Any:
        """Evaluate the probe now (also under ``torch.inference_mode``); the result, or None without a probe.

        Example:
            >>> with torch.inference_mode():
            ...     callback.measure(pl_module).robust_accuracy  # doctest: +SKIP
            [0.91, 0.40]
        """
        shared = self.fixed is not None
        if shared:
            probe = self.fixed
        elif self._probe:
            probe = (torch.cat([x for x, _ in self._probe]), torch.cat([y for _, y in self._probe]))
        else:
            return None
        net = resolve_network(pl_module, self.forward)
        with torch.inference_mode(False), torch.enable_grad():
            result = evaluate_robustness(
                net, (probe[0].clone(), probe[1].clone()), norm=self.norm, epsilons=self.epsilons,
                attack=self.attack, batch_size=self.batch_size, bounds=self.bounds, seed=self.seed, sanity=self.sanity,
                distributed=None if shared else False)
        self._probe = []
        self.last_result = result
        return result

    def state_dict(self) -> dict[str, Any]:  # noqa: D102
        return {"history": list(self.history)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:  # noqa: D102
        self.history = list(state_dict.get("history", []))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(epsilons={self.epsilons}, norm={self.norm!r}, "
                f"every_n_epochs={self.every_n_epochs}, n_examples={self.n_examples}, steps={self.steps})")
