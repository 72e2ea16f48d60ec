"""How commands in a second terminal find the running local stack, and the port check."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from shadowlab import local_stack


def test_recorded_broker_is_found_while_its_runner_lives(tmp_path):
    local_stack.stack_record(tmp_path, "redis://127.0.0.1:41234/0")
    assert local_stack.stack_broker_url(tmp_path) == "redis://127.0.0.1:41234/0"
    local_stack.stack_forget(tmp_path)
    assert not local_stack.stack_file(tmp_path).exists()
    assert local_stack.stack_broker_url(tmp_path) is None


def test_record_left_by_a_killed_runner_is_ignored(tmp_path):
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    local_stack.stack_file(tmp_path).write_text(
        json.dumps({"url": "redis://127.0.0.1:1/0", "pid": int(gone.stdout)})
    )
    assert local_stack.stack_broker_url(tmp_path) is None


def test_damaged_record_is_ignored(tmp_path):
    local_stack.stack_file(tmp_path).write_text("not json")
    assert local_stack.stack_broker_url(tmp_path) is None
    local_stack.stack_file(tmp_path).write_text(json.dumps({"url": 5, "pid": os.getpid()}))
    assert local_stack.stack_broker_url(tmp_path) is None


def test_forget_leaves_another_runners_record(tmp_path):
    local_stack.stack_file(tmp_path).write_text(json.dumps({"url": "x://", "pid": 1}))
    local_stack.stack_forget(tmp_path)
    assert local_stack.stack_file(tmp_path).exists()


def test_settings_use_the_running_stacks_broker(tmp_path):
    local_stack.stack_record(tmp_path, "redis://127.0.0.1:41234/0")
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("REDIS_URL", "CELERY_BROKER_URL", "DATABASE_URL")
    }
    env.update(SHADOWLAB_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="shadowlab.settings")
    shown = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings; print(settings.CELERY_BROKER_URL)",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.strip() == "redis://127.0.0.1:41234/0"


def test_no_stack_notice_only_for_an_unread_file_broker(tmp_path):
    notice = local_stack.no_stack_notice(
        broker_url="filesystem://localhost/", recorded_url=None, var_dir=tmp_path
    )
    assert notice is not None and "make run" in notice
    assert (
        local_stack.no_stack_notice(
            broker_url="filesystem://localhost/",
            recorded_url="filesystem://localhost/",
            var_dir=tmp_path,
        )
        is None
    )
    assert (
        local_stack.no_stack_notice(
            broker_url="redis://127.0.0.1:6379/0", recorded_url=None, var_dir=tmp_path
        )
        is None
    )


def test_port_check_finds_a_listener_and_names_it():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert local_stack.port_listener("127.0.0.1", port)
        holder = local_stack.port_holder(port)
        assert holder is not None and f"pid {os.getpid()}" in holder


def test_port_check_ignores_closed_connections_in_time_wait():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    # The server side closes first, so its end of the connection waits in TIME_WAIT.
    accepted.close()
    client.close()
    server.close()
    assert not local_stack.port_listener("127.0.0.1", port)
