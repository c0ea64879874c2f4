"""What a plugin author needs, public and stable: the protocols, the errors and the argument checks.

A third-party penalty, constraint or attack imports from here only (never from ``rkhsreg._…``), and gets the
same messages, the same non-finite policy and the same pass counting as the built-in plugins, which
use these very functions.

Example:
    >>> from rkhsreg.plugin_api import Penalty, check_inputs, check_logits, check_model, check_real
    >>> class LogitNorm(Penalty):                                       # doctest: +SKIP
    ...     name = "logit_norm"
    ...     def estimate(self, model, inputs, targets):
    ...         check_model(model); check_inputs(inputs)
    ...         logits = check_logits(model(inputs), inputs)
    ...         self.last_passes.add(inputs.shape[0], inputs.shape[0], batch=inputs.shape[0])
    ...         return logits.pow(2).sum(1).mean()
"""

from rkhsreg._checks import (check_choice, check_device, check_finite_weights, check_inputs, check_int,
                             check_logits, check_model, check_real, check_targets)
from rkhsreg._errors import ConfigurationError, InputError, PluginValidationError, RKHSRegError
from rkhsreg._plugin import Attack, Constraint, PassCount, Penalty
from rkhsreg.functional._context import inner_mode, restore_modes
from rkhsreg.penalties._common import counting_forward, make_generator

__all__ = ["Penalty", "Constraint", "Attack", "PassCount", "RKHSRegError", "ConfigurationError", "InputError",
           "PluginValidationError", "check_real", "check_int", "check_choice", "check_model", "check_inputs",
           "check_targets", "check_logits", "check_finite_weights", "check_device", "counting_forward",
           "make_generator", "inner_mode", "restore_modes"]
