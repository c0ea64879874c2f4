"""Per-class selection of rows: the "sup over the mini-batch, for each output k" of the paper."""

from __future__ import annotations

import torch

__all__ = ["top_per_class", "true_and_top_classes", "worst_rows"]


def top_per_class(scores: torch.Tensor, classes: torch.Tensor, k: int) -> torch.Tensor:
    """Flat indices of the ``k`` largest ``scores`` of every class.

    Args:
        scores: (n, S) values (any float dtype).
        classes: (n, S) class index of each entry.
        k: how many entries to keep per class (ties broken by position).

    Returns:
        Sorted-by-class flat indices into ``scores.flatten()``; classes with no entry are absent.

    Example:
        >>> top_per_class(torch.tensor([[1., 5.], [3., 2.]]), torch.tensor([[0, 1], [0, 1]]), 1)
        tensor([2, 1])
    """
    flat_scores, flat_classes = scores.flatten().float(), classes.flatten()
    order = torch.argsort(flat_scores, descending=True, stable=True)
    order = order[torch.argsort(flat_classes[order], stable=True)]
    sorted_classes = flat_classes[order]
    counts = torch.bincount(sorted_classes)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel(), device=order.device) - starts[sorted_classes]
    return order[rank < k]


def true_and_top_classes(logits: torch.Tensor, targets: torch.Tensor, top_k: int) -> torch.Tensor:
    """(n, 1 + top_k) class slots: each row's true class, then its ``top_k`` highest other scores."""
    others = logits.detach().float().scatter(1, targets[:, None], float("-inf"))
    top = others.topk(min(top_k, logits.shape[1] - 1), dim=1).indices
    return torch.cat([targets[:, None], top], dim=1)


def worst_rows(scores: torch.Tensor, slots: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The sup over the batch: ``(rows, classes)`` of the entries a penalty keeps.

    ``mode="per_class"``: for each class, the row with the largest score; ``mode="joint"``: every slot
    of the single row whose scores sum highest.
    """
    if mode == "joint":
        row = scores.sum(1).argmax()
        return row.repeat(slots.shape[1]), slots[row]
    keep = top_per_class(scores, slots, 1)
    return keep // slots.shape[1], slots.flatten()[keep]
