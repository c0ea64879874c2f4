"""rkhsreg._checks.check_device: a device name, or an error naming the parameter, the value and what is allowed."""

from __future__ import annotations

import pytest
import torch

from rkhsreg._checks import check_device
from rkhsreg._errors import ConfigurationError


def test_check_device_parses_names_and_devices():
    assert check_device("device", "cpu") == torch.device("cpu")
    assert check_device("device", torch.device("cpu")) == torch.device("cpu")


def test_check_device_refuses_nonsense_and_unavailable_cuda():
    with pytest.raises(ConfigurationError, match=r"--device='gpu0' is not a device; pass cpu, cuda or cuda:0"):
        check_device("--device", "gpu0")
    with pytest.raises(ConfigurationError, match="device=3.5 is not a device"):
        check_device("device", 3.5)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match=r"device='cuda': CUDA is not available on this machine"):
            check_device("device", "cuda")
