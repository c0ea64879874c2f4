"""Plain-PyTorch training helpers: the same penalties and constraints, one call per step, no trainer.

The Lightning callback (:mod:`rkhsreg.lightning`) is built on these functions, so a loop written by
hand and a ``Trainer`` run compute exactly the same loss. Nothing here imports Lightning.

Example:
    >>> penalties = build_penalties({"gradient_norm": {"weight": 0.1}})          # doctest: +SKIP
    >>> project = build_constraints({"spectral_norm_projection": {"radius": 1.0}})  # doctest: +SKIP
    >>> for x, y in loader:                                                      # doctest: +SKIP
    ...     loss, values = regularized_loss(F.cross_entropy(model(x), y), model, x, y, penalties)
    ...     optimizer.zero_grad(); loss.backward(); optimizer.step()
    ...     apply_constraints(model, project)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Union

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.modules.batchnorm import _NormBase

from rkhsreg._errors import ConfigurationError, InputError
from rkhsreg._plugin import Constraint, PassCount, Penalty
from rkhsreg._registry import create_constraint, create_penalty

__all__ = ["PenaltySpec", "ConstraintSpec", "PenaltyTerms", "build_penalties", "build_constraints",
           "check_global_batch", "evaluate_penalties", "regularized_loss", "apply_constraints", "gather_batch",
           "shared_running_statistics"]

#: Penalties as plugin objects, ``{label: Penalty}`` or ``{registered_name: {"weight": ..., **kwargs}}``.
PenaltySpec = Union[Sequence[Penalty], Mapping[str, Union[Penalty, Mapping[str, Any]]], None]
#: Constraints as plugin objects, ``{label: Constraint}`` or ``{registered_name: {**kwargs}}``.
ConstraintSpec = Union[Sequence[Constraint], Mapping[str, Union[Constraint, Mapping[str, Any]]], None]

_INFERENCE_HINT = ("penalties take gradients w.r.t. the inputs, which torch.inference_mode forbids. "
                   "Lightning runs validation/test/predict under inference mode: create the Trainer with "
                   "Trainer(inference_mode=False) to evaluate penalties there, or evaluate them in training only.")


def _build(kind: str, param: str, spec: Any, base: type, factory: Any) -> dict[str, Any]:
    if spec is None:
        return {}
    if isinstance(spec, base):
        spec = [spec]
    built: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        for label, item in spec.items():
            if not isinstance(label, str) or not label:
                raise ConfigurationError(f"{kind} label {label!r} is not allowed; use a non-empty string.")
            if isinstance(item, base):
                built[label] = item
            elif isinstance(item, Mapping):
                built[label] = factory(label, **dict(item))
            elif item is None:
                built[label] = factory(label)
            else:
                raise ConfigurationError(f"{param}[{label!r}]={item!r} is not allowed; pass an rkhsreg.{base.__name__} "
                                         f"or a dict of its keyword arguments.")
        return _distinct_objects(kind, param, built)
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise ConfigurationError(f"{param}={spec!r} is not allowed; pass a list of rkhsreg.{base.__name__} objects, "
                                 f"a dict {{name: {{keyword: value}}}} or None.")
    for item in spec:
        if not isinstance(item, base):
            named = f", or pass a dict {{{item!r}: {{}}}}" if isinstance(item, str) else ""
            raise ConfigurationError(f"{param} contains {item!r}, which is not an rkhsreg.{base.__name__}; "
                                     f"create it with rkhsreg.create_{kind}(name, ...){named}.")
        label = item.name or type(item).__name__
        if label in built:
            raise ConfigurationError(f"{param} contains two plugins named {label!r}; pass a dict "
                                     f"{{label: {kind}}} to give them distinct names in the logs and checkpoints.")
        built[label] = item
    return _distinct_objects(kind, param, built)


def _distinct_objects(kind: str, param: str, built: dict[str, Any]) -> dict[str, Any]:
    """One plugin object under two labels would be applied twice a step (twice its value and passes) with one
    shared state (calibration, counters, checkpoint): refused."""
    first: dict[int, str] = {}
    for label, item in built.items():
        if id(item) in first:
            raise ConfigurationError(f"{param}[{first[id(item)]!r}] and {param}[{label!r}] are the same {kind} object: "
                                     "it would be applied twice a step with one shared state; create one object per "
                                     "label (or keep one label).")
        first[id(item)] = label
    return built


def build_penalties(penalties: PenaltySpec, *, param: str = "penalties") -> dict[str, Penalty]:
    """Turn any accepted penalty specification into ``{label: Penalty}``.

    Args:
        penalties: a list of :class:`~rkhsreg.Penalty` objects (labelled by their ``name``), a dict
            ``{label: Penalty}``, a dict ``{registered_name: {"weight": ..., **kwargs}}`` or None.
        param: the caller's parameter name, for the messages (e.g. ``"lower_bounds"``).

    Raises:
        ConfigurationError: an item is neither a penalty nor a dict of arguments, two penalties share a
            label, or more than one penalty replaces the clean loss.

    Example:
        >>> build_penalties({"loss_gradient": {"weight": 0.1, "p": 1}})  # doctest: +SKIP
        {'loss_gradient': LossGradient(weight=0.1, p=1)}
    """
    built = _build("penalty", param, penalties, Penalty, create_penalty)
    replacing = [label for label, p in built.items() if p.replaces_loss]
    if len(replacing) > 1:
        raise ConfigurationError(f"penalties {replacing} all replace the clean loss; at most one may. Keep one, or "
                                 "create the others with replace=False so they add to the loss.")
    return built


def build_constraints(constraints: ConstraintSpec) -> dict[str, Constraint]:
    """Turn any accepted constraint specification into ``{label: Constraint}``.

    Example:
        >>> build_constraints({"spectral_norm_projection": {"radius": 1.0}})  # doctest: +SKIP
    """
    return _build("constraint", "constraints", constraints, Constraint, create_constraint)


def _distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_batch(tensor: torch.Tensor | None) -> torch.Tensor | None:
    """All-gather a batch from every process, in the order a 1-process run would see it.

    With equal per-process batches, example ``j`` of rank ``r`` goes to position ``j * world + r``:
    ``DistributedSampler`` deals examples round-robin, so this rebuilds the global batch in dataset
    order. Unequal batches are concatenated rank after rank. Without an initialised process group
    (or with one process) the tensor is returned unchanged. The result carries no gradient.

    Example:
        >>> x_global = gather_batch(x)  # (world * n, ...) under DDP, x itself otherwise  # doctest: +SKIP
    """
    if tensor is None or not _distributed():
        return tensor
    world = dist.get_world_size()
    local = tensor.detach().contiguous()
    sizes = [torch.zeros(1, dtype=torch.long, device=local.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.long, device=local.device))
    counts = [int(s.item()) for s in sizes]
    top = max(counts)
    if local.shape[0] < top:
        pad = local.new_zeros((top - local.shape[0], *local.shape[1:]))
        local = torch.cat([local, pad])
    parts = [torch.empty_like(local) for _ in range(world)]
    dist.all_gather(parts, local)
    if len(set(counts)) == 1:
        return torch.stack(parts, 1).flatten(0, 1)
    return torch.cat([part[:count] for part, count in zip(parts, counts)])


def _running_statistics(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The floating-point running statistics of ``model``'s normalisation layers, as ``(layer, name)``."""
    return [(m, name) for m in model.modules() if isinstance(m, _NormBase) and m.track_running_stats
            for name in ("running_mean", "running_var")
            if isinstance(m._buffers.get(name), torch.Tensor) and m._buffers[name].is_floating_point()]


@contextlib.contextmanager
def shared_running_statistics(model: nn.Module) -> Iterator[None]:
    """Within the block, every process's normalisation layers use the average of all processes' running statistics.

    Under DDP each process updates its BatchNorm running statistics with its own batch during the
    training forward, so a penalty evaluated afterwards in eval mode would normalise differently on
    each rank. This averages ``running_mean`` and ``running_var`` over the processes (one all-reduce
    of the statistics, in float64, so every rank gets bit-identical values) and puts the averages in
    place of the buffers until the block ends; the module's own buffers are not written (the
    averaged tensors replace them in the module, then the originals are put back), so training
    continues exactly as without the block and autograd keeps the averages it used. With equal
    local batches the averaged ``running_mean`` is the one a single process on the global batch
    would hold. Without an initialised process group (or with one process) it does nothing.

    Example:
        >>> with shared_running_statistics(net):   # every rank: the same statistics  # doctest: +SKIP
        ...     value = penalty(net, gather_batch(x), gather_batch(y))
    """
    slots = _running_statistics(model) if _distributed() else []
    if not slots:
        yield
        return
    originals = [layer._buffers[name] for layer, name in slots]
    flat = torch.cat([buf.detach().reshape(-1).to(torch.float64) for buf in originals])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    shared, start = [], 0
    for buf in originals:
        shared.append(flat[start:start + buf.numel()].reshape(buf.shape).to(buf.dtype))
        start += buf.numel()
    try:
        for (layer, name), buf in zip(slots, shared):
            layer._buffers[name] = buf
        yield
    finally:
        for (layer, name), buf in zip(slots, originals):
            layer._buffers[name] = buf


@dataclass
class PenaltyTerms:
    """What :func:`evaluate_penalties` found for one batch.

    Attributes:
        added: Σ weighted values of the penalties that add to the loss (differentiable), or None.
        replacement: weighted value of the penalty that replaces the clean loss, or None.
        values: ``{label: raw estimate}`` (detached), active penalties only.
        weighted: ``{label: weight × estimate}`` (detached), active penalties only.
        passes: extra forward/backward passes, in full local-batch equivalents.
    """

    added: torch.Tensor | None = None
    replacement: torch.Tensor | None = None
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    weighted: dict[str, torch.Tensor] = field(default_factory=dict)
    passes: PassCount = field(default_factory=PassCount)

    def combine(self, loss: torch.Tensor) -> torch.Tensor:
        """The training loss: ``replacement`` (or ``loss``) plus ``added``."""
        total = loss if self.replacement is None else self.replacement
        return total if self.added is None else total + self.added


def check_global_batch(global_batch: bool | Sequence[str], labels: Sequence[str]) -> set[str]:
    """The labels ``global_batch`` selects: all of ``labels`` (True), none (False) or the listed ones."""
    if isinstance(global_batch, bool):
        return set(labels) if global_batch else set()
    if isinstance(global_batch, str) or not isinstance(global_batch, Sequence):
        raise ConfigurationError(f"global_batch={global_batch!r} is not allowed; pass True, False or a list of "
                                 "penalty labels.")
    unknown = sorted(set(global_batch) - set(labels))
    if unknown:
        raise ConfigurationError(f"global_batch names {unknown}, which are not penalties here; "
                                 f"known labels: {sorted(labels)}.")
    return set(global_batch)


def evaluate_penalties(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None,
                       penalties: Mapping[str, Penalty], *,
                       global_batch: bool | Sequence[str] = False) -> PenaltyTerms:
    """Evaluate every active penalty (weight ≠ 0) on one batch; penalties with weight 0 cost nothing.

    Args:
        model: the network f, called as ``model(inputs)``; each penalty manages its own modes.
        inputs: the local batch.
        targets: class indices (N,), or None for penalties that need none.
        penalties: ``{label: Penalty}`` (see :func:`build_penalties`).
        global_batch: True (every penalty) or a list of labels: under ``torch.distributed`` those
            penalties see the batch of all processes (:func:`gather_batch`), so a sup over the batch is
            the sup over the global batch. Each process computes the same value; DDP averages the
            identical gradients, so the update equals a 1-process run on the global batch (no division
            by the world size is needed). Cost: those penalties do ``world`` times their local work.
            Normalisation layers' running statistics, which each process has just updated with its
            own batch, are averaged over the processes while those penalties run
            (:func:`shared_running_statistics`), so an eval-mode BatchNorm network gets the same
            value on every rank too.

    Raises:
        ConfigurationError: called under ``torch.inference_mode`` (penalties need input gradients).

    Example:
        >>> terms = evaluate_penalties(model, x, y, {"g": GradientNorm(weight=0.1)})  # doctest: +SKIP
        >>> loss = terms.combine(F.cross_entropy(model(x), y))                       # doctest: +SKIP
    """
    terms = PenaltyTerms()
    active = {label: p for label, p in penalties.items() if p.weight != 0}
    if not active:
        return terms
    if torch.is_inference_mode_enabled():
        raise ConfigurationError(_INFERENCE_HINT)
    if not isinstance(inputs, torch.Tensor):
        raise InputError(f"inputs={type(inputs).__name__} is not a tensor; pass the batch of inputs (N, ...).")
    gathered = check_global_batch(global_batch, list(penalties)) & set(active)
    global_inputs = global_targets = None
    if gathered and _distributed():
        global_inputs, global_targets = gather_batch(inputs), gather_batch(targets)
    if global_inputs is None:
        gathered = set()
    batches = {label: (global_inputs, global_targets) if label in gathered else (inputs, targets) for label in active}
    results: dict[str, torch.Tensor] = {}
    if gathered:
        with shared_running_statistics(model):  # eval-mode BatchNorm: the same statistics on every rank
            results.update({label: active[label](model, *batches[label]) for label in active if label in gathered})
    results.update({label: active[label](model, *batches[label]) for label in active if label not in gathered})
    n_local = max(int(inputs.shape[0]), 1)
    for label, penalty in active.items():
        x, weighted = batches[label][0], results[label]
        scale = x.shape[0] / n_local
        terms.passes.forward += penalty.last_passes.forward * scale
        terms.passes.backward += penalty.last_passes.backward * scale
        detached = weighted.detach()
        terms.weighted[label] = detached
        terms.values[label] = detached / penalty.weight
        if penalty.replaces_loss:
            terms.replacement = weighted
        else:
            terms.added = weighted if terms.added is None else terms.added + weighted
    return terms


def regularized_loss(loss: torch.Tensor, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None,
                     penalties: PenaltySpec | Mapping[str, Penalty], *,
                     global_batch: bool | Sequence[str] = False) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The clean loss plus every penalty (a ``replaces_loss`` penalty takes the clean loss's place).

    Call it once per step and back-propagate the result once. Build the penalties once, outside the
    loop (:func:`build_penalties`), so their state (power-iteration vectors, generators) persists.

    Args:
        loss: the clean training loss of the batch.
        model: the network f.
        inputs: the batch the clean loss was computed on.
        targets: its class indices, or None.
        penalties: see :func:`build_penalties`.
        global_batch: see :func:`evaluate_penalties`.

    Returns:
        ``(total, weighted)``: the loss to back-propagate and ``{label: weight × estimate}`` (detached).

    Example:
        >>> penalties = build_penalties({"gradient_norm": {"weight": 0.1}})                    # doctest: +SKIP
        >>> total, parts = regularized_loss(F.cross_entropy(model(x), y), model, x, y, penalties)  # doctest: +SKIP
        >>> total.backward()                                                                    # doctest: +SKIP
    """
    terms = evaluate_penalties(model, inputs, targets, build_penalties(penalties), global_batch=global_batch)
    return terms.combine(loss), terms.weighted


def apply_constraints(model: nn.Module, constraints: ConstraintSpec | Mapping[str, Constraint]) -> None:
    """Project ``model`` with every constraint, in order; call it right after ``optimizer.step()``.

    Example:
        >>> optimizer.step(); apply_constraints(model, [SpectralNormProjection(radius=1.0)])  # doctest: +SKIP
    """
    with torch.no_grad():
        for constraint in build_constraints(constraints).values():
            constraint(model)
