"""Robustness evaluation: ε-sweeps with a strong attack ensemble, certified bounds, deformation curves.

torchattacks and matplotlib are imported only when an attack runs or a plot is drawn; nothing here imports
Lightning (the Lightning callback that logs robust accuracy during training is
:class:`rkhsreg.lightning.RobustAccuracy`).

Example:
    >>> from rkhsreg.evaluation import AttackSettings, evaluate_robustness
    >>> result = evaluate_robustness(model, (x, y), norm="l2", epsilons=[0.5, 1.0, 2.0], certify=True,
    ...                              attack=AttackSettings(steps=20))                       # doctest: +SKIP
    >>> print(result.table()); result.save("results/robustness")                                     # doctest: +SKIP
"""

from rkhsreg.evaluation.attacks import (
                                        APGD,
                                        APGDCE,
                                        APGDDLR,
                                        FAB,
                                        APGDTargeted,
                                        Attack,
                                        FABUntargeted,
                                        RandomNoise,
                                        default_attacks,
)
from rkhsreg.evaluation.certified import certified_accuracy, certified_radii
from rkhsreg.evaluation.deformation import DeformationResult, evaluate_deformations
from rkhsreg.evaluation.ensemble import attack_names
from rkhsreg.evaluation.plot import plot_results
from rkhsreg.evaluation.result import RobustnessResult
from rkhsreg.evaluation.sanity import MaskedGradientWarning, NondeterminismWarning, RobustnessWarning
from rkhsreg.evaluation.settings import AttackSettings, DeformationBudget, DeformationSearch, SanityChecks
from rkhsreg.evaluation.square import Square
from rkhsreg.evaluation.sweep import evaluate_robustness

__all__ = ["evaluate_robustness", "AttackSettings", "SanityChecks", "RobustnessResult", "plot_results", "Attack",
           "APGD", "APGDCE", "APGDDLR", "APGDTargeted", "FAB", "FABUntargeted", "RandomNoise", "Square",
           "attack_names", "default_attacks", "certified_accuracy", "certified_radii", "evaluate_deformations",
           "DeformationBudget", "DeformationSearch", "DeformationResult", "RobustnessWarning", "MaskedGradientWarning",
           "NondeterminismWarning"]
