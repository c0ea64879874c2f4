"""What every benchmark shares: the training step, its timing, its peak memory, passes and the machine.

One step-timing helper (:func:`compare_steps`) serves every script, so all ratios mean the same:

* **time** — a round warms both steps up once, then alternates ``steps`` pairs (plain step, step
  with the plugin) and keeps the median of the per-pair ratios: interleaving keeps the ratio
  meaningful on a machine whose load drifts (a shared CPU).
* **peak memory** — the extra memory one step needs above what is resident before it (model,
  optimiser state, data), measured for the plain step and for the plugin's step, one step each, just
  before the timed pairs. On CUDA: ``torch.cuda.max_memory_allocated`` after
  ``reset_peak_memory_stats``, minus the memory allocated at the reset (exact, tensors only). On a
  Linux CPU: the process's peak resident set (``VmHWM``) minus its resident set (``VmRSS``) at a
  reset; the reset first returns the allocator's free pages to the system (``malloc_trim``) and then
  rewinds ``VmHWM`` to the current ``VmRSS`` (``/proc/self/clear_refs``). So it counts pages touched
  by the step's tensors at their peak, allocator slack included; repeated measurements of one step
  agree to ~10 %. ``tracemalloc`` would see none of torch's allocations. Elsewhere memory is ``None``.
* **passes** — forward/backward passes in full-batch equivalents (:class:`rkhsreg.PassCount`); the
  plugins report theirs in ``last_passes``, :class:`CountingModel` counts them for code that does not.

Example:
    >>> step = training_step(model, x, y, torch.optim.SGD(model.parameters(), lr=0.05))   # doctest: +SKIP
    >>> regularized = training_step(model, x, y, opt, penalty=create_penalty("gradient_norm"))  # doctest: +SKIP
    >>> compare_steps(step, regularized, steps=3)        # two rounds                  # doctest: +SKIP
    [{'time_ratio': 5.9, 'memory_ratio': 1.6, ...}, {...}]
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import platform
import re
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MemoryProbe", "CountingModel", "training_step", "compare_steps", "machine_info", "machine_tag",
           "write_atomic", "write_json", "git_commit"]

Step = Callable[[], None]


# ----------------------------------------------------------------------------- memory

class MemoryProbe:
    """Peak memory of a piece of work above what was resident when :meth:`reset` was called.

    Args:
        device: ``"cpu"`` (Linux ``VmHWM``/``VmRSS``) or a CUDA device (allocator statistics).
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self._base = 0.0
        self._libc = None
        if self.device.type == "cuda":
            self.method = "torch.cuda.max_memory_allocated after reset_peak_memory_stats (tensors only)"
        elif _proc_status("VmHWM") is not None and _can_reset_hwm():
            libc_name = ctypes.util.find_library("c")
            self._libc = ctypes.CDLL(libc_name) if libc_name else None
            self.method = ("Linux VmHWM - VmRSS after malloc_trim(0) and a VmHWM reset (/proc/self/clear_refs): "
                           "resident pages the step added at its peak")
        else:
            self.method = None

    @property
    def available(self) -> bool:
        """Whether this platform gives a peak-memory measurement."""
        return self.method is not None

    def reset(self) -> None:
        """Start a measurement from the memory resident now."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device) / 2 ** 20
        elif self.available:
            if self._libc is not None and hasattr(self._libc, "malloc_trim"):
                self._libc.malloc_trim(0)
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            self._base = _proc_status("VmRSS") or 0.0

    def peak_mb(self) -> float | None:
        """MiB above the resident memory at :meth:`reset`, at the peak since then (None if unavailable)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / 2 ** 20 - self._base
        if not self.available:
            return None
        return max((_proc_status("VmHWM") or 0.0) - self._base, 0.0)

    def measure(self, work: Step) -> float | None:
        """Run ``work`` once and return its peak memory in MiB."""
        self.reset()
        work()
        return self.peak_mb()


def _proc_status(key: str) -> float | None:
    """A ``/proc/self/status`` entry in MiB (None where there is no procfs)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _can_reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


# ----------------------------------------------------------------------------- passes

class CountingModel(nn.Module):
    """Wrap a model to count the rows it is given, in full-batch equivalents of ``batch`` rows.

    Backward passes cannot be seen from a forward hook; code that calls ``autograd.grad`` adds them
    with :meth:`add_backward`.

    Example:
        >>> counted = CountingModel(model, batch=128)     # doctest: +SKIP
        >>> counted(x); counted.forward_passes            # doctest: +SKIP
        1.0
    """

    def __init__(self, model: nn.Module, batch: int) -> None:
        super().__init__()
        self.model, self.batch = model, batch
        self.forward_passes = self.backward_passes = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        self.forward_passes += x.shape[0] / self.batch
        return self.model(x)

    def add_backward(self, rows: int) -> None:
        """Record ``rows`` rows back-propagated."""
        self.backward_passes += rows / self.batch


# ----------------------------------------------------------------------------- steps and timing

def training_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, optimizer: torch.optim.Optimizer, *,
                  penalty: Any = None, constraint: Any = None, augment: Callable | None = None,
                  loss_fn: Callable | None = None) -> Step:
    """One SGD step as a function: cross-entropy (+ ``penalty``, or replaced by it), backward, step, projection.

    Args:
        model: the network.
        x: one fixed input batch.
        y: its labels.
        optimizer: the optimiser of ``model``.
        penalty: an :class:`rkhsreg.Penalty` (or any ``fn(model, x, y) -> scalar``; an object with
            ``replaces_loss=True`` replaces the clean loss).
        constraint: an :class:`rkhsreg.Constraint` applied after the optimiser step.
        augment: a batch transform applied to ``x`` first (the "(∗)" deformations).
        loss_fn: ``fn(model, x, y) -> scalar`` replacing the whole loss (for reference implementations).
    """
    cuda = x.device.type == "cuda"

    def step() -> None:
        inputs = x if augment is None else augment(x)
        if loss_fn is not None:
            loss = loss_fn(model, inputs, y)
        else:
            loss = F.cross_entropy(model(inputs), y)
            if penalty is not None:
                value = penalty(model, inputs, y)
                loss = value if getattr(penalty, "replaces_loss", False) else loss + value
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if constraint is not None:
            constraint(model)
        if cuda:
            torch.cuda.synchronize(x.device)
    return step


def _seconds(step: Step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def compare_steps(plain: Step, plugin: Step, *, steps: int = 3, rounds: int = 2, warmup: int = 1,
                  memory: MemoryProbe | None = None) -> list[dict[str, float | None]]:
    """Cost of ``plugin`` relative to ``plain``, measured ``rounds`` times in this process.

    Each round: ``warmup`` steps of each; one step of each under ``memory`` (if given); then
    ``steps`` alternating pairs, timed. Returns one dict per round: ``time_ratio`` (median of the
    per-pair ratios), ``plain_seconds`` / ``plugin_seconds`` (medians), ``plain_mb`` / ``plugin_mb``
    (peak MiB above resident, None when unmeasured) and ``memory_ratio``.
    """
    out = []
    for _ in range(rounds):
        for _ in range(warmup):
            plain()
            plugin()
        plain_mb = plugin_mb = None
        if memory is not None and memory.available:
            plain_mb, plugin_mb = memory.measure(plain), memory.measure(plugin)
        plains, plugins = [], []
        for _ in range(steps):
            plains.append(_seconds(plain))
            plugins.append(_seconds(plugin))
        out.append({
            "time_ratio": statistics.median(b / a for a, b in zip(plains, plugins)),
            "plain_seconds": statistics.median(plains), "plugin_seconds": statistics.median(plugins),
            "plain_mb": plain_mb, "plugin_mb": plugin_mb,
            "memory_ratio": None if not plain_mb else plugin_mb / plain_mb,
        })
    return out


# ----------------------------------------------------------------------------- machine and files

def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: str = "cpu") -> dict[str, Any]:
    """What the numbers were measured on: CPU model, cores visible, threads, GPU, library versions, load."""
    info: dict[str, Any] = {
        "system": platform.system(), "arch": platform.machine(), "cpu": _cpu_model(), "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "device": device, "python": platform.python_version(),
        "torch": torch.__version__,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    try:
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except OSError:
        pass
    for name in ("pytorch_lightning", "timm", "torchattacks"):
        try:
            from importlib.metadata import version
            info[name] = version(name.replace("_", "-"))
        except Exception:  # not installed: leave it out
            pass
    return info


def machine_tag(info: dict[str, Any]) -> str:
    """A file-name tag for a machine: ``cpu-x86_64-2cores`` or ``cuda-nvidia-h100-80gb-hbm3``."""
    if "gpu" in info:
        return "cuda-" + re.sub(r"[^a-z0-9]+", "-", info["gpu"].lower()).strip("-")
    return f"cpu-{info['arch']}-{info['cores']}cores"


def write_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` atomically (:func:`rkhsreg.evaluation.result.atomic_write`: temporary file, fsync, ``os.replace``)."""
    from rkhsreg.evaluation.result import atomic_write

    return atomic_write(path, text)


def library_defaults() -> dict[str, dict[str, dict[str, Any]]]:
    """Every registered penalty's and constraint's constructor defaults, as JSON values (``repr`` where JSON has
    none): recorded in each results file, so that a figure measured under other defaults can be told apart from
    the current library's (``tests/test_docs.py`` compares them)."""
    import inspect

    from rkhsreg import list_constraints, list_penalties
    from rkhsreg._registry import load_plugin

    def plain(value: Any) -> Any:
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
            return list(value)
        return repr(value)

    def resolved(cls: Any) -> dict[str, Any]:
        """What a default-constructed plugin made of its ``None`` defaults (e.g. the δ search's ``budget=None``
        is ``DEFAULT_BUDGET``): a module constant changed under an unchanged signature is a changed default."""
        try:
            return cls()._config()
        except (TypeError, ValueError, AttributeError):   # a plugin that needs arguments, or has no _config
            return {}

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for group, names in (("penalties", list_penalties()), ("constraints", list_constraints())):
        out[group] = {}
        for name in names:
            cls = load_plugin(f"rkhsreg.{group}", name)
            config = resolved(cls)
            out[group][name] = {p.name: plain(config.get(p.name) if p.default is None else p.default)
                                for p in inspect.signature(cls.__init__).parameters.values()
                                if p.name != "self" and p.default is not inspect.Parameter.empty}
    return out


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """:func:`write_atomic` of ``data`` as indented JSON, with the library's current defaults (:func:`library_defaults`)
    under ``"defaults"`` unless ``data`` already records them."""
    if isinstance(data, dict) and "defaults" not in data:
        data = {**data, "defaults": library_defaults()}
    return write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False) + "\n")


def git_commit() -> str:
    """``HEAD``'s short hash of this checkout (``unknown`` outside git)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
