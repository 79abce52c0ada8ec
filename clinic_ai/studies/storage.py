"""Where files live. Names are ids, never anything the uploader typed.

Quarantine (originals, may hold patient data) and media (released files and
previews) are separate roots; neither is served directly by the web server.
Paths are stored relative to their root and resolved here.
"""

import io
import os
import shutil
import tempfile
from pathlib import Path

from django.conf import settings


def _resolve(root: Path, relative: str) -> Path:
    path = (root / relative).resolve()
    if root.resolve() not in path.parents:
        raise ValueError("path escapes its storage root")
    return path


def quarantine_path(relative: str) -> Path:
    return _resolve(Path(settings.QUARANTINE_ROOT), relative)


def media_path(relative: str) -> Path:
    return _resolve(Path(settings.MEDIA_ROOT), relative)


def upload_relative_path(upload_id) -> str:
    return f"uploads/{upload_id}.part"


def released_relative_path(image) -> str:
    suffix = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}[image.kind]
    return f"released/{image.project_id}/{image.pk}.{suffix}"


def preview_relative_path(image, frame: int = 0) -> str:
    name = f"{image.pk}.png" if frame == 0 else f"{image.pk}-f{frame}.png"
    return f"previews/{image.project_id}/{name}"


def ensure_parent(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    return path


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy through a temporary file, so a crash never leaves a half-written released file."""
    ensure_parent(dst)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1024 * 1024)
            out.flush()
            os.fsync(out.fileno())  # durable before the quarantined original is purged
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_save_image(pil_image, dst: Path) -> None:
    buffer = io.BytesIO()
    pil_image.save(buffer, format="PNG", optimize=False)
    atomic_write_bytes(buffer.getvalue(), dst)


def purge(path: Path) -> None:
    path.unlink(missing_ok=True)


def atomic_write_bytes(data: bytes, dst: Path) -> None:
    ensure_parent(dst)
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
