"""``RKHSNormMonitor``: watch lower and upper bounds of ‖f‖_H on a fixed probe batch during training.

Lower bounds come from the penalty plugins' estimates (‖f‖²_δ, ‖f‖²_τ, ‖∇f‖²: each is a sup over the
probe batch of a squared quantity that ‖f‖_H dominates, up to the plugin's radius); the upper bound is
the product of per-layer spectral norms, with the reshaped (paper) and the operator (true Lipschitz)
norms, times the constants that weight-free layers declare (``rkhsreg.Normalize``: 1 / min std), so that both
bounds are of the same function, input normalisation included (a normalisation written inline in ``forward``
cannot be seen: use ``rkhsreg.Normalize``). The monitor evaluates in eval mode, under ``torch.enable_grad`` with the result detached: it never
back-propagates into the parameters (their ``.grad`` is untouched), restores every submodule's mode,
the global RNG and the plugins' state (power-iteration vectors, generators).

Each lower bound runs from one state of the monitor's own, taken after a first, discarded evaluation on the
probe: the ‖f‖²_δ search calibrates once per monitor (its plan is then fixed, quietly: its warnings concern
the monitor, not the training), and every measurement uses the same random draws, so successive values differ
only because the network did.
"""

from __future__ import annotations

import copy
import csv
import math
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

import torch
from torch import nn

from numbers import Integral

from rkhsreg._checks import check_choice
from rkhsreg._params import Check, InstanceOf, Interval, IsCallable, OnlyWhen, validates
from rkhsreg._errors import ConfigurationError, InputError, PluginNotFoundError, PluginValidationError, RKHSRegError
from rkhsreg._plugin import Penalty
from rkhsreg._registry import create_penalty
from rkhsreg.functional._context import restore_modes
from rkhsreg.lightning._adapters import (BatchToInputs, ForwardSpec, check_batch_to_inputs, check_forward,
                                         extract_inputs, resolve_network)
from rkhsreg.lightning._compat import check_trainer, pl
from rkhsreg.penalties.adversarial_perturbation import SearchBudgetWarning
from rkhsreg.training import PenaltySpec, build_penalties

__all__ = ["RKHSNormMonitor", "DEFAULT_LOWER_BOUNDS", "plot_norm_bounds"]

#: label -> registered penalty used by default (those that cannot be loaded are skipped with a warning).
DEFAULT_LOWER_BOUNDS: dict[str, str] = {"perturbation": "adversarial_perturbation",
                                        "deformation": "adversarial_deformation", "gradient": "gradient_norm"}
_METHODS = ("reshape", "operator")


def _default_lower_bounds() -> dict[str, Penalty]:
    found: dict[str, Penalty] = {}
    for label, name in DEFAULT_LOWER_BOUNDS.items():
        try:
            found[label] = create_penalty(name, weight=1.0)
        except (PluginNotFoundError, PluginValidationError) as exc:
            warnings.warn(f"RKHSNormMonitor: lower bound {label!r} skipped: {exc}", stacklevel=3)
    return found


def _not_a_string(value: Any) -> Any:
    if isinstance(value, str):
        raise ConfigurationError(f"upper_bounds={value!r} is a string; pass a list such as [{value!r}] (allowed: "
                                 f"{', '.join(map(repr, _METHODS))}).")
    return value


def _lower_bounds(value: Any) -> Any:
    """``lower_bounds`` as :func:`build_penalties` reads it (its messages name this parameter), each penalty one
    that declares itself a lower bound of ‖f‖_H (``rkhs_bound = "lower"``): an upper bound or a baseline logged as
    ``lower/...`` would be a false bound."""
    built = build_penalties(value, param="lower_bounds")
    for label, penalty in built.items():
        bound = getattr(type(penalty), "rkhs_bound", None)
        if bound != "lower":
            kind = {"upper": "an upper bound of the RKHS norm",
                    None: "not a bound of the RKHS norm (a baseline)"}.get(bound, f"declared rkhs_bound={bound!r}")
            name = getattr(penalty, "name", "") or type(penalty).__name__
            raise ConfigurationError(
                f"lower_bounds: {label!r} is the penalty {name!r}, {kind}; only penalties declared as lower bounds "
                f"(rkhs_bound = 'lower') are measured as lower bounds: {', '.join(map(repr, _registered_lower()))}. "
                "Upper bounds are the monitor's upper_bounds=('reshape', 'operator').")
    return value


def _registered_lower() -> list[str]:
    """The registered penalties declared as lower bounds of ‖f‖_H (those that load)."""
    from rkhsreg._registry import list_penalties, load_plugin
    found = []
    for name in list_penalties():
        try:
            if getattr(load_plugin("rkhsreg.penalties", name), "rkhs_bound", None) == "lower":
                found.append(name)
        except (PluginNotFoundError, PluginValidationError):
            continue
    return found


def _refuse() -> Any:
    raise ValueError("")


def _declared(net: nn.Module) -> float:
    """The product of the Lipschitz constants the weight-free leaves of ``net`` declare (``lipschitz_constant()``:
    ``rkhsreg.Normalize``'s 1 / min std): the upper bounds are of the whole function the lower bounds measure, input
    normalisation included."""
    return math.prod(float(m.lipschitz_constant()) for m in net.modules()
                     if not list(m.children()) and callable(getattr(m, "lipschitz_constant", None))
                     and not isinstance(getattr(m, "weight", None), torch.Tensor))


class RKHSNormMonitor(pl.Callback):
    """Logs, every ``every_n_steps`` optimiser steps, bounds of the RKHS norm on a fixed probe batch.

    Logged names (``<prefix>`` = ``log_prefix``): ``<prefix>/lower/<label>`` = √(estimate) of each
    lower-bound penalty (e.g. the per-class δ estimate is ≤ ε² Σ_k ‖f_k‖²_H, so divide by ε for the
    perturbation bound), and ``<prefix>/upper/<method>`` = Π_l σ_l over conv/linear layers. Values are
    also kept in :attr:`history` (saved in checkpoints) for :func:`plot_norm_bounds`. Only global rank 0
    evaluates (the parameters are the same on every rank).

    Args:
        probe: a fixed ``(inputs, targets)`` batch (or inputs only); None takes the first ``probe_size``
            examples of the first training batch.
        every_n_steps: evaluation period in optimiser steps (int >= 1); step 0 is evaluated too.
        probe_size: examples kept when the probe is taken from the first batch; None: 64, or the whole first batch
            when it is smaller. A given probe_size larger than the first batch gives a smaller probe, said in a
            warning.
        lower_bounds: penalties used as lower bounds (``{label: Penalty}``, ``{name: {**kwargs}}``, a list);
            their weight is ignored. None: :data:`DEFAULT_LOWER_BOUNDS` with default arguments.
        upper_bounds: spectral-norm methods, a subset of ``("reshape", "operator")``; ``()`` for none.
        batch_to_inputs: ``batch -> (inputs, targets)``, as in :class:`RKHSRegularization`.
        forward: the network f, as in :class:`RKHSRegularization`.
        log_prefix: prefix of the logged names.

    Example:
        >>> monitor = RKHSNormMonitor(every_n_steps=100, lower_bounds={"gradient_norm": {}})  # doctest: +SKIP
        >>> trainer = pl.Trainer(callbacks=[monitor]); trainer.fit(model, loader)           # doctest: +SKIP
        >>> plot_norm_bounds(monitor, "bounds.png")                                         # doctest: +SKIP
    """

    #: Each option's allowed forms (rkhsreg._params), checked before ``__init__`` runs.
    parameters = {
        "probe": [None, InstanceOf(torch.Tensor, tuple, list, doc="inputs, or (inputs, targets)")],
        "every_n_steps": Interval(Integral, 1, None),
        "probe_size": OnlyWhen("probe", None, [None, Interval(Integral, 1, None)],
                               text="probe is None (the probe is then taken from the first batch)"),
        "lower_bounds": [None, Check(lambda value: _lower_bounds(value),
                                    "{label: Penalty}, {name: {kwargs}} or a list of penalties",
                                    domain=(Mapping, list, tuple), examples=[{"gradient_norm": {}}])],
        "upper_bounds": Check(lambda value: tuple(check_choice("upper_bounds", m, _METHODS) for m in
                                                  _not_a_string(value)),
                              "a list, a subset of ('reshape', 'operator')", domain=(list, tuple),
                              examples=[("reshape",), ()]),
        "batch_to_inputs": [None, IsCallable(doc="batch -> (inputs, targets)")],
        "forward": [None, InstanceOf(str), IsCallable(doc="fn(pl_module, inputs) -> logits")],
        "log_prefix": Check(lambda value: value if isinstance(value, str) and value else _refuse(),
                            "a non-empty string", examples=["monitor"]),
    }

    @validates(parameters, owner="RKHSNormMonitor")
    def __init__(self, probe: torch.Tensor | tuple[torch.Tensor, torch.Tensor | None] | None = None, *,
                 every_n_steps: int = 50, probe_size: int | None = None, lower_bounds: PenaltySpec = None,
                 upper_bounds: Sequence[str] = _METHODS, batch_to_inputs: BatchToInputs | None = None,
                 forward: ForwardSpec = None, log_prefix: str = "rkhsreg/monitor") -> None:
        self.every_n_steps = every_n_steps   # the options are checked against `parameters` before the body runs
        self.probe_size = 64 if probe_size is None else probe_size
        self._probe_size_given = probe_size is not None
        self.lower_bounds = _default_lower_bounds() if lower_bounds is None else build_penalties(lower_bounds, param="lower_bounds")
        self.upper_bounds = tuple(upper_bounds)
        if not self.lower_bounds and not self.upper_bounds:  # said once, not refused, as RKHSRegularization does
            warnings.warn("RKHSNormMonitor got no lower bound and no upper bound: it will measure nothing; pass "
                          "lower_bounds={...} (or None for the defaults) and/or upper_bounds=('reshape', "
                          "'operator').", UserWarning, stacklevel=3)
        self.batch_to_inputs = check_batch_to_inputs(batch_to_inputs)
        self.forward = check_forward(forward)
        self.log_prefix = log_prefix
        self.probe: tuple[torch.Tensor, torch.Tensor | None] | None = None
        self._probe_given = probe is not None
        if probe is not None:
            self.probe = extract_inputs(lambda b: b if isinstance(b, (tuple, list)) else (b, None), probe)
            self.probe = (self.probe[0].detach().clone(),
                          None if self.probe[1] is None else self.probe[1].detach().clone())
        self.history: list[dict[str, float]] = []
        self._last_step = -1
        self._net: nn.Module | None = None
        self._warned = False
        self._states: dict[str, dict[str, Any]] = {}   # each lower bound's state for every measurement

    @property
    def state_key(self) -> str:
        """``"RKHSNormMonitor"``, whatever its lower bounds: a changed monitor still finds its checkpointed history
        (the lower bounds' own states are kept only for the labels that still hold the same plugin)."""
        return type(self).__name__

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        check_trainer(trainer, self)
        self._net = resolve_network(pl_module, self.forward)

    def on_train_batch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any,
                             batch_idx: int) -> None:
        step = trainer.global_step
        if step == self._last_step or step % self.every_n_steps:
            return
        self._last_step = step
        if not trainer.is_global_zero:
            return
        if self.probe is None:
            inputs, targets = extract_inputs(self.batch_to_inputs, batch)
            self.probe = (inputs[:self.probe_size].detach().clone(),
                          None if targets is None else targets[:self.probe_size].detach().clone())
            if self._probe_size_given and inputs.shape[0] < self.probe_size:   # said once: the probe is fixed now
                warnings.warn(f"RKHSNormMonitor: probe_size={self.probe_size}, but the first training batch holds "
                              f"{inputs.shape[0]} examples: the probe is taken from that batch alone, so every "
                              f"bound is measured on {inputs.shape[0]} examples. Pass probe_size <= the batch size, "
                              "or probe=(inputs, targets) with the examples to monitor.", UserWarning, stacklevel=2)
        metrics = self.measure(self._net)
        self.history.append({"step": float(step), "epoch": float(trainer.current_epoch), **metrics})
        named = {f"{self.log_prefix}/{k}": v for k, v in metrics.items()}
        # Straight to the loggers at the step measured: through self.log, Lightning would write the cached value
        # at its next log_every_n_steps boundary instead (step 0's values at step 49, …). logger=False keeps them
        # in callback_metrics (checkpoint monitors, progress bar) without a second, mis-stepped logger row.
        for logger in trainer.loggers:
            logger.log_metrics(named, step=step)
        pl_module.log_dict(named, on_step=True, on_epoch=False, logger=False, rank_zero_only=True,
                           batch_size=int(self.probe[0].shape[0]))

    def measure(self, net: nn.Module) -> dict[str, float]:
        """Evaluate every bound on the probe batch now; ``{"lower/<label>": ..., "upper/<method>": ...}``.

        Example:
            >>> monitor.measure(model)  # doctest: +SKIP
            {'lower/gradient': 3.1, 'upper/reshape': 41.0, 'upper/operator': 75.2}
        """
        if self.probe is None:
            raise ConfigurationError("RKHSNormMonitor has no probe batch yet; pass probe=(inputs, targets) or let "
                                     "it take the first training batch.")
        param = next(net.parameters(), None)
        device = param.device if param is not None else self.probe[0].device
        inputs = self.probe[0].to(device)
        targets = None if self.probe[1] is None else self.probe[1].to(device)
        cuda = [device.index or 0] if device.type == "cuda" else []
        metrics: dict[str, float] = {}
        with torch.inference_mode(False), torch.enable_grad(), torch.random.fork_rng(devices=cuda), \
                restore_modes(net):
            net.eval()
            for label, penalty in self.lower_bounds.items():
                saved = copy.deepcopy(penalty.state_dict())
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", SearchBudgetWarning)
                        if label not in self._states:   # the first measurement: calibrate, keep that state
                            penalty.estimate(net, inputs, targets)
                            self._states[label] = {"plugin": type(penalty).__name__,
                                                   "state": copy.deepcopy(penalty.state_dict())}
                        penalty.load_state_dict(copy.deepcopy(self._states[label]["state"]))
                        estimate = penalty.estimate(net, inputs, targets).detach()
                except (RKHSRegError, RuntimeError, ValueError, TypeError) as exc:
                    named = self._probe_error(exc, label, penalty, inputs, targets)
                    if named is None:
                        raise
                    raise named from exc
                finally:
                    penalty.load_state_dict(saved)
                metrics[f"lower/{label}"] = math.sqrt(max(float(estimate), 0.0))
            metrics.update(self._upper(net, tuple(inputs.shape[1:])))
        return metrics

    def _probe_error(self, exc: BaseException, label: str, penalty: Penalty, inputs: torch.Tensor,
                     targets: torch.Tensor | None) -> BaseException | None:
        """``exc`` of a lower bound evaluated on the probe, with the monitor, the bound and the probe named (the same
        exception type); None for an exception type it does not rebuild (re-raised as it is)."""
        where = ("the probe given as probe=" if self._probe_given else
                 f"the probe taken from the first training batch (its first probe_size={self.probe_size} examples)")
        shapes = f"inputs of shape {tuple(inputs.shape)}" + (
            "" if targets is None else f", targets of shape {tuple(targets.shape)}")
        text = (f"RKHSNormMonitor: lower bound {label!r} ({getattr(penalty, 'name', type(penalty).__name__)}) failed "
                f"on {where} ({shapes}): {exc}")
        if not (isinstance(exc, RKHSRegError) or type(exc) in (RuntimeError, ValueError, TypeError)):
            return None
        try:
            return type(exc)(text)
        except TypeError:   # an error class with another signature
            return None

    def _upper(self, net: nn.Module, input_shape: tuple[int, ...]) -> dict[str, float]:
        if not self.upper_bounds:
            return {}
        try:
            from rkhsreg.functional.spectral import layer_spectral_norms
        except ImportError as exc:
            if not self._warned:
                warnings.warn(f"RKHSNormMonitor: upper bounds skipped, rkhsreg.functional.spectral is unavailable "
                              f"({exc}).", stacklevel=2)
                self._warned = True
            return {}
        out = {}
        with torch.no_grad():
            for method in self.upper_bounds:
                try:
                    norms = layer_spectral_norms(net, method=method,
                                                 input_shape=input_shape if method == "operator" else None)
                except InputError as exc:  # a layer no weight-based bound applies to: monitor the rest, say why
                    if not self._warned:
                        warnings.warn(f"RKHSNormMonitor: upper bounds skipped: {exc}", stacklevel=2)
                        self._warned = True
                    return {}
                out[f"upper/{method}"] = float(math.prod(float(v) for v in norms.values())) * _declared(net)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(every_n_steps={self.every_n_steps}, lower_bounds={self.lower_bounds!r}, "
                f"upper_bounds={self.upper_bounds!r})")

    def state_dict(self) -> dict[str, Any]:
        return {"history": list(self.history), "last_step": self._last_step, "probe": self.probe,
                "lower_states": copy.deepcopy(self._states)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.history = list(state_dict.get("history", []))
        self._last_step = int(state_dict.get("last_step", -1))
        self._states = {label: copy.deepcopy(kept) for label, kept in state_dict.get("lower_states", {}).items()
                        if label in self.lower_bounds and kept.get("plugin") == type(self.lower_bounds[label]).__name__}
        if state_dict.get("probe") is not None:
            self.probe = state_dict["probe"]


HistorySource = Union[RKHSNormMonitor, Sequence[Mapping[str, float]], str, Path]


def _read_history(source: HistorySource) -> list[dict[str, float]]:
    if isinstance(source, RKHSNormMonitor):
        return [dict(row) for row in source.history]
    if isinstance(source, (str, Path)):
        rows = []
        with open(source, newline="") as handle:
            for row in csv.DictReader(handle):
                rows.append({k: float(v) for k, v in row.items() if k and v not in ("", None)})
        return rows
    if isinstance(source, Sequence):
        return [dict(row) for row in source]
    raise ConfigurationError(f"source={type(source).__name__} is not allowed; pass an RKHSNormMonitor, its "
                             "history (a list of dicts) or the path of a CSVLogger metrics.csv.")


def plot_norm_bounds(source: HistorySource, path: str | Path | None = None, *, title: str | None = None,
                     overwrite: bool = False) -> Any:
    """Plot the lower and upper bounds logged by :class:`RKHSNormMonitor` against the step (log scale).

    Uses matplotlib's object-oriented API (Agg canvas): no pyplot state, no display needed.

    Args:
        source: the monitor, its ``history``, or a CSVLogger ``metrics.csv`` path.
        path: where to save the figure, atomically, as PNG, PDF or SVG by its suffix (others are refused); None to
            only return it.
        title: figure title.
        overwrite: replace ``path`` if it exists (default: refuse with :class:`~rkhsreg.OutputExistsError`, as every
            rkhsreg writer, before drawing).

    Returns:
        The ``matplotlib.figure.Figure``.

    Example:
        >>> fig = plot_norm_bounds(monitor, "bounds.png")  # doctest: +SKIP
    """
    from rkhsreg._atomic import refuse_existing
    from rkhsreg.evaluation.figure import plot_format, write_figure

    if path is not None:
        plot_format(path)
        refuse_existing([path], overwrite=overwrite)
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plot_norm_bounds needs matplotlib: pip install 'rkhsreg[eval]'.") from exc
    rows = _read_history(source)
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            short = key.rsplit("/", 2)
            if len(short) >= 2 and short[-2] in ("lower", "upper") and "step" in row and value > 0:
                series.setdefault(f"{short[-2]}/{short[-1]}", []).append((row["step"], value))
    if not series:
        raise ConfigurationError("source holds no 'lower/...' or 'upper/...' values; log some with RKHSNormMonitor "
                                 "first.")
    fig = Figure(figsize=(6.0, 4.0))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    for key in sorted(series):
        steps, values = zip(*sorted(series[key]))
        ax.plot(steps, values, linestyle="--" if key.startswith("upper") else "-", marker=".", label=key)
    ax.set_yscale("log")
    ax.set_xlabel("optimiser step")
    ax.set_ylabel("bound of ‖f‖_H")
    ax.set_title(title or "RKHS norm: lower (solid) and upper (dashed) bounds")
    ax.legend(fontsize="small")
    fig.tight_layout()
    if path is not None:
        write_figure(fig, path, overwrite=overwrite)
    return fig
