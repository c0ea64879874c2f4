"""Input gradients that are differentiated again (double back-propagation), for the penalties on ∇_x f.

‖∇f‖², grad-ℓ2 and tangent propagation return a function of ∇_x f whose gradient w.r.t. the parameters
the training step takes: PyTorch must differentiate the model's backward. Two gaps in PyTorch make that fail
on models users bring, and neither is reported where the penalty is called:

- the fused attention kernels of ``F.scaled_dot_product_attention`` (flash / memory-efficient, used by timm's
  ViTs, DeiTs, ...) have no double backward; the math kernel, made of differentiable ops, has one. The forward
  whose gradient is differentiated again runs under :func:`twice_differentiable`, which selects the math
  kernel there only (the first-order passes keep the fused kernels);
- some ops have no derivative of their backward (in torch 2.14 ``aten::hardsigmoid_backward``:
  ``nn.Hardsigmoid``, e.g. the squeeze-excite gates of timm's MobileNetV3). PyTorch records a
  ``NotImplemented`` node and raises only when the user's ``loss.backward()`` reaches it, with a message that
  names neither the penalty nor a way out. :func:`differentiable_input_gradient` looks for such nodes in the
  graph it has just built and raises an :class:`~rkhsreg.InputError` at the penalty's call instead, naming
  the op (read off the failing double backward), the penalty and the alternatives.

Nothing in torch offers either as a check or a context, hence this module.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import torch

from rkhsreg._errors import InputError

__all__ = ["twice_differentiable", "differentiable_input_gradient", "FIRST_ORDER_PENALTIES"]

#: Penalties that never differentiate a gradient: what a model without second derivatives can use.
FIRST_ORDER_PENALTIES = ("adversarial_perturbation", "adversarial_deformation", "adversarial_training",
                         "spectral_norm")
_NOT_IMPLEMENTED = "torch::autograd::NotImplemented"
#: What we know of the ops PyTorch cannot differentiate twice: where users meet them and what replaces them.
_HINTS = {"aten::hardsigmoid_backward": " (nn.Hardsigmoid / F.hardsigmoid, e.g. the squeeze-excite gates of timm's "
                                        "MobileNetV3; F.relu6(x + 3) / 6 is the same function, twice differentiable)"}


@contextlib.contextmanager
def twice_differentiable() -> Iterator[None]:
    """Forward passes whose input gradient will be differentiated again: attention on its math kernel."""
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel
    except ImportError:  # pragma: no cover - torch without the attention module
        yield
        return
    with sdpa_kernel([SDPBackend.MATH]):
        yield


def _missing_derivatives(grad: torch.Tensor) -> bool:
    """Whether the graph of ``grad`` holds a node PyTorch cannot differentiate (a ``NotImplemented`` node)."""
    seen: set[int] = set()
    stack = [grad.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if node.name() == _NOT_IMPLEMENTED:
            return True
        stack.extend(next_node for next_node, _ in node.next_functions)
    return False


def differentiable_input_gradient(output: torch.Tensor, inputs: torch.Tensor, *, penalty: str) -> torch.Tensor:
    """``∇_inputs output`` with ``create_graph=True``, checked to be differentiable again.

    Args:
        output: a scalar computed from ``inputs`` (the forward ran under :func:`twice_differentiable`).
        inputs: the leaf the gradient is taken for.
        penalty: the penalty's name, for the error message.

    Raises:
        InputError: the model contains an op without a second derivative in this PyTorch; the message names
            the op when PyTorch does, the penalty, and the first-order penalties that work with the model.
    """
    (grad,) = torch.autograd.grad(output, inputs, create_graph=True)
    if grad.grad_fn is None or not _missing_derivatives(grad):
        return grad
    op = "an operation"
    try:  # the failing double backward names the op
        torch.autograd.grad(grad.sum(), inputs, retain_graph=True)
    except RuntimeError as exc:
        found = re.search(r"derivative for (\S+) is not implemented", str(exc))
        if found:
            op = found.group(1)
    hint = _HINTS.get(op, "")
    raise InputError(
        f"{penalty}: this penalty differentiates the model's input gradient again (double back-propagation), "
        f"but the model uses {op}, which has no second derivative in PyTorch {torch.__version__}{hint}. Use a "
        f"first-order penalty with this model ({', '.join(FIRST_ORDER_PENALTIES)}), or replace that layer by one "
        "made of differentiable ops.")
