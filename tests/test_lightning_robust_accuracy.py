"""RobustAccuracy callback: logs under Lightning's default inference_mode, leaves the module untouched."""

from __future__ import annotations

import sys

import pytest
import torch

pytest.importorskip("torchattacks")
pl = pytest.importorskip("pytorch_lightning")

from rkhsreg import ConfigurationError  # noqa: E402
from tests import _lightning_helpers as H  # noqa: E402
from tests.conftest import assert_same_snapshot, snapshot  # noqa: E402



def test_core_package_does_not_import_lightning():
    import subprocess
    code = ("import sys, rkhsreg, rkhsreg.evaluation, rkhsreg.cli; "
            "bad = [m for m in ('pytorch_lightning', 'lightning', 'torchattacks', 'matplotlib') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_logs_robust_accuracy_under_inference_mode():
    from rkhsreg.lightning import RobustAccuracy

    module = H.model("bn")
    callback = RobustAccuracy([0.1, 0.5], every_n_epochs=2, n_examples=12, steps=3, batch_size=8)
    trainer = H.trainer(max_epochs=2, callbacks=[callback], limit_train_batches=2, limit_val_batches=2)
    assert trainer.validate_loop.inference_mode  # Lightning's default: no inference_mode=False needed
    trainer.fit(module, H.loader(32), H.loader(24, seed=1))
    assert len(callback.history) == 1 and callback.history[0]["epoch"] == 1.0  # epochs 1, 3, …: only epoch 1 here
    metrics = trainer.callback_metrics
    assert {"robust/clean", "robust/eps=0.1", "robust/eps=0.5"} <= set(metrics)
    assert float(metrics["robust/eps=0.5"]) <= float(metrics["robust/eps=0.1"]) <= float(metrics["robust/clean"])
    assert callback.last_result.n_examples == 12


def test_fixed_probe_and_no_side_effects_on_the_module():
    from rkhsreg.lightning import RobustAccuracy

    module = H.model("bn")
    data = H.dataset(10, seed=3).tensors
    callback = RobustAccuracy([0.3], data=data, n_examples=10, steps=2, forward="net", log_prefix="rob")
    trainer = H.trainer(max_epochs=1, callbacks=[callback], limit_train_batches=1, limit_val_batches=1)
    trainer.fit(module, H.loader(16), H.loader(8))
    before = snapshot(module)
    with torch.inference_mode():
        result = callback.measure(module)
    assert_same_snapshot(before, snapshot(module))
    assert result.n_examples == 10 and result.epsilons == [0.3]
    assert "rob/eps=0.3" in trainer.callback_metrics and len(callback.history) == 1
    assert callback.state_dict()["history"] == callback.history


def test_bad_arguments():
    from rkhsreg.lightning import RobustAccuracy

    with pytest.raises(ConfigurationError, match="every_n_epochs=0 is out of range"):
        RobustAccuracy([0.5], every_n_epochs=0)
    with pytest.raises(ConfigurationError, match="epsilons=\\[\\] is not allowed"):
        RobustAccuracy([])
    with pytest.raises(ConfigurationError, match="log_prefix='' is not allowed"):
        RobustAccuracy([0.5], log_prefix="")
    # the box is checked when the callback is built, not at the first validation epoch
    with pytest.raises(ConfigurationError, match="bounds=\\(1.0, 0.0\\) is empty"):
        RobustAccuracy([0.5], bounds=(1.0, 0.0))
