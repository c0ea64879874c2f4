"""The callback on a real ``lightning.pytorch`` Trainer (the unified ``lightning`` package), not an alias.

Runs in a subprocess that never imports ``pytorch_lightning``: a user of ``import lightning.pytorch as L``
gets a callback of their own package, the penalty reaches the loss (the gradients differ from an
unregularised step) and the SN projection holds after every optimiser step.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("lightning.pytorch", reason="the `lightning` package is in the test extra; pip install lightning")

SCRIPT = textwrap.dedent("""
    import sys
    import torch, torch.nn.functional as F
    from torch import nn
    import lightning.pytorch as L
    import rkhsreg.lightning as rl
    assert rl.PACKAGE == "lightning.pytorch", rl.PACKAGE
    assert "pytorch_lightning" not in sys.modules

    class Lit(L.LightningModule):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                     nn.Flatten(), nn.Linear(4, 3))
        def training_step(self, batch, _):
            x, y = batch
            return F.cross_entropy(self.net(x), y)
        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.5)
        def forward(self, x):
            return self.net(x)

    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(16, 1, 8, 8, generator=g), torch.randint(0, 3, (16,), generator=g)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)

    def fit(callbacks):
        lit = Lit()
        trainer = L.Trainer(max_steps=2, accelerator="cpu", logger=False, enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, callbacks=callbacks)
        trainer.fit(lit, loader)
        return lit, trainer

    plain, _ = fit([])
    cb = rl.RKHSRegularization({"gradient_norm": {"weight": 1.0}},
                               {"spectral_norm_projection": {"radius": 0.5, "projection": "clip"}})
    reg, trainer = fit([cb])
    value = trainer.callback_metrics["rkhsreg/gradient_norm/value"]
    assert torch.isfinite(value) and value > 0, value
    assert not torch.allclose(plain.net[0].weight, reg.net[0].weight)
    for p in (reg.net[0].weight, reg.net[4].weight):
        sigma = torch.linalg.matrix_norm(p.detach().reshape(p.shape[0], -1), ord=2)
        assert sigma <= 0.5 + 1e-4, float(sigma)
    print("ok")
""")


def test_callback_on_a_lightning_pytorch_trainer() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "RKHSREG_LIGHTNING": ""})
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout + run.stderr
