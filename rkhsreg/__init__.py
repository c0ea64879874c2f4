"""rkhsreg: regularize CNNs through lower and upper bounds of their RKHS norm.

Public surface (everything else is private infrastructure)::

    import rkhsreg
    rkhsreg.list_penalties()
    penalty = rkhsreg.create_penalty("adversarial_perturbation", epsilon=1.0)
    loss = criterion(model(x), y) + penalty(model, x, y)
    project = rkhsreg.create_constraint("spectral_norm_projection", radius=1.0)
    optimizer.step(); project(model)
    rkhsreg.list_attacks()          # the robustness evaluators' attacks, by name
"""

from rkhsreg._errors import (ConfigurationError, InputError, InputRangeWarning, InputShapeWarning, OutputExistsError,
                             ParameterError, PluginNotFoundError, PluginValidationError, ProbabilityOutputWarning,
                             ProjectionWarning, RKHSRegError,
                             SequenceDataWarning)
from rkhsreg._plugin import Attack, Constraint, PassCount, Penalty
from rkhsreg._registry import (create_attack, create_constraint, create_penalty, list_attacks, list_constraints,
                               list_penalties)
from rkhsreg.normalize import Normalize
from rkhsreg.select_logits import SelectLogits

__version__ = "0.1.0"

# Integrations load on first use: a plain-PyTorch user never imports Lightning.
_LAZY = {
    "RKHSRegularization": "rkhsreg.lightning.callback",
    "RKHSNormMonitor": "rkhsreg.lightning.monitor",
    "RegularizedClassifier": "rkhsreg.lightning.classifier",
    "plot_norm_bounds": "rkhsreg.lightning.monitor",
    "regularized_loss": "rkhsreg.training",
    "apply_constraints": "rkhsreg.training",
    "evaluate_robustness": "rkhsreg.evaluation",
    "RobustnessResult": "rkhsreg.evaluation",
    "evaluate_deformations": "rkhsreg.evaluation",
    "certified_accuracy": "rkhsreg.evaluation",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rkhsreg' has no attribute {name!r}")


__all__ = ["Attack", "ConfigurationError", "Constraint", "InputError", "Normalize", "OutputExistsError", "ParameterError",
           "PassCount", "Penalty", "PluginNotFoundError", "PluginValidationError", "ProbabilityOutputWarning",
           "SequenceDataWarning", "InputRangeWarning", "InputShapeWarning", "ProjectionWarning",
           "RKHSRegError", "SelectLogits", "create_attack", "create_constraint", "create_penalty", "list_attacks",
           "list_constraints", "list_penalties", "__version__", *_LAZY]
