"""An upload handler that stops reading a request once it passes the registry's size cap.

It is the first of FILE_UPLOAD_HANDLERS, so it bounds every multipart body whichever view
(or middleware, such as the CSRF check) parses it first. Django keeps a file of up to
FILE_UPLOAD_MAX_MEMORY_SIZE in memory and spools a larger one to disk; without a cap a
multipart POST to any page would write as much to the temporary folder as a client sends.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import QueryDict
from django.utils.datastructures import MultiValueDict

# Form fields beside the files: their own limit is DATA_UPLOAD_MAX_MEMORY_SIZE.
FORM_FIELDS_BYTES = 1024 * 1024


class UploadTooLarge(Exception):
    pass


def upload_caps() -> tuple[int, int]:
    """Return the largest file and the largest request: two files of MODEL_MAX_BYTES each."""
    file_max = int(settings.SHADOWLAB["MODEL_MAX_BYTES"])
    return file_max, 2 * file_max + FORM_FIELDS_BYTES


class SizeCapUploadHandler(FileUploadHandler):
    """Abort an upload as soon as a file or the request passes its cap, reading no further.

    A request whose Content-Length is already past the cap is not read at all: it parses as
    empty. Either way `exceeded` is set, for the view to answer 413.
    """

    def __init__(
        self,
        request: Any = None,
        *,
        max_bytes: int | None = None,
        file_max_bytes: int | None = None,
    ) -> None:
        super().__init__(request)
        default_file_max, default_max = upload_caps()
        self.max_bytes = default_max if max_bytes is None else max_bytes
        self.file_max_bytes = default_file_max if file_max_bytes is None else file_max_bytes
        self.received = 0
        self.file_received = 0
        self.exceeded = False

    def handle_raw_input(
        self,
        input_data: Any,
        META: dict[str, Any],
        content_length: int,
        boundary: Any,
        encoding: str | None = None,
    ) -> tuple[QueryDict, MultiValueDict[str, Any]] | None:
        if content_length > self.max_bytes:
            self.exceeded = True
            return QueryDict(encoding=encoding), MultiValueDict()
        return None

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self.file_received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        self.file_received += len(raw_data)
        if self.received > self.max_bytes or self.file_received > self.file_max_bytes:
            self.exceeded = True
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None
