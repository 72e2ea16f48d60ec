"""gunicorn settings: `gunicorn shadowlab.wsgi --config python:shadowlab.gunicorn_conf`.

After a request, a worker process hands the memory its threads freed back to the system,
at most every 10 s (shadowlab.memory_trim): without it each thread's allocator arena keeps
the largest page it ever served, and the web's memory rises for hours.

With PROMETHEUS_MULTIPROC_DIR set, every gunicorn worker writes its metrics to files in that
folder and /metrics reads them all (deployments.metrics.host_registry), so one scrape covers
the whole pod or container however many workers answer requests. The folder must belong to
this gunicorn alone (an emptyDir or a tmpfs): it is emptied when gunicorn starts, so that
files of processes from an earlier run are not counted again, and the files of a worker that
exits are marked dead, so that its live gauges stop being reported.

Command-line options and GUNICORN_CMD_ARGS override anything set here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from shadowlab.memory_trim import MemoryTrimmer

bind = "0.0.0.0:8000"
# submit_latency.py and live_latency.py measured 3 processes x 4 threads on 2 cores: the
# interpreter lock makes a fourth thread useless on CPU work, and more processes cost memory.
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
threads = 4
# A request longer than this is stuck (every report is bounded well below it).
timeout = 60
graceful_timeout = 30
keepalive = 5
accesslog = "-"
# The heartbeat files live in memory, not on a disk-backed /tmp that may stall under load.
worker_tmp_dir = "/dev/shm" if Path("/dev/shm").is_dir() else None  # noqa: S108
# gunicorn's control socket would be created under $HOME, read-only in a container; workers
# are scaled by starting pods or containers, not by talking to a running master.
control_socket_disable = True


def _multiproc_dir() -> Path | None:
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    return Path(folder) if folder else None


def on_starting(server: Any) -> None:
    """Empty the metrics folder before any worker writes to it."""
    folder = _multiproc_dir()
    if folder is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def child_exit(server: Any, worker: Any) -> None:
    """Drop the live gauges of a worker that exited (its counters keep counting)."""
    if _multiproc_dir() is None:
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


_trimmer = MemoryTrimmer()


def post_request(worker: Any, req: Any, environ: Any, resp: Any) -> None:
    """Give freed memory back to the system (the response has been sent by now)."""
    _trimmer.after_request()
