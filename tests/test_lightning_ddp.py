"""Multi-process DDP (2 ranks, gloo, CPU): rank consistency, 1-process equivalence, exact resume.

Two processes run ``tests/_lightning_ddp_worker.py`` with the torchrun/SLURM environment variables,
each building ``Trainer(strategy="ddp", devices=2, accelerator="cpu")``; pytest itself never forks.
The single-process references run here, on the same global batches.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

pytest.importorskip("pytorch_lightning")

import rkhsreg  # noqa: E402
from tests import _lightning_ddp_worker as worker  # noqa: E402
from tests._ddp import free_port, rank_failure  # noqa: E402

pytestmark = pytest.mark.slow
TIMEOUT_S = 240
WORKER = Path(__file__).with_name("_lightning_ddp_worker.py")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``(per-rank DDP results, 1-process references)``; the references run while the ranks do."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    out = tmp_path_factory.mktemp("ddp")
    env_base = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2",
                "NODE_RANK": "0", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--out", str(out)],
                              env={**env_base, "LOCAL_RANK": str(rank), "RANK": str(rank)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for rank in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models; avoids OpenMP oversubscription beside the two ranks
    try:
        references: dict[str, Any] = {}
        for case in worker.case_names():  # the same global batches (8 = 2 ranks x 4) in one process
            try:
                references[case] = worker.run_case(case, devices=1, batch_size=8)
            except rkhsreg.PluginValidationError as exc:
                references[case] = str(exc)
        logs = [proc.communicate(timeout=TIMEOUT_S)[0] for proc in procs]
    except subprocess.TimeoutExpired:
        pytest.fail(f"DDP worker did not finish within {TIMEOUT_S} s")
    finally:
        torch.set_num_threads(threads)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for rank, (proc, log) in enumerate(zip(procs, logs)):
        failure = rank_failure(rank, proc.returncode, log, out / f"rank{rank}.pt")
        assert failure is None, failure
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)], references


def _max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


def _assert_same_tree(a: Any, b: Any, atol: float, where: str = "state") -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(a.double(), b.double(), rtol=0, atol=atol, msg=f"{where} differs across ranks")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            _assert_same_tree(a[key], b[key], atol, f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, atol, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.mark.parametrize("case", worker.case_names())
def test_ddp_matches_across_ranks_and_single_process(case: str, results: tuple) -> None:
    ddp_results, references = results
    rank0, rank1 = ddp_results[0][case], ddp_results[1][case]
    if isinstance(rank0, str):
        pytest.skip(f"penalty plugin unavailable: {rank0}")
    assert _max_diff(rank0["params"], rank1["params"]) <= 1e-6
    _assert_same_tree(rank0["state"], rank1["state"], atol=1e-6)  # power-iteration vectors, generators
    reference = references[case]
    assert _max_diff(rank0["params"], reference["params"]) <= 1e-5
    if case == "combined":  # control: without global_batch the sup is per rank and the run differs
        local = ddp_results[0]["combined_local"]["params"]
        assert _max_diff(local, reference["params"]) > 1e-4


def test_ddp_resume_from_mid_training_checkpoint_is_exact(results: tuple) -> None:
    ddp_results = results[0]
    for rank in range(2):
        full, resumed = ddp_results[rank]["resume_full"], ddp_results[rank]["resume_part"]
        assert _max_diff(full, resumed) <= 1e-6
    # control: a callback that drops its checkpointed state (generators, power vectors) does not resume exactly
    assert _max_diff(ddp_results[0]["resume_full"], ddp_results[0]["resume_forgetful"]) > 1e-6


def test_global_batch_penalty_on_a_batchnorm_net_is_bit_identical_on_every_rank(results: tuple) -> None:
    """Each rank's training forward updates its BatchNorm running statistics with its own batch; the
    eval-mode penalties on the global batch still give the very same value on both ranks, at every step."""
    ddp_results = results[0]
    rank0, rank1 = ddp_results[0]["batchnorm"], ddp_results[1]["batchnorm"]
    assert len(rank0["values"]) == worker.STEPS
    for step, (a, b) in enumerate(zip(rank0["values"], rank1["values"])):
        assert sorted(a) == sorted(f"rkhsreg/{name}/value" for name in worker.COMBINED)
        for key in a:
            assert torch.equal(a[key], b[key]), f"step {step + 1}: {key} is {a[key]} on rank 0, {b[key]} on rank 1"
    assert _max_diff(rank0["weights"], rank1["weights"]) == 0
    # control: with each rank's own statistics the same penalties differ between ranks
    a, b = ddp_results[0]["batchnorm_unshared"]["values"], ddp_results[1]["batchnorm_unshared"]["values"]
    assert any(not torch.equal(x[key], y[key]) for x, y in zip(a, b) for key in x)
