"""kombu's file transport with atomic hand-over, for the embedded (one machine) mode.

kombu's own file transport creates a message file and then writes into it, and its
consumer claims any file with the right name by moving it to the temporary folder and
reading it without the writer's lock. Under load a worker can claim a file that is
still empty or half written (or, when the temporary folder is on another file system,
copy it half written): the message is lost, and the item waits for the sweeper.

Here a message is written under a name no consumer picks up and renamed into place
once complete (a rename within one folder is atomic), and a consumer claims a file by
renaming it into the broker's own processed folder (the same file system), so a
message is either wholly there or not yet there. A file that still cannot be decoded is
logged and set aside under ``<processed>/unreadable``; the sweeper queues its items again.

The worker reads the folders from its event loop (a poll every ``polling_interval``), as it
reads Redis, so it runs Celery's asynchronous prefork pool: every pool process has pipes of
its own. Without an event loop Celery falls back to billiard's blocking pool, whose processes
share one job pipe behind one lock: a process killed while holding that lock (the kernel's
out-of-memory killer, a crash in a model's runtime) left every other process waiting for it,
and the worker stopped scoring for good.
No Django import: Celery loads this from the settings.
"""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.transport.virtual import Empty
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

UNREADABLE = "unreadable"


class Channel(filesystem.Channel):
    """A file-transport channel whose messages appear and disappear atomically."""

    # kombu's stubs name the argument differently in the base and the file channel.
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        """Write the message under a private name, then rename it into the queue's folder."""
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        folder = Path(self.data_folder_out)
        partial = folder / f".{name}.part"
        try:
            partial.write_bytes(str_to_bytes(dumps(payload)))
            os.replace(partial, folder / name)
        except OSError as exc:
            partial.unlink(missing_ok=True)
            raise ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _claim_folder(self) -> Path:
        folder = Path(self.processed_folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        """Claim the oldest whole message of the queue by renaming it, read it, remove it."""
        wanted = f"{queue}.msg"
        inbox = Path(self.data_folder_in)
        claimed_folder = self._claim_folder()
        for name in sorted(os.listdir(inbox)):
            if name.startswith(".") or name.partition(".")[2] != wanted:
                continue
            claimed = claimed_folder / name
            try:
                os.replace(inbox / name, claimed)
            except OSError:
                # Another consumer took it first.
                continue
            try:
                payload = claimed.read_bytes()
            except OSError as exc:
                raise ChannelError(f"Cannot read file {str(claimed)!r} from queue.") from exc
            try:
                message = loads(bytes_to_str(payload))
            except ValueError:
                self._set_aside(claimed)
                continue
            if not self.store_processed:
                claimed.unlink(missing_ok=True)
            return message
        raise Empty()

    def _set_aside(self, claimed: Path) -> None:
        folder = claimed.parent / UNREADABLE
        folder.mkdir(exist_ok=True)
        os.replace(claimed, folder / claimed.name)
        logger.error(
            "broker message %s could not be decoded; kept in %s, its items are queued again "
            "by the sweeper",
            claimed.name,
            folder,
        )


# Messages taken per poll at most, so that one poll never holds the event loop for long (the
# worker's prefetch limit stops it sooner).
_POLL_BATCH = 100


class Transport(filesystem.Transport):
    """The file transport with the atomic channel above, read from the worker's event loop."""

    Channel = Channel
    implements = filesystem.Transport.implements.extend(asynchronous=True)

    def register_with_event_loop(self, connection: Any, loop: Any) -> None:
        """Have the worker's event loop look for messages every polling interval."""
        loop.call_repeatedly(self.polling_interval or 0.1, self._poll, connection)

    def _poll(self, connection: Any) -> None:
        """Deliver the messages waiting now (as far as the prefetch limit allows), never wait."""
        for _ in range(_POLL_BATCH):
            try:
                self.drain_events(connection, timeout=0)
            except TimeoutError:
                return
