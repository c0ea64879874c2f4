"""What the two multi-process test suites share: a free port, a clean worker exit, a rank's exit status judged."""

from __future__ import annotations

import os
import signal
import socket
import sys
import warnings
from pathlib import Path

TEARDOWN_ABORT = "terminate called without an active exception"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def exit_worker() -> None:
    """End a worker rank after its results are written: every rank past its last collective, the group
    destroyed, then the interpreter's finalisation skipped (gloo's and the TCP store's C++ threads torn
    down there can abort a process whose work is done)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def rank_failure(rank: int, returncode: int, output: str, result: Path) -> str | None:
    """Why rank ``rank`` failed, or ``None`` when it succeeded.

    torch's gloo backend can, rarely and on a loaded machine, abort a process while its C++ threads are torn
    down after the last collective (``TEARDOWN_ABORT``, SIGABRT), even after a barrier and
    ``destroy_process_group``. When the rank's result file was written before that, its work is done and the
    callers check that work from the file: that abort only warns. Any other failure (another signal or
    message, no result file) is one.
    """
    if returncode == 0:
        return None
    if returncode == -signal.SIGABRT and output.strip() == TEARDOWN_ABORT and result.is_file():
        warnings.warn(f"rank {rank}: gloo aborted the process at teardown after its results were written",
                      stacklevel=2)
        return None
    return f"rank {rank} exited with {returncode}:\n{output[-4000:]}"
