"""The one error hierarchy of rkhsreg.

Every class also subclasses the standard exception a user would already catch
(``ConfigurationError`` is a ``ValueError``), so ``except ValueError`` keeps working.
"""

from __future__ import annotations

__all__ = ["RKHSRegError", "ConfigurationError", "ParameterError", "InputError", "OutputExistsError",
           "PluginNotFoundError", "PluginValidationError", "ProbabilityOutputWarning", "InputRangeWarning",
           "InputShapeWarning", "ProjectionWarning", "SequenceDataWarning"]


class RKHSRegError(Exception):
    """Base class of every error raised on purpose by rkhsreg."""


class ConfigurationError(RKHSRegError, ValueError):
    """A constructor argument or option is outside what is allowed."""


class ParameterError(ConfigurationError):
    """A declared parameter got a value outside its declaration (:mod:`rkhsreg._params`).

    The message names the parameter, the value given and every allowed form; the same are in
    ``parameter``, ``value`` and ``allowed``.
    """

    def __init__(self, message: str, *, parameter: str = "", value: object = None, allowed: str = "") -> None:
        super().__init__(message)
        self.parameter, self.value, self.allowed = parameter, value, allowed


class InputError(RKHSRegError, ValueError):
    """A model, input batch or target tensor handed to a plugin does not fit it."""


class OutputExistsError(RKHSRegError, FileExistsError):
    """A result file would replace an existing one, and replacing was not asked for (``overwrite=True``)."""


class PluginNotFoundError(RKHSRegError, KeyError):
    """No plugin of that name is registered in the entry-point group."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable.
        return str(self.args[0]) if self.args else ""


class PluginValidationError(RKHSRegError, TypeError):
    """A registered plugin does not implement the protocol of its group."""


class ProbabilityOutputWarning(UserWarning):
    """The model's outputs look like probabilities (every row in [0, 1], summing to 1: a final ``nn.Softmax``),
    where rkhsreg needs logits: cross-entropy, margins and attacks apply the softmax themselves, so on
    probabilities they compute another, meaningless quantity. Pass logits: remove the final Softmax.
    (Log-probabilities, a final ``nn.LogSoftmax``, are logits up to a constant per row: not warned about.)"""


class SequenceDataWarning(UserWarning):
    """Sequences given as proteins that look wrong for it: nucleotides (only A, C, G, T, U, N letters: A, C, G and T
    are also amino-acid letters, so they encode without error as a meaningless protein), or a sequence that carries
    both labels in one training set (every copy is dropped)."""


class InputRangeWarning(UserWarning):
    """An ε-ball search without a box (``clip=None``) sees inputs whose range does not fit ε: images in 0–255
    (ε is in the inputs' units, so ε = 1 is 1/255 of a pixel step), or an ℓ∞ ε as large as the batch's whole range
    (8 meant as 8/255). Said once per penalty, from the first batch."""


class InputShapeWarning(UserWarning):
    """The inputs' shape differs from the ``input_shape`` a plugin was built with (the operator norms of the
    convolutions are measured at that resolution, not at the inputs')."""


class ProjectionWarning(UserWarning):
    """``spectral_norm_projection`` could not guarantee σ ≤ radius on a layer: its iteration for σ stopped on
    ``iterations`` before reaching ``tol``, so σ (estimated from below) may still exceed the radius."""
