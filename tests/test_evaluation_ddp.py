"""Two CPU processes (gloo) shard an evaluation's batches and gather exactly the 1-process result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("torchattacks")

from rkhsreg.evaluation import evaluate_robustness  # noqa: E402
from tests import _evaluation_ddp_worker as worker  # noqa: E402
from tests._ddp import free_port, rank_failure  # noqa: E402

pytestmark = pytest.mark.slow
WORKER = Path(__file__).with_name("_evaluation_ddp_worker.py")
TIMEOUT_S = 240


def test_two_processes_equal_one(tmp_path):
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2",
           "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, str(WORKER), "--out", str(tmp_path)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for r in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model, x, y = worker.problem()
        reference = evaluate_robustness(model, (x, y), **worker.SETTINGS)
    finally:
        torch.set_num_threads(threads)
        outputs = []
        for proc in procs:
            try:
                outputs.append(proc.communicate(timeout=TIMEOUT_S)[0])
            except subprocess.TimeoutExpired:
                proc.kill()
                outputs.append(proc.communicate()[0])
    for rank, (proc, output) in enumerate(zip(procs, outputs)):
        failure = rank_failure(rank, proc.returncode, output, tmp_path / f"rank{rank}.pt")
        assert failure is None, failure
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    for got in ranks:
        assert got["world"] == 2
        assert torch.equal(got["distances"], reference.distances)
        assert got["robust"] == reference.robust_accuracy and got["clean"] == reference.clean_accuracy
        assert got["attacked"] == [s["attacked"] for s in reference.stages]
        assert got["rows"] == reference.forward_rows + reference.backward_rows
        assert got["checks"] == {k: v["passed"] for k, v in reference.sanity["checks"].items()}
        assert "processes passed different data" in got["mismatch"]
