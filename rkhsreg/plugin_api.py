"""What a plugin author needs, public and stable: the protocols, the errors, the parameter declarations and the
argument checks.

A third-party penalty, constraint or attack imports from here only (never from ``rkhsreg._…``), and gets the
same messages, the same non-finite policy and the same pass counting as the built-in plugins, which
use these very functions.

A plugin declares each constructor parameter once in ``parameters`` (forms: :class:`Interval`,
:class:`Options`, :class:`Boolean`, ``None``, :class:`Tuple`, :class:`InstanceOf`, :class:`IsCallable`,
:class:`Device`, :class:`Check`, :data:`SEED`); the base class validates them before ``__init__`` runs and raises
:class:`ParameterError` naming the parameter, the value and every allowed form.

Example:
    >>> from numbers import Real
    >>> from rkhsreg.plugin_api import Interval, Penalty, check_inputs, check_logits, check_model
    >>> class LogitNorm(Penalty):                                       # doctest: +SKIP
    ...     name = "logit_norm"
    ...     parameters = {"weight": Interval(Real, 0, None, closed="left"),
    ...                   "power": Interval(Real, 0, None, closed="neither")}
    ...     def __init__(self, *, weight: float = 0.1, power: float = 2.0) -> None:
    ...         super().__init__(weight=weight)
    ...         self.power = power                                        # already a checked float
    ...     def estimate(self, model, inputs, targets):
    ...         check_model(model); check_inputs(inputs)
    ...         logits = check_logits(model(inputs), inputs)
    ...         self.last_passes.add(inputs.shape[0], inputs.shape[0], batch=inputs.shape[0])
    ...         return logits.abs().pow(self.power).sum(1).mean()
"""

from rkhsreg._checks import (call_model, check_choice, check_device, check_finite_weights, check_in_box, check_inputs,
                             check_int, check_logits, check_model, check_real, check_seed, check_targets)
from rkhsreg._errors import ConfigurationError, InputError, ParameterError, PluginValidationError, RKHSRegError
from rkhsreg._params import (SEED, AtMost, Boolean, Check, Device, InstanceOf, Interval, IsCallable, OnlyWhen, Options,
                             Tuple, declared_parameters, describe, validate_param, validate_params, validates)
from rkhsreg._plugin import Attack, Constraint, PassCount, Penalty
from rkhsreg.functional._context import inner_mode, restore_buffers, restore_modes
from rkhsreg.penalties._common import counting_forward, make_generator

__all__ = ["Penalty", "Constraint", "Attack", "PassCount", "RKHSRegError", "ConfigurationError", "InputError",
           "ParameterError", "PluginValidationError", "Interval", "Options", "Boolean", "Tuple", "InstanceOf",
           "IsCallable", "Device", "Check", "OnlyWhen", "AtMost", "SEED", "validate_params", "validate_param", "validates",
           "declared_parameters", "describe", "call_model", "check_in_box", "restore_buffers", "check_real",
           "check_int", "check_seed", "check_choice", "check_model", "check_inputs", "check_targets", "check_logits",
           "check_finite_weights", "check_device", "counting_forward", "make_generator", "inner_mode", "restore_modes"]
