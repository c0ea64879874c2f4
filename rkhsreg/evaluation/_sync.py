"""Sharding across processes: every rank holds all examples, each attacks its share of the batches.

The evaluation is split into stages (one attack at one ε). A stage's batches are cut from the
*global* list of examples it concerns, identically on every rank; rank ``r`` runs batches ``r, r +
world, …``, each with a seed derived from the stage and the batch number only. The results are
then reduced (minimum of distances, sum of counters), so a run on W processes computes exactly the
batches, with exactly the seeds, of a run on one process: the numbers are the same.
"""

from __future__ import annotations

import torch

__all__ = ["Sync"]


class Sync:
    """Reductions over the default process group, or no-ops for a single process.

    Args:
        enabled: ``None`` (default): shard when ``torch.distributed`` is initialised with more than
            one process; ``False``: never; ``True``: require an initialised group.
        device: the device collective tensors must live on for the backend (CUDA for NCCL).
    """

    def __init__(self, enabled: bool | None, device: torch.device) -> None:
        import torch.distributed as dist

        ready = dist.is_available() and dist.is_initialized()
        if enabled and not ready:
            from rkhsreg._errors import ConfigurationError
            raise ConfigurationError("distributed=True, but torch.distributed is not initialised; launch with "
                                     "torchrun (or call torch.distributed.init_process_group) or pass "
                                     "distributed=None.")
        self.active = bool(ready and (enabled is None or enabled) and dist.get_world_size() > 1)
        self.rank = dist.get_rank() if self.active else 0
        self.world = dist.get_world_size() if self.active else 1
        self._dist = dist
        self._device = device
        if self.active and dist.get_backend() == "nccl" and device.type != "cuda":
            self._device = torch.device("cuda", torch.cuda.current_device())

    def mine(self, batch_number: int) -> bool:
        """Whether this rank runs the ``batch_number``-th batch of a stage."""
        return batch_number % self.world == self.rank

    def _reduce(self, tensor: torch.Tensor, op) -> torch.Tensor:
        if not self.active:
            return tensor
        moved = tensor.to(self._device)
        self._dist.all_reduce(moved, op=op)
        tensor.copy_(moved.to(tensor.device))
        return tensor

    def min_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place element-wise minimum over ranks."""
        return self._reduce(tensor, self._dist.ReduceOp.MIN if self.active else None)

    def max_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place element-wise maximum over ranks."""
        return self._reduce(tensor, self._dist.ReduceOp.MAX if self.active else None)

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place element-wise sum over ranks."""
        return self._reduce(tensor, self._dist.ReduceOp.SUM if self.active else None)

    def check_same(self, inputs: torch.Tensor, labels: torch.Tensor) -> None:
        """Refuse examples that differ between ranks, in value or in order (the batches of a stage are cut from
        one list of examples; a rank with other data, e.g. a shuffled DataLoader, would mix up examples)."""
        if not self.active:
            return
        n = inputs.shape[0]
        place = torch.arange(1, n + 1, dtype=torch.float64)
        rows = inputs.detach().reshape(n, -1).double().sum(1).cpu()
        mine = torch.tensor([n, float(rows.sum()), float((rows * place).sum()),
                             float((labels.detach().double().cpu() * place).sum())], dtype=torch.float64)
        low, high = self.min_(mine.clone()), self.max_(mine.clone())
        if not torch.equal(low, high):
            from rkhsreg._errors import InputError
            raise InputError(f"the {self.world} processes passed different data (rank {self.rank}: {n} examples); "
                             "the evaluation shards one list of examples over them: pass the same examples in the same "
                             "order on every rank (no shuffling, no DistributedSampler), or distributed=False to "
                             "evaluate each rank's own data alone.")
