"""The attack ensemble: APGD-CE, targeted APGD-DLR and FAB (torchattacks, contained), plus a noise probe.

Foolbox-style: an attack object holds only its budget; the model, the inputs and ε are passed at
every call, so one object serves every ε and every model. All attacks work in the space of
:class:`~rkhsreg.evaluation._model.AttackView`: 4-d inputs with pixels in [0, 1]. The sweep
(:func:`~rkhsreg.evaluation.evaluate_robustness`) never trusts an attack's own success flags: it
projects each candidate onto the ε-ball and the box, re-classifies it, and shortens it by bisection.

Why wrap torchattacks 3.5.1 rather than call ``torchattacks.AutoAttack``:

* ``AutoAttack`` runs APGD with 10 steps (the original: 100) and APGD-T/FAB-T with ``n_classes − 1``
  targets (the original: 9); here steps and targets are explicit (defaults 100 and 9).
* ``APGD``, ``APGDT``, ``FAB`` and ``Square`` call ``torch.manual_seed``/``torch.cuda.manual_seed``
  on every call, resetting the caller's global RNG: every ``perturb`` here runs inside
  ``torch.random.fork_rng`` (and the whole evaluation inside
  :func:`~rkhsreg.evaluation._model.evaluation_mode`), with a seed drawn from the evaluation's own.
* Its mode handling calls ``model.eval()`` and then ``model.train()`` on the *whole* model if it was
  training, which puts frozen submodules (e.g. BatchNorm kept in eval) back in training mode:
  each submodule's own flag is restored here.
* FAB calls ``backward()`` on the logits, accumulating ``.grad`` in the model's parameters:
  parameters' ``requires_grad`` is switched off during attacks (also saving the weight gradients).
* Inputs are assumed 4-d in [0, 1]: :class:`AttackView` maps any box and rank onto that.
* The DLR losses index the 3rd (untargeted) and 4th (targeted) largest logit: they need at least 3
  and 4 classes. :meth:`Attack.supports` says so, and the default ensemble adapts to the class count.

Example:
    >>> attacks = default_attacks("l2", num_classes=10, steps=100)
    >>> [a.name for a in attacks]
    ['fab-t', 'apgd-ce', 'apgd-t']
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Integral, Real
from typing import Any

import torch

from rkhsreg._params import Interval, Options, validates
from rkhsreg._plugin import Attack

__all__ = ["Attack", "APGD", "APGDCE", "APGDDLR", "APGDTargeted", "FAB", "FABUntargeted", "RandomNoise",
           "default_attacks", "NORMS"]

#: Norms of the threat models, as spelled in rkhsreg.
NORMS = ("l2", "linf")
_TORCHATTACKS_NORM = {"l2": "L2", "linf": "Linf"}


def _torchattacks() -> Any:
    try:
        import torchattacks
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("the default attack ensemble needs torchattacks; install it with "
                          "pip install 'rkhsreg[eval]'") from exc
    return torchattacks


@contextmanager
def forked_rng(inputs: torch.Tensor) -> Iterator[None]:
    """Fork the global CPU RNG (and that of ``inputs``' CUDA device): torchattacks reseeds them on every call."""
    devices = [inputs.device.index or 0] if inputs.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        yield


class APGD(Attack):
    """Untargeted APGD (Croce & Hein 2020) with the cross-entropy or DLR loss, via ``torchattacks.APGD``.

    Args:
        loss: ``"ce"`` (APGD-CE) or ``"dlr"`` (needs >= 3 classes).
        steps: iterations per restart (AutoAttack: 100).
        restarts: random restarts.
        rho: step-size decrease threshold.

    Example:
        >>> APGD("ce", steps=100).name
        'apgd-ce'
    """

    parameters = {
        "loss": Options(("ce", "dlr")),
        "steps": Interval(Integral, 1, None, doc="iterations per restart"),
        "restarts": Interval(Integral, 1, None),
        "rho": Interval(Real, 0, 1, closed="right", doc="step-size decrease threshold"),
    }

    def __init__(self, loss: str = "ce", *, steps: int = 100, restarts: int = 1, rho: float = 0.75) -> None:
        self.loss = loss        # every argument is checked against `parameters` before the body runs
        self.steps = steps
        self.restarts = restarts
        self.rho = rho

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"apgd-{self.loss}"

    def supports(self, num_classes: int, norm: str) -> str | None:
        if self.loss == "dlr" and num_classes < 3:
            return "the DLR loss needs at least 3 classes"
        return None

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):  # noqa: D102
        atk = _torchattacks().APGD(model, norm=_TORCHATTACKS_NORM[norm], eps=float(epsilon), steps=self.steps,
                                   n_restarts=self.restarts, seed=int(seed), loss=self.loss, rho=self.rho)
        with forked_rng(inputs):
            return atk(inputs, labels).detach()

    def settings(self) -> dict[str, Any]:
        return {"loss": self.loss, "steps": self.steps, "restarts": self.restarts, "rho": self.rho}


class APGDCE(APGD):
    """APGD-CE, registered as ``apgd-ce``: :class:`APGD` on the cross-entropy."""

    name = "apgd-ce"  # type: ignore[assignment]  # (also names it in messages before __init__ runs)

    def __init__(self, *, steps: int = 100, restarts: int = 1, rho: float = 0.75) -> None:
        super().__init__("ce", steps=steps, restarts=restarts, rho=rho)


class APGDDLR(APGD):
    """APGD-DLR, registered as ``apgd-dlr``: untargeted :class:`APGD` on the DLR loss (needs >= 3 classes)."""

    name = "apgd-dlr"  # type: ignore[assignment]

    def __init__(self, *, steps: int = 100, restarts: int = 1, rho: float = 0.75) -> None:
        super().__init__("dlr", steps=steps, restarts=restarts, rho=rho)


class APGDTargeted(APGD):
    """Targeted APGD with the targeted DLR loss, one run per target class, via ``torchattacks.APGDT``.

    The targets are the ``targets`` classes with the highest logits after the true one (AutoAttack:
    9); fewer when the model has fewer classes. Needs >= 4 classes (the loss uses the 4th largest
    logit).

    Args:
        steps: iterations per target (AutoAttack: 100).
        targets: number of target classes (AutoAttack: 9).
        restarts: restarts per target.
        rho: step-size decrease threshold.

    Example:
        >>> APGDTargeted(steps=100, targets=9).name
        'apgd-t'
    """

    parameters = {"targets": Interval(Integral, 1, None, doc="target classes")}

    def __init__(self, *, steps: int = 100, targets: int = 9, restarts: int = 1, rho: float = 0.75) -> None:
        super().__init__("dlr", steps=steps, restarts=restarts, rho=rho)
        self.targets = targets

    @property
    def name(self) -> str:  # type: ignore[override]
        return "apgd-t"

    def supports(self, num_classes: int, norm: str) -> str | None:
        if num_classes < 4:
            return "the targeted DLR loss needs at least 4 classes"
        return None

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):  # noqa: D102
        with torch.no_grad():
            num_classes = int(model(inputs[:1]).shape[1])
        atk = _torchattacks().APGDT(model, norm=_TORCHATTACKS_NORM[norm], eps=float(epsilon), steps=self.steps,
                                    n_restarts=self.restarts, seed=int(seed), rho=self.rho,
                                    n_classes=min(self.targets + 1, num_classes))
        with forked_rng(inputs):
            return atk(inputs, labels).detach()

    def settings(self) -> dict[str, Any]:
        return {"loss": "dlr-targeted", "steps": self.steps, "targets": self.targets, "restarts": self.restarts,
                "rho": self.rho}


class FAB(Attack):
    """Minimum-norm FAB attack (Croce & Hein 2020), targeted (FAB-T, default) or untargeted, via ``torchattacks.FAB``.

    Called once with ε = inf, it returns for every example the closest adversarial example it found
    (the input itself where it found none), whatever the ε of the sweep: its distances let the sweep
    skip, at each ε, the examples already known to be broken.

    Targeted (``targets=9``, AutoAttack's FAB-T): one run per target class (the classes with the
    highest logits after the true one), each step one forward and one backward; the closest success
    over **all** targets is kept. Own loop over ``torchattacks.FAB.attack_single_run_targeted``
    because ``FAB.perturb`` drops an example after its first successful target (right for a fixed ε,
    wrong for a minimum norm) and accepts only successes within ``eps``. Untargeted
    (``targets=None``): each step takes the gradients of all K logit differences (one forward, K
    backwards).

    Args:
        steps: iterations per target (AutoAttack: 100).
        targets: target classes (AutoAttack: 9); ``None``: untargeted.
        restarts: restarts of the untargeted attack (the first from the clean input, the others random).
        alpha_max: FAB's largest step bias towards the original input (default of the original).
        eta: FAB's overshoot factor of the step (default of the original).
        beta: FAB's backward step: after a success the iterate moves to (1 − beta)·x + beta·x_adv
            (default of the original).

    Example:
        >>> FAB(steps=100).name, FAB(targets=None).name
        ('fab-t', 'fab')
    """

    minimum_norm = True

    parameters = {
        "steps": Interval(Integral, 1, None, doc="iterations per target"),
        "targets": [None, Interval(Integral, 1, None, doc="target classes (None: untargeted)")],
        "restarts": Interval(Integral, 1, None),
        "alpha_max": Interval(Real, 0, 1, closed="both"),
        "eta": Interval(Real, 1, None, closed="left"),
        "beta": Interval(Real, 0, 1, closed="right"),
    }

    def __init__(self, *, steps: int = 100, targets: int | None = 9, restarts: int = 1, alpha_max: float = 0.1,
                 eta: float = 1.05, beta: float = 0.9) -> None:
        self.steps = steps      # every argument is checked against `parameters` before the body runs
        self.targets = targets
        self.restarts = restarts
        self.alpha_max = alpha_max
        self.eta = eta
        self.beta = beta

    @property
    def name(self) -> str:  # type: ignore[override]
        return "fab" if self.targets is None else "fab-t"

    def _attack(self, model, norm, epsilon, seed, n_classes=10, targeted=False):
        return _torchattacks().FAB(model, norm=_TORCHATTACKS_NORM[norm], eps=float(epsilon), steps=self.steps,
                                   n_restarts=self.restarts, alpha_max=self.alpha_max, eta=self.eta, beta=self.beta,
                                   seed=int(seed), multi_targeted=targeted, n_classes=n_classes)

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):  # noqa: D102
        with forked_rng(inputs):
            return self._perturb(model, inputs, labels, epsilon=epsilon, norm=norm, seed=seed)

    def _perturb(self, model, inputs, labels, *, epsilon, norm, seed):
        if self.targets is None:
            # eps only bounds the random restarts' radius and the final acceptance: inf keeps every success.
            return self._attack(model, norm, epsilon, seed)(inputs, labels).detach()
        with torch.no_grad():
            num_classes = int(model(inputs[:1]).shape[1])
        count = min(self.targets, num_classes - 1)
        atk = self._attack(model, norm, epsilon, seed, n_classes=count + 1, targeted=True)
        best = inputs.clone()
        best_norm = torch.full((inputs.shape[0],), float("inf"), device=inputs.device)
        with torch.no_grad():
            for target in range(2, count + 2):
                atk.target_class = target
                adv = atk.attack_single_run_targeted(inputs, labels)
                delta = (adv - inputs).flatten(1)
                size = delta.abs().amax(1) if norm == "linf" else delta.norm(dim=1)
                better = (model(adv).argmax(1) != labels) & (size < best_norm)
                best[better] = adv[better]
                best_norm = torch.where(better, size, best_norm)
        return best

    def settings(self) -> dict[str, Any]:
        return {"steps": self.steps, "targets": self.targets, "restarts": self.restarts,
                "alpha_max": self.alpha_max, "eta": self.eta, "beta": self.beta}


class FABUntargeted(FAB):
    """Untargeted FAB, registered as ``fab``: :class:`FAB` with ``targets=None``."""

    name = "fab"  # type: ignore[assignment]

    def __init__(self, *, steps: int = 100, restarts: int = 1, alpha_max: float = 0.1, eta: float = 1.05,
                 beta: float = 0.9) -> None:
        super().__init__(steps=steps, targets=None, restarts=restarts, alpha_max=alpha_max, eta=eta, beta=beta)


class RandomNoise(Attack):
    """Gradient-free probe: ``samples`` random points on the ε-sphere (ℓ2) or ε-box corners (ℓ∞).

    Weak on its own, it costs ``samples`` forwards per example. Its purpose is diagnostic: when it
    finds adversarial examples the gradient attacks missed, gradients are masked (the sweep warns).

    Example:
        >>> RandomNoise(samples=8).gradient_free
        True
    """

    name = "noise"
    gradient_free = True

    parameters = {"samples": Interval(Integral, 1, None, doc="random points per example")}

    def __init__(self, *, samples: int = 4) -> None:
        self.samples = samples  # checked against `parameters` before the body runs

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):  # noqa: D102
        gen = torch.Generator().manual_seed(int(seed))
        best = inputs.clone()
        found = torch.zeros(inputs.shape[0], dtype=torch.bool, device=inputs.device)
        with torch.no_grad():
            for _ in range(self.samples):
                if norm == "linf":
                    noise = torch.randint(0, 2, inputs.shape, generator=gen).float() * 2 - 1
                    noise = noise * epsilon
                else:
                    noise = torch.randn(inputs.shape, generator=gen)
                    noise = noise / noise.flatten(1).norm(dim=1).clamp(min=1e-30).view(-1, 1, 1, 1) * epsilon
                candidate = (inputs + noise.to(inputs)).clamp(0.0, 1.0)
                wrong = model(candidate).argmax(1) != labels
                new = wrong & ~found
                best[new] = candidate[new]
                found |= wrong
        return best

    def settings(self) -> dict[str, Any]:
        return {"samples": self.samples}


@validates({"norm": Options(NORMS), "num_classes": Interval(Integral, 2, None),
            "steps": Interval(Integral, 1, None), "targets": Interval(Integral, 1, None),
            "fab_steps": [None, Interval(Integral, 1, None)], "restarts": Interval(Integral, 1, None)})
def default_attacks(norm: str = "l2", num_classes: int = 10, *, steps: int = 100, targets: int = 9,
                    fab_steps: int | None = None, restarts: int = 1) -> list[Attack]:
    """The standard ensemble for ``num_classes`` classes: FAB-T (minimum norm), APGD-CE, targeted APGD-DLR.

    AutoAttack's gradient attacks with its budgets (its fourth, the gradient-free Square attack, is
    left out: 5000 queries per example). With 3 classes the targeted APGD is replaced by untargeted
    APGD-DLR; with 2 classes (where DLR is undefined, and targeted = untargeted) the ensemble is
    untargeted FAB and APGD-CE.

    Args:
        norm: ``"l2"`` or ``"linf"``.
        num_classes: the model's number of outputs.
        steps: APGD iterations (per target for APGD-T).
        targets: target classes of APGD-T.
        fab_steps: FAB iterations per target (default: ``steps``).
        restarts: restarts of each APGD run.

    Example:
        >>> [a.name for a in default_attacks("linf", num_classes=2)]
        ['fab', 'apgd-ce']
        >>> [a.name for a in default_attacks("l2", num_classes=3)]
        ['fab-t', 'apgd-ce', 'apgd-dlr']
    """
    fab = FAB(steps=steps if fab_steps is None else fab_steps, targets=targets if num_classes > 2 else None)
    attacks: list[Attack] = [fab, APGD("ce", steps=steps, restarts=restarts)]
    if num_classes >= 4:
        attacks.append(APGDTargeted(steps=steps, targets=targets, restarts=restarts))
    elif num_classes == 3:
        attacks.append(APGD("dlr", steps=steps, restarts=restarts))
    return attacks
