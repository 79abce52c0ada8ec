"""The release gate for PNG and JPEG outputs: an independent chunk/segment allow-list.

PNG: signature, IHDR first, IEND last and nothing after it, every CRC right, only image and
colour chunks (IHDR PLTE IDAT IEND tRNS gAMA cHRM sRGB iCCP sBIT bKGD pHYs hIST cICP mDCV cLLI,
APNG acTL fcTL fdAT); eXIf only as a minimal TIFF holding nothing but Orientation; an iCCP
profile only under the neutral name "ICC Profile". No text chunks (tEXt zTXt iTXt), no tIME,
no sPLT, nothing unknown.

JPEG: SOI, then only coding segments (DQT, DHT, DAC, DRI, SOFn, SOS and its entropy-coded data,
RSTn, DNL, EXP), APP0 JFIF without a thumbnail, APP2 ICC_PROFILE, APP14 Adobe and APP1 Exif only
as the minimal Orientation-only TIFF; no COM, no other APPn; EOI ends the file.
"""

from __future__ import annotations

import struct
import zlib

from .refusal import GateRefused

__all__ = ["check_raster_release"]

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_ALLOWED = frozenset(
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
        b"eXIf",
    }
)
_JPEG_CODING = frozenset(
    {0xC4, 0xCC, 0xDB, 0xDD, 0xDC, 0xDF} | {m for m in range(0xC0, 0xD0) if m not in (0xC4, 0xC8, 0xCC)}
)


def _refuse(reason: str) -> GateRefused:
    return GateRefused("raster", reason)


def _orientation_only_tiff(tiff: bytes) -> bool:
    if len(tiff) < 8 or tiff[:4] not in (b"MM\x00\x2a", b"II\x2a\x00"):
        return False
    order = ">" if tiff[:2] == b"MM" else "<"
    (ifd,) = struct.unpack_from(order + "L", tiff, 4)
    if ifd + 18 != len(tiff):
        return False
    count, tag, kind, n = struct.unpack_from(order + "HHHL", tiff, ifd)
    (next_ifd,) = struct.unpack_from(order + "L", tiff, ifd + 14)
    return count == 1 and tag == 0x0112 and kind == 3 and n == 1 and next_ifd == 0


def _png(data: bytes) -> None:
    if not data.startswith(_PNG_SIGNATURE):
        raise _refuse("The image is not a PNG file.")
    pos, first = 8, True
    while True:
        if pos + 12 > len(data):
            raise _refuse("The PNG file is cut off.")
        (length,) = struct.unpack_from(">L", data, pos)
        ctype = data[pos + 4 : pos + 8]
        body_end = pos + 8 + length
        if body_end + 4 > len(data):
            raise _refuse("A PNG chunk runs past the file.")
        body = data[pos + 8 : body_end]
        if zlib.crc32(ctype + body) & 0xFFFFFFFF != struct.unpack_from(">L", data, body_end)[0]:
            raise _refuse("A PNG chunk has a wrong checksum.")
        if first and ctype != b"IHDR":
            raise _refuse("The PNG file does not begin with its header chunk.")
        first = False
        if ctype not in _PNG_ALLOWED:
            raise _refuse("The PNG file holds a chunk that is not on the allow-list (text or metadata).")
        if ctype == b"eXIf" and not _orientation_only_tiff(body):
            raise _refuse("The PNG file holds EXIF data beyond the orientation.")
        if ctype == b"iCCP" and not body.startswith(b"ICC Profile\x00"):
            raise _refuse("The PNG colour profile carries a name other than the neutral one.")
        pos = body_end + 4
        if ctype == b"IEND":
            if pos != len(data):
                raise _refuse("Bytes follow the end of the PNG image.")
            return


def _jpeg(data: bytes) -> None:
    if not data.startswith(b"\xff\xd8"):
        raise _refuse("The image is not a JPEG file.")
    pos, n = 2, len(data)
    while True:
        if pos + 2 > n or data[pos] != 0xFF:
            raise _refuse("The JPEG file is cut off or malformed.")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        pos += 2
        if marker == 0xD9:
            if pos != n:
                raise _refuse("Bytes follow the end of the JPEG image.")
            return
        if 0xD0 <= marker <= 0xD7:
            continue
        if pos + 2 > n:
            raise _refuse("The JPEG file is cut off.")
        (seglen,) = struct.unpack_from(">H", data, pos)
        if seglen < 2 or pos + seglen > n:
            raise _refuse("A JPEG segment runs past the file.")
        body = data[pos + 2 : pos + seglen]
        pos += seglen
        if marker == 0xE0:
            if not (body.startswith(b"JFIF\x00") and len(body) == 14 and body[12] == 0 and body[13] == 0):
                raise _refuse("The JPEG APP0 segment is not a plain JFIF header without a thumbnail.")
        elif marker == 0xE1:
            if not (body.startswith(b"Exif\x00\x00") and _orientation_only_tiff(body[6:])):
                raise _refuse("The JPEG file holds EXIF or XMP data beyond the orientation.")
        elif marker == 0xE2:
            if not body.startswith(b"ICC_PROFILE\x00"):
                raise _refuse("The JPEG file holds an APP2 segment that is not a colour profile.")
        elif marker == 0xEE:
            if not body.startswith(b"Adobe"):
                raise _refuse("The JPEG file holds an APP14 segment that is not Adobe's colour transform.")
        elif marker not in _JPEG_CODING and marker != 0xDA:
            raise _refuse("The JPEG file holds a comment or metadata segment that is not on the allow-list.")
        if marker == 0xDA:  # entropy-coded data up to the next marker that is not a stuffed byte or RSTn
            while True:
                j = data.find(b"\xff", pos)
                if j < 0 or j + 1 >= n:
                    raise _refuse("The JPEG scan data is cut off.")
                nxt = data[j + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:
                    pos = j + 2
                    continue
                if nxt == 0xFF:
                    pos = j + 1
                    continue
                pos = j
                break


def check_raster_release(output: bytes, *, kind: str) -> None:
    """Return ``None`` when the PNG/JPEG ``output`` may be released, else raise GateRefused."""
    try:
        if kind == "png":
            _png(bytes(output))
        elif kind in ("jpeg", "jpg"):
            _jpeg(bytes(output))
        else:
            raise _refuse("Only PNG and JPEG images are released.")
    except GateRefused:
        raise
    except Exception:
        raise GateRefused("unreadable", "The release check could not read the file.") from None
