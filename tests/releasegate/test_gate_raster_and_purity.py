"""The PNG/JPEG gate (a chunk/segment allow-list of its own) and the gate package's purity."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from PIL import Image

from clinic_ai.releasegate import GateRefused, check_raster_release

REPO = Path(__file__).resolve().parents[2]


def chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">L", len(body)) + ctype + body + struct.pack(">L", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def png(*extra: bytes, after_end: bytes = b"") -> bytes:
    ihdr = struct.pack(">LLBBBBB", 2, 2, 8, 0, 0, 0, 0)  # 2x2, 8-bit grey
    pixels = zlib.compress(b"\x00\x10\x20\x00\x30\x40")
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + b"".join(extra)
        + chunk(b"IDAT", pixels)
        + chunk(b"IEND", b"")
        + after_end
    )


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, format="JPEG")
    return buffer.getvalue()


def refused(data: bytes, kind: str) -> GateRefused:
    with pytest.raises(GateRefused) as caught:
        check_raster_release(data, kind=kind)
    return caught.value


def test_a_plain_png_passes():
    check_raster_release(png(chunk(b"pHYs", struct.pack(">LLB", 2835, 2835, 1))), kind="png")


@pytest.mark.parametrize(
    "extra",
    [
        chunk(b"tEXt", b"Comment\x00Doe^Jane MRN55501234"),
        chunk(b"iTXt", b"Author\x00\x00\x00\x00\x00Jane Doe"),
        chunk(b"tIME", struct.pack(">HBBBBB", 2024, 3, 11, 9, 30, 15)),
        chunk(b"eXIf", b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x02" + b"\x00" * 28),  # more than Orientation
        chunk(b"iCCP", b"Jane Doe's monitor\x00\x00" + zlib.compress(b"profile")),
    ],
)
def test_a_png_with_text_or_metadata_chunks_is_refused(extra):
    refusal = refused(png(extra), "png")
    assert refusal.rule == "raster"
    assert "Jane" not in refusal.reason


def test_a_png_with_bytes_after_its_end_or_a_bad_checksum_is_refused():
    assert refused(png(after_end=b"Doe^Jane"), "png").rule == "raster"
    broken = bytearray(png())
    broken[-20] ^= 0xFF  # inside IDAT
    assert refused(bytes(broken), "png").rule == "raster"


def test_a_plain_jpeg_passes():
    check_raster_release(jpeg(), kind="jpeg")


def test_a_jpeg_with_a_comment_exif_or_trailing_bytes_is_refused():
    data = jpeg()
    comment = b"\xff\xfe" + struct.pack(">H", 2 + 8) + b"Doe^Jane"
    assert refused(data[:2] + comment + data[2:], "jpeg").rule == "raster"
    exif = b"Exif\x00\x00II*\x00\x08\x00\x00\x00" + b"\x02\x00" + b"\x00" * 28
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + len(exif)) + exif
    assert refused(data[:2] + app1 + data[2:], "jpeg").rule == "raster"
    assert refused(data + b"Doe^Jane", "jpeg").rule == "raster"


def test_a_jpeg_with_only_an_orientation_exif_passes():
    data = jpeg()
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, 6, 0) + b"\x00" * 4
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    check_raster_release(data[:2] + app1 + data[2:], kind="jpeg")


_ISOLATED = """
import sys, types
# The gate's own imports, without clinic_ai/__init__ (which loads Celery and, through it, Django):
package = types.ModuleType("clinic_ai")
package.__path__ = [{path!r}]
sys.modules["clinic_ai"] = package
"""


def _modules_after_importing_the_gate(*, isolated: bool) -> set[str]:
    prefix = _ISOLATED.format(path=str(REPO / "clinic_ai")) if isolated else "import sys\n"
    code = prefix + "import clinic_ai.releasegate\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_the_gate_imports_nothing_of_the_de_identifier_nor_django():
    modules = _modules_after_importing_the_gate(isolated=True)
    assert "clinic_ai.releasegate" in modules
    assert "pydicom" in modules  # the subprocess did import the gate
    assert not [m for m in modules if m.startswith(("clinic_ai.deidentification", "clinic_ai.deid"))]
    assert not [m for m in modules if m == "django" or m.startswith("django.")]
    assert "celery" not in modules


def test_importing_the_gate_the_ordinary_way_loads_no_de_identifier_code():
    modules = _modules_after_importing_the_gate(isolated=False)
    assert not [m for m in modules if m.startswith(("clinic_ai.deidentification", "clinic_ai.deid"))]


def test_importing_the_gate_the_ordinary_way_loads_neither_celery_nor_django():
    modules = _modules_after_importing_the_gate(isolated=False)
    assert "celery" not in modules
    assert not [m for m in modules if m == "django" or m.startswith("django.")]
