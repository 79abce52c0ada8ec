"""Metadata stripping for PNG and JPEG uploads (photographs, screenshots).

Both formats are rewritten at the byte level - the compressed image data is
copied, not decoded - so pixels are untouched and nothing is recompressed:

PNG
    The chunk stream is filtered against an allow-list: the critical chunks,
    colour/geometry chunks (tRNS, gAMA, cHRM, sRGB, iCCP, sBIT, bKGD, pHYs,
    hIST, cICP, mDCV, cLLI) and APNG animation chunks. Everything else
    goes: tEXt, zTXt, iTXt, eXIf, tIME, sPLT (its palette name is free text),
    and any unknown ancillary or private
    chunk. An unknown *critical* chunk makes the file unsupported (it cannot be
    dropped safely). CRCs are verified; data after IEND is dropped. The iCCP
    profile *name* (free text) is replaced by "ICC Profile"; the profile is kept.

JPEG
    The marker stream is parsed up to EOI (trailing data such as appended
    MPF preview images is dropped, as is everything between scans that is
    metadata). Kept: APP0 JFIF (its thumbnail removed), APP2 ICC_PROFILE,
    APP14 Adobe (needed for the colour transform) and all coding segments.
    Removed: APP1 (EXIF, XMP), APP13 (IPTC/Photoshop), every other APPn and COM.

EXIF orientation (tag 0x0112) other than 1 needs a rotation, which means
decoding:

* PNG: rotated with Pillow and re-encoded as PNG, which is lossless (exact
  pixel values, transposed) - ``orientation_applied=True``,
  ``recompressed=True``. For layouts Pillow cannot round-trip exactly
  (16-bit colour, 1/2/4-bit greyscale, APNG) the PNG path falls back to the
  JPEG strategy below with a minimal eXIf chunk.
* JPEG: *not* re-encoded. A decode/re-encode cycle is lossy (generation
  loss on diagnostic photographs, compounding on every re-upload), and a
  lossless DCT-domain rotation (jpegtran) is not available in our
  dependencies. Instead the compressed data is kept byte for byte and a
  freshly built, minimal EXIF segment holding only the Orientation tag is
  written (``orientation_tag_kept=True``). Orientation is a display hint
  and identifies nobody; consumers (viewers, model preprocessing via
  ``PIL.ImageOps.exif_transpose``) apply it when decoding.

The result lists what kinds of chunks/segments were removed, by fixed name,
never their content.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from .errors import UnsupportedRasterError
from .files import write_atomic

__all__ = ["RasterStripResult", "strip_raster_metadata", "strip_raster_bytes"]

PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_PNG_KEEP: Final = frozenset(
    {
        b"IHDR",
        b"PLTE",
        b"IDAT",
        b"IEND",
        b"tRNS",
        b"gAMA",
        b"cHRM",
        b"sRGB",
        b"iCCP",
        b"sBIT",
        b"bKGD",
        b"pHYs",
        b"hIST",
        b"cICP",
        b"mDCV",
        b"cLLI",
        b"acTL",
        b"fcTL",
        b"fdAT",
    }
)
_PNG_REMOVED_NAMES: Final = {
    b"tEXt": "tEXt",
    b"zTXt": "zTXt",
    b"iTXt": "iTXt",
    b"eXIf": "eXIf",
    b"tIME": "tIME",
}
_APP_NAMES: Final = (
    (b"Exif\x00", "EXIF"),
    (b"http://ns.adobe.com/xap/1.0/\x00", "XMP"),
    (b"http://ns.adobe.com/xmp/extension/\x00", "XMP-extension"),
    (b"Photoshop 3.0\x00", "IPTC/Photoshop"),
    (b"MPF\x00", "MPF"),
    (b"JFXX\x00", "JFXX-thumbnail"),
    (b"FPXR\x00", "FlashPix"),
    (b"ICC_PROFILE\x00", "ICC_PROFILE"),
    (b"Ducky", "Ducky"),
    (b"Adobe", "Adobe"),
)


@dataclass(frozen=True, slots=True)
class RasterStripResult:
    """What :func:`strip_raster_metadata` did (no metadata values)."""

    format: Literal["png", "jpeg"]
    removed: tuple[str, ...]
    """Kinds of chunks/segments removed, as ``"name"`` or ``"name x N"``."""
    orientation: int
    """EXIF orientation of the source (1 when absent or invalid)."""
    orientation_applied: bool
    """Pixels were rotated/flipped to orientation 1 (PNG, lossless)."""
    orientation_tag_kept: bool
    """Pixels untouched; a minimal EXIF/eXIf with only the Orientation tag was written."""
    recompressed: bool
    """Image data was re-encoded (only for a PNG rotation; always lossless)."""
    icc_profile_kept: bool
    bytes_in: int
    bytes_out: int
    lossy: bool = False
    """Never true: nothing in this module re-encodes lossily."""


def _summarise(names: list[str]) -> tuple[str, ...]:
    counts = Counter(names)
    return tuple(name if n == 1 else f"{name} x {n}" for name, n in sorted(counts.items()))


# --------------------------------------------------------------------- EXIF
def _exif_orientation(tiff: bytes) -> int:
    """Orientation from a TIFF/EXIF block (IFD0 tag 0x0112); 1 if absent/invalid."""
    try:
        if tiff[:2] == b"II":
            endian = "<"
        elif tiff[:2] == b"MM":
            endian = ">"
        else:
            return 1
        (magic, offset) = struct.unpack(endian + "HI", tiff[2:8])
        if magic != 42:
            return 1
        (count,) = struct.unpack(endian + "H", tiff[offset : offset + 2])
        for i in range(count):
            entry = tiff[offset + 2 + 12 * i : offset + 14 + 12 * i]
            tag, typ, n = struct.unpack(endian + "HHI", entry[:8])
            if tag == 0x0112 and typ == 3 and n == 1:
                (value,) = struct.unpack(endian + "H", entry[8:10])
                return value if 1 <= value <= 8 else 1
    except (struct.error, IndexError, ValueError):
        return 1
    return 1


def _minimal_tiff(orientation: int) -> bytes:
    """A big-endian TIFF header with one IFD holding only Orientation."""
    return b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">HHHIHH", 1, 0x0112, 3, 1, orientation, 0) + b"\x00" * 4


# ---------------------------------------------------------------------- PNG
def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body) & 0xFFFFFFFF)


def _png_chunks(data: bytes) -> tuple[list[tuple[bytes, bytes]], bool]:
    if not data.startswith(PNG_SIGNATURE):
        raise UnsupportedRasterError("not a PNG file")
    chunks: list[tuple[bytes, bytes]] = []
    pos = len(PNG_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise UnsupportedRasterError("PNG is truncated (no IEND chunk)")
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        ctype = data[pos + 4 : pos + 8]
        end = pos + 12 + length
        if length > 0x7FFFFFFF or end > len(data) or not ctype.isalpha():
            raise UnsupportedRasterError("PNG is truncated or corrupt")
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != crc:
            raise UnsupportedRasterError("PNG chunk checksum mismatch (corrupt file)")
        chunks.append((ctype, body))
        pos = end
        if ctype == b"IEND":
            break
    if chunks[0][0] != b"IHDR":
        raise UnsupportedRasterError("PNG does not start with IHDR")
    return chunks, pos < len(data)


def _png_filter(data: bytes) -> tuple[bytes, list[str], int, bool]:
    """Allow-list the chunks. Returns (png, removed names, orientation, icc kept)."""
    chunks, trailing = _png_chunks(data)
    removed: list[str] = ["trailing-data"] if trailing else []
    orientation = 1
    icc = False
    out = bytearray(PNG_SIGNATURE)
    for ctype, body in chunks:
        if ctype == b"eXIf":
            orientation = _exif_orientation(body) if orientation == 1 else orientation
        if ctype in _PNG_KEEP:
            if ctype == b"iCCP":
                nul = body.find(b"\x00")
                if nul < 0:
                    removed.append("iCCP-corrupt")
                    continue
                body = b"ICC Profile" + body[nul:]
                icc = True
            out += _png_chunk(ctype, body)
        elif ctype[0:1].isupper():
            raise UnsupportedRasterError("PNG has an unknown critical chunk")
        else:
            removed.append(_PNG_REMOVED_NAMES.get(ctype, "ancillary-chunk"))
    return bytes(out), removed, orientation, icc


def _png_losslessly_rotatable(chunks: list[tuple[bytes, bytes]]) -> bool:
    ihdr = chunks[0][1]
    depth, colour = ihdr[8], ihdr[9]
    if any(c == b"acTL" for c, _ in chunks):
        return False
    return (colour, depth) in {(0, 8), (0, 16), (2, 8), (4, 8), (6, 8)} or colour == 3


def _png_rotate(stripped: bytes) -> bytes:
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(stripped)) as im:
        im.load()
        rotated = ImageOps.exif_transpose(im)
        params: dict[str, object] = {"format": "PNG"}
        if "icc_profile" in im.info:
            params["icc_profile"] = im.info["icc_profile"]
        if "transparency" in im.info:
            params["transparency"] = im.info["transparency"]
        buffer = io.BytesIO()
        rotated.save(buffer, **params)
    return buffer.getvalue()


def _strip_png(data: bytes) -> tuple[bytes, RasterStripResult]:
    stripped, removed, orientation, icc = _png_filter(data)
    applied = kept_tag = recompressed = False
    if orientation != 1:
        chunks, _ = _png_chunks(stripped)
        if _png_losslessly_rotatable(chunks):
            # Re-insert the orientation so Pillow applies it, rotate, then filter again.
            with_exif = _insert_png_exif(stripped, orientation)
            stripped, _, _, icc = _png_filter(_png_rotate(with_exif))
            applied = recompressed = True
        else:
            stripped = _insert_png_exif(stripped, orientation)
            kept_tag = True
    return stripped, RasterStripResult(
        format="png",
        removed=_summarise(removed),
        orientation=orientation,
        orientation_applied=applied,
        orientation_tag_kept=kept_tag,
        recompressed=recompressed,
        icc_profile_kept=icc,
        bytes_in=len(data),
        bytes_out=len(stripped),
    )


def _insert_png_exif(png: bytes, orientation: int) -> bytes:
    chunks, _ = _png_chunks(png)
    out = bytearray(PNG_SIGNATURE)
    inserted = False
    for ctype, body in chunks:
        if ctype == b"IDAT" and not inserted:
            out += _png_chunk(b"eXIf", _minimal_tiff(orientation))
            inserted = True
        out += _png_chunk(ctype, body)
    return bytes(out)


# --------------------------------------------------------------------- JPEG
def _app_name(marker: int, body: bytes) -> str:
    for prefix, name in _APP_NAMES:
        if body.startswith(prefix):
            return f"APP{marker - 0xE0}:{name}"
    return f"APP{marker - 0xE0}"


def _jpeg_filter(data: bytes) -> tuple[bytes, list[str], int, bool, int]:
    """Filter the marker stream. Returns (jpeg, removed, orientation, icc kept, JFIF end offset)."""
    if not data.startswith(b"\xff\xd8\xff"):
        raise UnsupportedRasterError("not a JPEG file")
    out = bytearray(b"\xff\xd8")
    removed: list[str] = []
    orientation = 1
    seen_exif = icc = False
    insert_at = 2
    pos, n = 2, len(data)
    while True:
        if pos >= n or data[pos] != 0xFF:
            raise UnsupportedRasterError("JPEG is truncated or corrupt (marker expected)")
        while pos < n and data[pos] == 0xFF:
            pos += 1
        if pos >= n:
            raise UnsupportedRasterError("JPEG is truncated")
        marker = data[pos]
        pos += 1
        if marker == 0xD9:  # EOI
            out += b"\xff\xd9"
            if pos < n:
                removed.append("trailing-data")
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            out += bytes((0xFF, marker))
            continue
        if pos + 2 > n:
            raise UnsupportedRasterError("JPEG is truncated")
        (seglen,) = struct.unpack(">H", data[pos : pos + 2])
        if seglen < 2 or pos + seglen > n:
            raise UnsupportedRasterError("JPEG is truncated or corrupt (segment length)")
        body = data[pos + 2 : pos + seglen]
        segment = bytes((0xFF, marker)) + data[pos : pos + seglen]
        pos += seglen
        if marker == 0xDA:  # SOS: header, then entropy-coded data up to the next real marker
            out += segment
            scan = pos
            while True:
                j = data.find(b"\xff", scan)
                if j < 0 or j + 1 >= n:
                    raise UnsupportedRasterError("JPEG is truncated (scan data)")
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
                    scan = j + 1 if nxt == 0xFF else j + 2
                    continue
                out += data[pos:j]
                pos = j
                break
        elif 0xE0 <= marker <= 0xEF:
            if marker == 0xE0 and body.startswith(b"JFIF\x00") and len(body) >= 14:
                if body[12] or body[13]:
                    removed.append("APP0:JFIF-thumbnail")
                out += b"\xff\xe0" + struct.pack(">H", 16) + body[:12] + b"\x00\x00"
                insert_at = len(out)
            elif marker == 0xE2 and body.startswith(b"ICC_PROFILE\x00"):
                out += segment
                icc = True
            elif marker == 0xEE and body.startswith(b"Adobe"):
                out += segment
            else:
                if marker == 0xE1 and body.startswith(b"Exif\x00") and not seen_exif:
                    seen_exif = True
                    orientation = _exif_orientation(body[6:])
                removed.append(_app_name(marker, body))
        elif marker == 0xFE:
            removed.append("COM")
        else:
            out += segment
    return bytes(out), removed, orientation, icc, insert_at


def _strip_jpeg(data: bytes) -> tuple[bytes, RasterStripResult]:
    stripped, removed, orientation, icc, insert_at = _jpeg_filter(data)
    kept_tag = False
    if orientation != 1:
        body = b"Exif\x00\x00" + _minimal_tiff(orientation)
        app1 = b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body
        stripped = stripped[:insert_at] + app1 + stripped[insert_at:]
        kept_tag = True
    return stripped, RasterStripResult(
        format="jpeg",
        removed=_summarise(removed),
        orientation=orientation,
        orientation_applied=False,
        orientation_tag_kept=kept_tag,
        recompressed=False,
        icc_profile_kept=icc,
        bytes_in=len(data),
        bytes_out=len(stripped),
    )


# ---------------------------------------------------------------------- API
def _check_decodes(data: bytes) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
    except Exception as exc:
        raise UnsupportedRasterError("image does not decode after stripping", detail=type(exc).__name__) from None


def strip_raster_bytes(data: bytes) -> tuple[bytes, RasterStripResult]:
    """In-memory variant of :func:`strip_raster_metadata`."""
    data = bytes(data)
    if data.startswith(PNG_SIGNATURE):
        out, result = _strip_png(data)
    elif data.startswith(b"\xff\xd8\xff"):
        out, result = _strip_jpeg(data)
    else:
        raise UnsupportedRasterError("only PNG and JPEG images are accepted")
    _check_decodes(out)
    return out, result


def strip_raster_metadata(src_path: str | os.PathLike, dst_path: str | os.PathLike) -> RasterStripResult:
    """Strip all metadata from a PNG or JPEG file into ``dst_path`` (atomic write).

    See the module docstring for what is kept, what is removed and how EXIF
    orientation is handled. ``src_path`` and ``dst_path`` may be the same.
    """
    data = Path(src_path).read_bytes()
    out, result = strip_raster_bytes(data)
    write_atomic(out, dst_path)
    return result
