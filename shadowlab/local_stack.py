"""Where a running `manage.py run_local` can be reached, for commands in another terminal.

The local runner records its broker URL and its own pid in a small file under the var
folder and removes it on exit; settings read it when neither REDIS_URL nor
CELERY_BROKER_URL is set, so `manage.py simulate` in a second terminal queues its work
where the running worker reads. No Django import: settings load this module.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

FILE_NAME = "broker-url"


def stack_file(var_dir: Path) -> Path:
    """Return the file a running local stack records its broker in."""
    return var_dir / FILE_NAME


def stack_record(var_dir: Path, broker_url: str) -> Path:
    """Record that this process runs the local stack with this broker."""
    path = stack_file(var_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"url": broker_url, "pid": os.getpid()}))
    temporary.replace(path)
    return path


def stack_forget(var_dir: Path) -> None:
    """Remove the record of this process's local stack (on exit)."""
    path = stack_file(var_dir)
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stack_broker_url(var_dir: Path) -> str | None:
    """Return the broker URL of the local stack running on this var folder, if one runs.

    A record left by a runner that was killed (its pid is gone) is ignored.
    """
    try:
        record = json.loads(stack_file(var_dir).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or not _alive(record.get("pid")):
        return None
    url = record.get("url")
    return url if isinstance(url, str) and url else None


def port_listener(host: str, port: int) -> bool:
    """Say whether a server listens on host:port.

    Connecting finds only a real listener: the closed connections of a server that just
    stopped (TIME_WAIT) block a plain bind, but the next server binds with SO_REUSEADDR
    and starts fine.
    """
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        pass
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # local address is HEX_IP:HEX_PORT; state 0A is LISTEN.
            if (
                len(fields) > 9
                and fields[3] == "0A"
                and int(fields[1].rsplit(":", 1)[1], 16) == port
            ):
                inodes.add(fields[9])
    return inodes


def port_holder(port: int) -> str | None:
    """Describe the process listening on this TCP port ("pid 123: python ..."), if known."""
    inodes = _listening_inodes(port)
    if not inodes:
        return None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        links = set()
        try:
            descriptors = list((entry / "fd").iterdir())
        except OSError:
            continue
        for descriptor in descriptors:
            # A descriptor can close between listing and reading it.
            try:
                links.add(os.readlink(descriptor))
            except OSError:
                continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            except OSError:
                command = "?"
            return f"pid {entry.name}: {command[:120]}"
    return None


def no_stack_notice(*, broker_url: str, recorded_url: str | None, var_dir: Path) -> str | None:
    """Say so when work would be queued on the file broker while no local stack reads it."""
    if not broker_url.startswith("filesystem://") or recorded_url is not None:
        return None
    return (
        f"no ShadowLab stack is running on {var_dir} (start it with `make run`): what this "
        "command stores is kept, and scored once a worker runs (the sweeper queues it again)"
    )
