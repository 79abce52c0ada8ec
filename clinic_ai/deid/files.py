"""Writing released files: atomically and durably. Pure: no Django."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(data: bytes, dst_path: str | os.PathLike) -> None:
    """Write ``data`` to ``dst_path`` through a temporary file in the same directory, fsync it,
    then rename it over ``dst_path``: a reader never sees half a file, and a crash never leaves one."""
    dst = Path(dst_path)
    fd, tmp = tempfile.mkstemp(prefix=".deid-", suffix=".tmp", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
