"""Small models, data and plugins shared by the Lightning tests and the DDP worker (kept tiny: 8×8 inputs)."""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from rkhsreg import Constraint, Penalty


class TinyNet(nn.Module):
    """conv-ReLU-avgpool ×2 + linear, no BatchNorm: identical on every DDP rank."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2),
                                      nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(6, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class BNDropoutNet(nn.Module):
    """A user's CNN with BatchNorm and Dropout."""

    def __init__(self, num_classes: int = 3) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(), nn.AvgPool2d(2),
                                      nn.Conv2d(6, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(0.5)
        self.head = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(self.features(x)))


class LitNet(pl.LightningModule):
    """An ordinary user LightningModule: CE loss, SGD with momentum; knows nothing of rkhsreg."""

    def __init__(self, net: nn.Module, lr: float = 0.1, output: str = "tensor") -> None:
        super().__init__()
        self.net, self.lr, self.output = net, lr, output

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch: Any, batch_idx: int) -> Any:
        loss = F.cross_entropy(self(batch[0]), batch[1])
        if self.output == "dict":
            return {"loss": loss, "extra": loss.detach()}
        if self.output == "skip_odd" and batch_idx % 2:
            return None
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self.log("val/loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.9)


def dataset(n: int = 32, num_classes: int = 3, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 8, 8, generator=g), torch.randint(0, num_classes, (n,), generator=g))


def loader(n: int = 32, batch_size: int = 8, seed: int = 0) -> DataLoader:
    return DataLoader(dataset(n, seed=seed), batch_size=batch_size, shuffle=False)


class ResumableLoader:
    """Fixed batches that Lightning can resume mid-epoch (it calls ``state_dict``/``load_state_dict``).

    The state is the number of batches handed out in the current epoch; a restored loader skips them once.
    A plain ``DataLoader`` is not resumable: Lightning then restarts the interrupted epoch's data and warns.
    """

    def __init__(self, n: int = 32, batch_size: int = 8, seed: int = 0) -> None:
        self.batches = list(loader(n, batch_size, seed))
        self.served, self._skip = 0, 0

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Any:
        start, self._skip = self._skip, 0
        self.served = start
        for batch in self.batches[start:]:
            self.served += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"served": self.served}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._skip = state["served"] % len(self.batches)  # a checkpoint at the epoch's last batch: a new epoch


class TinyData(pl.LightningDataModule):
    """:func:`dataset` as a DataModule (train and validation), for config-driven runs."""

    def __init__(self, n: int = 16, batch_size: int = 8) -> None:
        super().__init__()
        self.n, self.batch_size = n, batch_size

    def train_dataloader(self) -> DataLoader:
        return DataLoader(dataset(self.n), batch_size=self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(dataset(self.n, seed=1), batch_size=self.batch_size)


def trainer(**kwargs: Any) -> pl.Trainer:
    options = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, num_sanity_val_steps=0)
    options.update(kwargs)
    return pl.Trainer(**options)


def model(net: str = "tiny", seed: int = 0, **kwargs: Any) -> LitNet:
    torch.manual_seed(seed)
    return LitNet(TinyNet() if net == "tiny" else BNDropoutNet(), **kwargs)


def params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def small_kwargs(name: str) -> dict[str, Any]:
    """Cheap settings of each built-in penalty for 8×8 inputs and batches of 8."""
    return {"adversarial_perturbation": {"weight": 0.5, "epsilon": 0.5, "steps": 2},
            "adversarial_deformation": {"weight": 0.5, "num_examples": 8, "num_deformations": 3},
            "gradient_norm": {"weight": 0.5},
            "tangent_propagation": {"weight": 0.5, "num_examples": 8, "num_tangents": 4},
            "loss_gradient": {"weight": 0.5},
            "adversarial_training": {"weight": 1.0, "epsilon": 0.5, "steps": 2},
            "spectral_norm": {"weight": 0.1}}.get(name, {})


class SquaredLogits(Penalty):
    """mean ‖f(x)‖² in eval mode: a minimal well-behaved penalty for tests."""

    name = "squared_logits"

    def estimate(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        flags = [(m, m.training) for m in model.modules()]
        model.eval()
        try:
            out = model(inputs)
        finally:
            for m, flag in flags:
                m.training = flag
        self.last_passes.add(inputs.shape[0], inputs.shape[0], batch=inputs.shape[0])
        return out.pow(2).sum(1).mean()


class ClampWeights(Constraint):
    """Clamp every parameter to [-bound, bound]; counts its calls and records set_epoch."""

    name = "clamp_weights"

    def __init__(self, bound: float = 0.2) -> None:
        self.bound = bound
        self.radius = bound
        self.calls = 0
        self.epochs: list[int] = []

    def set_epoch(self, epoch: int) -> None:
        self.epochs.append(epoch)

    def __call__(self, model: nn.Module) -> None:
        self.calls += 1
        with torch.no_grad():
            for p in model.parameters():
                p.clamp_(-self.radius, self.radius)

    def state_dict(self) -> dict[str, Any]:
        return {"calls": self.calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.calls = state.get("calls", self.calls)
