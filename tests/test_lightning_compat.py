"""Which Lightning rkhsreg.lightning builds on, and the core's independence from Lightning."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import sys, types
    # 1. no Lightning at all: the core and the plain helpers work; rkhsreg.lightning says what to install
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        sys.modules[name] = None
    import rkhsreg, rkhsreg.training
    rkhsreg.training.build_penalties({"gradient_norm": {}})
    try:
        import rkhsreg.lightning
    except ImportError as exc:
        assert "pip install 'rkhsreg[lightning]'" in str(exc), exc
    else:
        raise AssertionError("rkhsreg.lightning imported without Lightning")
    for name in ("pytorch_lightning", "lightning", "lightning.pytorch"):
        del sys.modules[name]
    for name in [m for m in sys.modules if m.startswith("rkhsreg.lightning")]:
        del sys.modules[name]
    # 2. a user of the `lightning.pytorch` namespace only: rkhsreg.lightning follows it
    import pytorch_lightning as real
    sys.modules["lightning"] = types.ModuleType("lightning")
    sys.modules["lightning.pytorch"] = real
    del sys.modules["pytorch_lightning"]
    import rkhsreg.lightning
    assert rkhsreg.lightning.PACKAGE == "lightning.pytorch", rkhsreg.lightning.PACKAGE
    print("ok")
""")


def test_core_without_lightning_and_lightning_namespace_fallback() -> None:
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stderr[-3000:]


def test_forcing_an_unknown_package_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pytorch_lightning")
    from rkhsreg import ConfigurationError
    from rkhsreg.lightning import _compat

    monkeypatch.setenv("RKHSREG_LIGHTNING", "lightning.fabric")
    with pytest.raises(ConfigurationError, match=r"RKHSREG_LIGHTNING='lightning.fabric' is not allowed"):
        _compat._order()
    monkeypatch.setenv("RKHSREG_LIGHTNING", "pytorch_lightning")
    assert _compat._load()[1] == "pytorch_lightning"


def test_trainer_of_the_other_package_is_refused_with_the_fix() -> None:
    pytest.importorskip("pytorch_lightning")
    from rkhsreg import ConfigurationError
    from rkhsreg.lightning import RKHSRegularization

    Foreign = type("Trainer", (), {"__module__": "lightning.pytorch.trainer.trainer"})
    with pytest.raises(ConfigurationError, match=r"Trainer comes from lightning.pytorch\. Set "
                                                 r"RKHSREG_LIGHTNING=lightning.pytorch"):
        RKHSRegularization().setup(Foreign(), None, "fit")
