"""Square attack: a black-box, score-based attack for the ensemble, opt-in (``attacks=["default", "square"]``).

Square (Andriushchenko et al. 2020, AutoAttack's fourth attack) needs no gradient: it proposes
random square-shaped changes of the input and keeps those that lower the classification margin.
Masked or obfuscated gradients (saturated softmax, quantisation, non-differentiable preprocessing)
do not fool it, which is why it completes gradient-based ensembles. It is slow: up to ``queries``
forwards per example still robust (AutoAttack: 5000), against ≈ 200 rows for APGD-CE, so it is not in
the default ensemble. The sweep runs gradient-free attacks after the gradient-based ones at each ε, on
the examples those left robust; whatever Square breaks there is counted by the ``gradient_free`` sanity
check (gradients are likely masked).

Wraps ``torchattacks.Square`` (3.5.1), which calls ``torch.manual_seed`` on every run: each call here
runs inside ``torch.random.fork_rng`` with the seed the sweep passes, so the caller's global RNG is
left as it was and a run is reproducible.

Example:
    >>> from rkhsreg.evaluation import AttackSettings, evaluate_robustness
    >>> attack = AttackSettings(attacks=["default", "square"])
    >>> result = evaluate_robustness(model, (x, y), epsilons=[0.5, 1.0], attack=attack)  # doctest: +SKIP
    >>> Square(queries=1000).settings()["queries"]
    1000
"""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

from rkhsreg._params import Interval, Options
from rkhsreg.evaluation.attacks import _TORCHATTACKS_NORM, Attack, _torchattacks, forked_rng

__all__ = ["Square"]


class Square(Attack):
    """Untargeted Square attack via ``torchattacks.Square`` (ℓ2 or ℓ∞).

    Args:
        queries: forwards per example and restart (AutoAttack: 5000).
        restarts: random restarts (on the examples still robust).
        p_init: initial fraction of the pixels a square covers (AutoAttack: 0.8).
        loss: ``"margin"`` (AutoAttack) or ``"ce"``.

    Example:
        >>> Square().name, Square().gradient_free
        ('square', True)
    """

    name = "square"
    gradient_free = True

    parameters = {
        "queries": Interval(Integral, 1, None, doc="forwards per example and restart"),
        "restarts": Interval(Integral, 1, None),
        "p_init": Interval(Real, 0, 1, closed="right", doc="initial fraction of the pixels a square covers"),
        "loss": Options(("margin", "ce")),
    }

    def __init__(self, *, queries: int = 5000, restarts: int = 1, p_init: float = 0.8, loss: str = "margin") -> None:
        self.queries = queries  # every argument is checked against `parameters` before the body runs
        self.restarts = restarts
        self.p_init = p_init
        self.loss = loss

    def perturb(self, model, inputs, labels, *, epsilon, norm, seed):  # noqa: D102
        atk = _torchattacks().Square(model, norm=_TORCHATTACKS_NORM[norm], eps=float(epsilon),
                                     n_queries=self.queries, n_restarts=self.restarts, p_init=self.p_init,
                                     loss=self.loss, resc_schedule=True, seed=int(seed))
        with forked_rng(inputs):
            return atk(inputs, labels).detach()

    def settings(self) -> dict[str, Any]:
        return {"queries": self.queries, "restarts": self.restarts, "p_init": self.p_init, "loss": self.loss}
