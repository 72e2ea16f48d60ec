"""How `manage.py run_local` serves: DEBUG off, a kept secret key, plain HTTP on this machine.

The local stack's processes get their settings through the environment that run_local
builds here, so shadowlab.settings needs no special case: production (compose, Kubernetes)
still fails loudly without SECRET_KEY, because only run_local reads the key kept under the
var folder and hands it to its own children. No Django import: this is tested on its own.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

SECRET_KEY_FILE = "secret-key"  # noqa: S105 - the file name, not a key
STATIC_FOLDER = "static"
STATIC_STAMP = ".shadowlab-collected"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_HOSTS = ("0.0.0.0", "::", "[::]")  # noqa: S104 - names, not a bind


def secret_key_ensure(var_dir: Path) -> str:
    """Return the local stack's secret key, made once and kept in a file only its owner reads.

    A key file someone loosened is tightened back to 0600; an empty or short one is replaced.
    """
    path = var_dir / SECRET_KEY_FILE
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        key = ""
    if len(key) >= 50:
        if stat.S_IMODE(path.stat().st_mode) != 0o600:
            path.chmod(0o600)
        return key
    key = secrets.token_urlsafe(50)
    var_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{SECRET_KEY_FILE}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)  # whatever the umask
        os.write(descriptor, (key + "\n").encode())
    finally:
        os.close(descriptor)
    temporary.replace(path)
    return key


def allowed_hosts(host: str) -> list[str]:
    """Return the host names the local server answers to when it listens on host."""
    names = list(LOOPBACK_HOSTS)
    if host in WILDCARD_HOSTS:
        # Reached from other machines by this one's name; an address needs ALLOWED_HOSTS.
        extra = [socket.gethostname(), socket.getfqdn()]
    else:
        extra = [f"[{host}]" if ":" in host and not host.startswith("[") else host]
    names += [name for name in extra if name and name not in names]
    return names


def local_server_environment(
    base: Mapping[str, str], *, var_dir: Path, host: str, debug: bool, secret_key: str
) -> dict[str, str]:
    """Return the environment of the local stack's processes.

    DEBUG is off unless asked for, so an error never shows a traceback or the settings. A
    SECRET_KEY or ALLOWED_HOSTS already in the environment wins. The stack serves plain HTTP
    on this machine: no SSL redirect, no HSTS and no Secure-only cookies, whatever the shell
    says, or logging in over http://127.0.0.1 would not work.
    """
    env = dict(base)
    env["DJANGO_DEBUG"] = "true" if debug else "false"
    if not env.get("SECRET_KEY"):
        env["SECRET_KEY"] = secret_key
    if not env.get("ALLOWED_HOSTS"):
        env["ALLOWED_HOSTS"] = ",".join(allowed_hosts(host))
    env.setdefault("STATIC_ROOT", str(var_dir / STATIC_FOLDER))
    env.update(
        SECURE_SSL_REDIRECT="false",
        SESSION_COOKIE_SECURE="false",
        CSRF_COOKIE_SECURE="false",
        SECURE_HSTS_SECONDS="0",
        SECURE_HSTS_PRELOAD="false",
    )
    return env


def static_fingerprint(files: Iterable[tuple[str, Path]]) -> str:
    """Return a digest of the static source files (name, size, change time).

    collectstatic hashes and compresses every file on every run (close to a minute with
    plotly.js on a small machine); comparing this digest first makes an unchanged start quick.
    """
    digest = hashlib.sha256()
    for name, path in sorted(files):
        info = path.stat()
        digest.update(f"{name}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def static_up_to_date(static_root: Path, fingerprint: str) -> bool:
    """Say whether static_root holds a finished collection of files with this fingerprint."""
    try:
        return (static_root / STATIC_STAMP).read_text().strip() == fingerprint
    except OSError:
        return False


def static_mark_collected(static_root: Path, fingerprint: str) -> None:
    """Record that static_root holds a finished collection of files with this fingerprint."""
    (static_root / STATIC_STAMP).write_text(fingerprint + "\n")
