"""Accuracy under smooth deformations of growing size, and the stability ratio of the seed's theorem.

The kernel representation Φ of the seed paper is stable to deformations:
‖Φ(L_τx) − Φ(x)‖ ≤ (C₁‖∇τ‖∞ + C₂‖τ‖∞)‖x‖, so a model f with a small RKHS norm satisfies
‖f(L_τx) − f(x)‖ / ‖x‖ ≲ ‖f‖_H (C₁‖∇τ‖∞ + C₂‖τ‖∞). :func:`evaluate_deformations` measures both
sides of that: for each size s of a list, the budget is ‖τ‖∞ ≤ s·``max_displacement`` and
‖∇τ‖∞ ≤ s·``max_gradient`` (pixels, pixels per pixel), and it reports

* the accuracy under ``samples`` random deformations on the boundary of the budget (an example
  counts as correct only if every sample of every size up to s is classified correctly);
* the accuracy under adversarial deformations: sign-gradient ascent on the classification margin
  max_{j≠y} f_j − f_y over the deformation parameters
  (:func:`rkhsreg.functional.deformation_search.maximize_deformation`), examples broken at a
  smaller size or by a random sample counting as broken (the budgets are nested);
* for every random and adversarial deformation, the ratio ‖f(L_τx) − f(x)‖₂ / ‖x‖₂ (logits) with
  the ‖∇τ‖∞ and ‖τ‖∞ of that τ, to plot the ratio against ‖∇τ‖∞.

Deformations come from :mod:`rkhsreg.functional.deformation` (bicubic control grid, pixel units);
the random ones from an explicit generator, never the global RNG. The model runs in eval mode, and
everything is restored on exit, as in :func:`~rkhsreg.evaluation.evaluate_robustness`.

Example:
    >>> result = evaluate_deformations(model, (x, y), sizes=[0.5, 1, 2], samples=8)  # doctest: +SKIP
    >>> result.random_accuracy, result.adversarial_accuracy                           # doctest: +SKIP
    ([0.97, 0.93, 0.71], [0.91, 0.62, 0.18])
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from numbers import Integral
from pathlib import Path
from typing import Any

import torch
from torch import nn

from rkhsreg._checks import (call_model, check_class_range, check_in_box, check_logits, check_model,
                             check_num_classes, warn_if_probabilities)
from rkhsreg._errors import InputError
from rkhsreg._params import PATH, SEED, Boolean, InstanceOf, Interval, IsCallable, validates
from rkhsreg.evaluation._data import BOUNDS, EPSILONS, collect
from rkhsreg.evaluation._model import SINGLE_SCORE, evaluation_mode, model_device
from rkhsreg._atomic import atomic_write, refuse_existing
from rkhsreg.evaluation.figure import write_figure
from rkhsreg.evaluation.result import PLOT_PATH, library_versions
from rkhsreg.evaluation.settings import DeformationBudget, DeformationSearch, resolve
from rkhsreg.evaluation.sweep import Progress, _resolve_seed
from rkhsreg.functional.deformation import deform, displacement_norm, jacobian_norm, sample_params
from rkhsreg.functional.deformation_search import maximize_deformation

__all__ = ["DeformationResult", "evaluate_deformations"]


@dataclass
class DeformationResult:
    """Accuracy under random / adversarial deformations per size, and the stability samples.

    Attributes:
        sizes: the size multipliers s (sorted).
        max_displacement: ‖τ‖∞ budget of each size, pixels.
        max_gradient: ‖∇τ‖∞ budget of each size.
        clean_accuracy: accuracy on the undeformed inputs.
        random_accuracy: per size, fraction correct under every random sample up to that size.
        adversarial_accuracy: per size, fraction correct under the adversarial search (and the random
            samples) up to that size; ``None`` when not computed.
        jacobian_norms, displacement_norms, ratios: one entry per deformation tried (random and
            adversarial): ‖∇τ‖∞, ‖τ‖∞ and ‖f(L_τx) − f(x)‖ / ‖x‖.
        kinds: ``"random"`` or ``"adversarial"`` for each entry; ``size_index`` its size.
    """

    sizes: list[float]
    max_displacement: list[float]
    max_gradient: list[float]
    clean_accuracy: float
    random_accuracy: list[float]
    adversarial_accuracy: list[float] | None
    jacobian_norms: torch.Tensor
    displacement_norms: torch.Tensor
    ratios: torch.Tensor
    size_index: torch.Tensor
    kinds: list[str]
    n_examples: int
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    versions: dict[str, str] = field(default_factory=library_versions)

    def ratio_summary(self) -> list[dict[str, float]]:
        """Per size: largest and mean stability ratio over the random samples, and their ‖∇τ‖∞."""
        out = []
        random = torch.tensor([k == "random" for k in self.kinds], dtype=torch.bool)
        for k, size in enumerate(self.sizes):
            mask = random & (self.size_index == k)
            r = self.ratios[mask]
            out.append({"size": size, "max_ratio": float(r.max()) if r.numel() else 0.0,
                        "mean_ratio": float(r.mean()) if r.numel() else 0.0,
                        "max_jacobian_norm": float(self.jacobian_norms[mask].max()) if r.numel() else 0.0})
        return out

    def to_dict(self, *, per_sample: bool = False) -> dict[str, Any]:
        """JSON-ready dict (per-deformation samples only with ``per_sample``)."""
        out: dict[str, Any] = {
            "n_ex": self.n_examples, "clean_acc": self.clean_accuracy, "sizes": self.sizes,
            "max_displacement": self.max_displacement, "max_gradient": self.max_gradient,
            "random_acc": self.random_accuracy, "adversarial_acc": self.adversarial_accuracy,
            "stability": self.ratio_summary(), "settings": self.settings, "seconds": self.seconds,
            "versions": self.versions}
        if per_sample:
            out["samples"] = {"jacobian_norm": self.jacobian_norms.tolist(),
                              "displacement_norm": self.displacement_norms.tolist(), "ratio": self.ratios.tolist(),
                              "size_index": self.size_index.tolist(), "kind": list(self.kinds)}
        return out

    @validates({"path": PATH, "per_sample": Boolean(), "overwrite": Boolean()}, owner="DeformationResult.to_json")
    def to_json(self, path: str | os.PathLike, *, per_sample: bool = True, overwrite: bool = False) -> Path:
        """Write :meth:`to_dict` atomically; an existing ``path`` is refused unless ``overwrite``
        (:class:`~rkhsreg.OutputExistsError`, as :meth:`RobustnessResult.save <rkhsreg.evaluation.RobustnessResult.save>`)."""
        return atomic_write(path, json.dumps(self.to_dict(per_sample=per_sample), indent=2) + "\n", overwrite=overwrite)

    @validates({"path": PATH, "overwrite": Boolean()}, owner="DeformationResult.to_csv")
    def to_csv(self, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """One row per size: budgets, accuracies, stability ratios; atomically. An existing ``path`` is refused
        unless ``overwrite``."""
        lines = ["size,max_displacement,max_gradient,random_acc,adversarial_acc,max_ratio,mean_ratio"]
        adv = self.adversarial_accuracy or [None] * len(self.sizes)
        for k, row in enumerate(self.ratio_summary()):
            lines.append(",".join(str(v) for v in (self.sizes[k], self.max_displacement[k], self.max_gradient[k],
                                                   self.random_accuracy[k], "" if adv[k] is None else adv[k],
                                                   row["max_ratio"], row["mean_ratio"])))
        return atomic_write(path, "\n".join(lines) + "\n", overwrite=overwrite)

    @validates({"path": PLOT_PATH, "overwrite": Boolean()}, owner="DeformationResult.plot")
    def plot(self, path: str | os.PathLike | None = None, *, overwrite: bool = False) -> Any:
        """Two panels: accuracy against the size; stability ratio against ‖∇τ‖∞. Written atomically as PNG, PDF or
        SVG by ``path``'s extension; an existing ``path`` is refused unless ``overwrite`` (before drawing)."""
        if path is not None:
            refuse_existing([path], overwrite=overwrite)
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=120)
        left.plot([0.0, *self.sizes], [self.clean_accuracy, *self.random_accuracy], marker="o", label="random")
        if self.adversarial_accuracy is not None:
            left.plot([0.0, *self.sizes], [self.clean_accuracy, *self.adversarial_accuracy], marker="s",
                      label="adversarial")
        left.set_xlabel("deformation size s")
        left.set_ylabel("accuracy")
        left.set_ylim(-0.02, 1.02)
        left.grid(alpha=0.3)
        left.legend(fontsize=8)
        for kind, marker in (("random", "."), ("adversarial", "x")):
            mask = torch.tensor([k == kind for k in self.kinds], dtype=torch.bool)
            if bool(mask.any()):
                right.scatter(self.jacobian_norms[mask], self.ratios[mask], s=6, marker=marker, label=kind, alpha=0.6)
        right.set_xlabel("‖∇τ‖∞")
        right.set_ylabel("‖f(L_τx) − f(x)‖ / ‖x‖")
        right.grid(alpha=0.3)
        right.legend(fontsize=8)
        fig.tight_layout()
        if path is not None:
            write_figure(fig, path, overwrite=overwrite, bbox_inches="tight")
        plt.close(fig)
        return fig

    def table(self) -> str:
        """Plain-text table for a terminal."""
        lines = [f"deformations, n = {self.n_examples}, clean accuracy {self.clean_accuracy:.2%}",
                 f"{'size':>6} {'|tau|max':>8} {'|grad tau|':>10} {'random':>8} {'advers.':>8} {'max ratio':>9}"]
        adv = self.adversarial_accuracy or [None] * len(self.sizes)
        for k, row in enumerate(self.ratio_summary()):
            a = "-" if adv[k] is None else f"{adv[k]:.2%}"
            lines.append(f"{self.sizes[k]:>6.3g} {self.max_displacement[k]:>8.3g} {self.max_gradient[k]:>10.3g} "
                         f"{self.random_accuracy[k]:>8.2%} {a:>8} {row['max_ratio']:>9.3g}")
        return "\n".join(lines)


def _margin(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    true = logits.gather(1, labels[:, None]).squeeze(1)
    other = logits.scatter(1, labels[:, None], float("-inf")).amax(1)
    return other - true


@validates({
    "sizes": EPSILONS,
    "budget": [None, InstanceOf(DeformationBudget)],
    "search": [None, InstanceOf(DeformationSearch)],
    "bounds": [None, BOUNDS],
    "batch_size": Interval(Integral, 1, None),
    "n_examples": [None, Interval(Integral, 1, None)],
    "seed": [None, SEED],
    "generator": [None, InstanceOf(torch.Generator)],
    "progress": [None, IsCallable(doc="fn(stage, done, total)")],
})
def evaluate_deformations(model: nn.Module, data: Any, *, sizes: Sequence[float] = (0.25, 0.5, 1.0, 1.5, 2.0),
                          budget: DeformationBudget | None = None, search: DeformationSearch | None = None,
                          bounds: tuple[float, float] | None = (0.0, 1.0), batch_size: int = 128,
                          n_examples: int | None = None, seed: int | None = None,
                          generator: torch.Generator | None = None, progress: Progress | None = None
                          ) -> DeformationResult:
    """Accuracy and stability ratio of ``model`` under deformations of growing size.

    Args:
        model: a classifier of images (N, C, H, W) returning logits.
        data: ``(inputs, labels)`` tensors, a ``Dataset`` or a ``DataLoader``.
        sizes: multipliers s of the budgets (sorted; 0 is skipped).
        budget: the deformations at size 1 (:class:`~rkhsreg.evaluation.settings.DeformationBudget`; default:
            ‖τ‖∞ ≤ 2 px, ‖∇τ‖∞ ≤ 0.3, a 4×4 control grid, no translation, border padding — the paper's MNIST
            setting); size s scales both bounds by s.
        search: random and adversarial search (:class:`~rkhsreg.evaluation.settings.DeformationSearch`;
            default: 8 random deformations per example and size, then 10 steps of adversarial ascent).
        bounds: clip deformed images to this box (bicubic resampling overshoots slightly); None: no clipping.
        batch_size: examples per batch.
        n_examples: use the first ``n_examples`` examples.
        seed: seed of the random deformations (default 0), or ``generator`` to draw it from.
        generator: a ``torch.Generator``.
        progress: ``progress(stage, done, total)`` after each batch.

    Returns:
        A :class:`DeformationResult`.

    Example:
        >>> r = evaluate_deformations(model, (x, y), sizes=[0.5, 1.0],
        ...                           search=DeformationSearch(samples=4, steps=5))              # doctest: +SKIP
        >>> print(r.table())                                                                 # doctest: +SKIP
    """
    check_model(model)
    size_list = [s for s in sizes if s > 0]     # the options are checked by @validates
    if not size_list:
        raise InputError("sizes holds only 0; pass positive deformation sizes, e.g. [0.5, 1.0, 2.0].")
    budget = resolve("budget", budget, DeformationBudget)
    search = resolve("search", search, DeformationSearch)
    a0, b0, grid_size = budget.max_displacement, budget.max_gradient, budget.grid_size
    translation, padding_mode = budget.translation, budget.padding_mode
    samples, adversarial, steps, step_size = search.samples, search.adversarial, search.steps, search.step_size
    box = bounds
    base_seed = _resolve_seed(seed, generator)
    inputs, labels = collect(data, n_examples, owner="evaluate_deformations")
    check_in_box(inputs, box)
    if inputs.dim() != 4:
        raise InputError(f"inputs have shape {tuple(inputs.shape)}; deformations need images (N, C, H, W).")
    device = model_device(model)
    hw = (inputs.shape[-2], inputs.shape[-1])
    gen = torch.Generator().manual_seed(base_seed)
    n, k_sizes = inputs.shape[0], len(size_list)
    started = time.perf_counter()

    correct = torch.zeros(n, dtype=torch.bool)
    random_ok = torch.zeros(n, k_sizes, dtype=torch.bool)
    adv_ok = torch.zeros(n, k_sizes, dtype=torch.bool)
    records: dict[str, list[torch.Tensor]] = {"jac": [], "disp": [], "ratio": [], "size": []}
    kinds: list[str] = []

    def clip(z: torch.Tensor) -> torch.Tensor:
        return z if box is None else z.clamp(*box)

    def record(params, x, base, out, k, kind):
        records["jac"].append(jacobian_norm(params, hw).cpu())
        records["disp"].append(displacement_norm(params, hw).cpu())
        norm_x = x.flatten(1).norm(dim=1).clamp(min=1e-12)
        records["ratio"].append(((out - base).flatten(1).norm(dim=1) / norm_x).double().cpu())
        records["size"].append(torch.full((x.shape[0],), k, dtype=torch.long))
        kinds.extend([kind] * x.shape[0])

    with evaluation_mode(model):
        for number, rows in enumerate(torch.arange(n).split(batch_size)):
            x, y = inputs[rows].to(device), labels[rows].to(device)
            with torch.no_grad():
                base = check_logits(call_model(model, x), x, finite=False).detach()
            if number == 0:
                check_num_classes(base.shape[1], "evaluate_deformations", SINGLE_SCORE)
                warn_if_probabilities(base, "evaluate_deformations", stacklevel=4)
            check_class_range(y, base.shape[1], name="labels")
            base = base.float()
            ok = (base.argmax(1) == y).cpu()
            correct[rows] = ok
            still_random = ok.clone()
            still_adv = ok.clone()
            for k, s in enumerate(size_list):
                a, b = s * a0, s * b0
                for _ in range(samples):
                    params = sample_params(x.shape[0], hw, max_displacement=a, max_gradient=b, grid_size=grid_size,
                                           translation=min(s * translation, a), generator=gen,
                                           random_magnitude=False, device=x.device)
                    with torch.no_grad():
                        out = model(clip(deform(x, params, padding_mode=padding_mode))).float()
                    still_random &= (out.argmax(1) == y).cpu()
                    record(params, x, base, out, k, "random")
                random_ok[rows, k] = still_random
                still_adv &= still_random
                if adversarial and bool(still_adv.any()):
                    idx = still_adv.nonzero().squeeze(1).to(x.device)
                    xs, ys = x[idx], y[idx]
                    theta = maximize_deformation(
                        lambda z, ys=ys: _margin(model(clip(z)).float(), ys), xs, max_displacement=a,
                        max_gradient=b, steps=steps, step_size=step_size or 1.5 * a / steps, grid_size=grid_size,
                        max_translation=min(s * translation, a), padding_mode=padding_mode)
                    with torch.no_grad():
                        out = model(clip(deform(xs, theta, padding_mode=padding_mode))).float()
                    broken = (out.argmax(1) != ys).cpu()
                    still_adv[idx.cpu()[broken]] = False
                    record(theta, xs, base[idx], out, k, "adversarial")
                adv_ok[rows, k] = still_adv
                if progress is not None:
                    progress(f"deformations s={s:g}", int(rows[-1]) + 1, n)

    def cat(key: str, dtype: torch.dtype) -> torch.Tensor:
        return torch.cat(records[key]).to(dtype) if records[key] else torch.zeros(0, dtype=dtype)

    return DeformationResult(
        sizes=size_list, max_displacement=[s * a0 for s in size_list], max_gradient=[s * b0 for s in size_list],
        clean_accuracy=float(correct.double().mean()),
        random_accuracy=[float(random_ok[:, k].double().mean()) for k in range(k_sizes)],
        adversarial_accuracy=[float(adv_ok[:, k].double().mean()) for k in range(k_sizes)] if adversarial else None,
        jacobian_norms=cat("jac", torch.float64), displacement_norms=cat("disp", torch.float64),
        ratios=cat("ratio", torch.float64), size_index=cat("size", torch.long), kinds=kinds, n_examples=n,
        settings={"grid_size": grid_size, "translation": translation, "samples": samples, "steps": steps,
                  "step_size": step_size, "padding_mode": padding_mode, "bounds": None if box is None else list(box),
                  "seed": base_seed, "objective": "margin max_{j!=y} f_j - f_y"},
        seconds=time.perf_counter() - started)
