"""rkhsreg: regularize CNNs through lower and upper bounds of their RKHS norm.

Public surface (everything else is private infrastructure)::

    import rkhsreg
    rkhsreg.list_penalties()
    penalty = rkhsreg.create_penalty("adversarial_perturbation", epsilon=1.0)
    loss = criterion(model(x), y) + penalty(model, x, y)
    project = rkhsreg.create_constraint("spectral_norm_projection", radius=1.0)
    optimizer.step(); project(model)
"""

from rkhsreg._errors import (ConfigurationError, InputError, PluginNotFoundError, PluginValidationError,
                             RKHSRegError)
from rkhsreg._plugin import Constraint, PassCount, Penalty
from rkhsreg._registry import (create_constraint, create_penalty, list_constraints, list_penalties)

__version__ = "0.1.0"

__all__ = ["ConfigurationError", "Constraint", "InputError", "PassCount", "Penalty", "PluginNotFoundError",
           "PluginValidationError", "RKHSRegError", "create_constraint", "create_penalty", "list_constraints",
           "list_penalties", "__version__"]
