"""gunicorn's config: one /metrics for all its processes, a clean metrics folder at start."""

from __future__ import annotations

import ctypes.util
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from types import SimpleNamespace

import psutil
import pytest

from shadowlab import gunicorn_conf
from shadowlab.memory_trim import MemoryTrimmer, malloc_trim_find
from tests.integration.conftest import ROOT, database_url, wait_until

TOKEN = "test-metrics-token"


def test_gunicorn_empties_the_metrics_folder_when_it_starts(tmp_path, monkeypatch):
    folder = tmp_path / "metrics"
    (folder / "leftover").mkdir(parents=True)
    (folder / "counter_4242.db").write_bytes(b"from an earlier run")
    (folder / "leftover" / "file").write_text("x")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(folder))

    gunicorn_conf.on_starting(server=None)

    assert folder.is_dir() and list(folder.iterdir()) == []


def test_a_gunicorn_worker_that_exits_loses_its_live_gauges_and_keeps_its_counters(
    tmp_path, monkeypatch
):
    names = ["counter_7.db", "histogram_7.db", "gauge_livesum_7.db", "gauge_liveall_7.db"]
    names += ["gauge_all_7.db", "gauge_livesum_8.db"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    gunicorn_conf.child_exit(server=None, worker=SimpleNamespace(pid=7))

    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_7.db",
        "gauge_all_7.db",
        "gauge_livesum_8.db",
        "histogram_7.db",
    ]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> tuple[int, str]:
    # Long enough for a worker that is still booting: a request given up on here would be
    # served (and counted) later all the same.
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return response.status, response.read().decode()


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _requests_counted(body: str) -> float:
    prefix = 'django_http_requests_total_by_method_total{method="GET"} '
    return sum(float(line[len(prefix) :]) for line in body.splitlines() if line.startswith(prefix))


@pytest.mark.django_db(transaction=True)
def test_metrics_under_gunicorn_keep_the_requests_of_workers_that_were_killed(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    # Garbage a metrics reader would choke on, unless gunicorn clears it at start.
    (folder / "counter_999999.db").write_bytes(b"\xff" * 64)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "PROMETHEUS_MULTIPROC_DIR": str(folder),
        "SHADOWLAB_METRICS_TOKEN": TOKEN,
        "WEB_CONCURRENCY": "2",
    }
    log = (tmp_path / "gunicorn.log").open("wb")
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "shadowlab.wsgi",
            "--config",
            "python:shadowlab.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _listening(port), timeout=90, message="gunicorn listening")
        for _ in range(20):
            assert _get(f"{base}/healthz")[0] == 200
        first = {child.pid for child in psutil.Process(master.pid).children()}
        assert len(first) == 2

        # Every process that served those requests is killed; the new ones served none.
        for pid in first:
            os.kill(pid, signal.SIGKILL)
        wait_until(
            lambda: len(set(c.pid for c in psutil.Process(master.pid).children()) - first) == 2,
            timeout=90,
            message="gunicorn replaced both workers",
        )
        status, body = _get(f"{base}/metrics")

        assert status == 200
        # The 20 from the files the killed processes left, plus this request (counted as it
        # arrives, before the view reads the figures).
        assert _requests_counted(body) == 21
        assert not (folder / "counter_999999.db").exists()
    finally:
        master.terminate()
        master.wait(timeout=60)
        log.close()
    output = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in output, output[-3000:]


def test_a_worker_trims_its_heaps_after_a_request_at_most_every_ten_seconds():
    calls: list[int] = []
    now = [100.0]
    trimmer = MemoryTrimmer(every_seconds=10, trim=calls.append, clock=lambda: now[0])

    assert trimmer.after_request() and calls == [0]
    now[0] += 9.9
    assert not trimmer.after_request() and calls == [0]
    now[0] += 0.1
    assert trimmer.after_request() and calls == [0, 0]


def test_the_trim_is_glibc_malloc_trim_here_and_gunicorn_calls_it_after_requests(monkeypatch):
    if sys.platform == "linux" and os.confstr("CS_GNU_LIBC_VERSION"):
        assert malloc_trim_find() is not None
    trimmed: list[int] = []
    monkeypatch.setattr(
        gunicorn_conf, "_trimmer", MemoryTrimmer(every_seconds=10, trim=trimmed.append)
    )
    gunicorn_conf.post_request(worker=None, req=None, environ={}, resp=None)
    gunicorn_conf.post_request(worker=None, req=None, environ={}, resp=None)
    assert trimmed == [0]


def test_without_malloc_trim_nothing_is_done(monkeypatch):
    monkeypatch.setattr(ctypes.util, "find_library", lambda name: None)
    trimmer = MemoryTrimmer()
    assert not trimmer.available and not trimmer.after_request()
