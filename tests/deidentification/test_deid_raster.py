"""PNG/JPEG metadata stripping at the byte level."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps, PngImagePlugin

from clinic_ai.deid import UnsupportedRasterError, strip_raster_bytes, strip_raster_metadata

PLANTED = ("Jane", "Doe", "MRN55501234", "Wallaby", "Kildare", "St Mungos", "Gregory")


def _assert_clean(data: bytes) -> None:
    for needle in PLANTED:
        assert needle.encode() not in data, needle
        assert needle.upper().encode() not in data, needle
        assert needle.encode("utf-16-le") not in data, needle


def _pixels(data: bytes, transpose: bool = False) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        if transpose:
            im = ImageOps.exif_transpose(im)
        return np.asarray(im)


def _image(mode: str = "RGB", size: tuple[int, int] = (48, 32)) -> Image.Image:
    rng = np.random.default_rng(7)
    if mode == "RGB":
        arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    elif mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (size[1], size[0]), dtype=np.uint16))
    else:
        arr = rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8)
    return Image.fromarray(arr, mode if mode != "I;16" else None)


def _exif(orientation: int = 1) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x013B] = "Jane Doe"  # Artist
    exif[0x010E] = "MRN55501234 Wallaby"  # ImageDescription
    exif[0x8298] = "St Mungos"  # Copyright
    return exif.tobytes()


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _insert_before_iend(png: bytes, *chunks: bytes) -> bytes:
    iend = png.rindex(b"IEND") - 4
    return png[:iend] + b"".join(chunks) + png[iend:]


def _png(orientation: int = 1, mode: str = "RGB") -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "Jane Doe")
    info.add_text("Comment", "MRN55501234 Kildare", zip=True)  # zTXt
    info.add_itxt("Description", "Wallaby Way St Mungos", lang="en", tkey="Beschreibung")
    buffer = io.BytesIO()
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _image(mode).save(buffer, "PNG", pnginfo=info, exif=_exif(orientation), icc_profile=icc)
    png = buffer.getvalue()
    # a tIME chunk, a private chunk after IDAT, and trailing bytes after IEND
    png = _insert_before_iend(
        png,
        _png_chunk(b"tIME", struct.pack(">HBBBBB", 2024, 3, 11, 9, 30, 15)),
        _png_chunk(b"prVt", b"Gregory House private note"),
        _png_chunk(b"tEXt", b"Late\x00Jane Doe after the image data"),
    )
    # rename the ICC profile to something identifying
    start = png.index(b"iCCP") - 4
    (length,) = struct.unpack(">I", png[start : start + 4])
    body = png[start + 8 : start + 8 + length]
    new_body = b"Jane Doe monitor" + body[body.index(b"\x00") :]
    png = png[:start] + _png_chunk(b"iCCP", new_body) + png[start + 12 + length :]
    return png + b"Kildare trailing garbage"


def _jpeg(orientation: int = 1, thumbnail: bool = True) -> bytes:
    buffer = io.BytesIO()
    _image().save(buffer, "JPEG", quality=90, exif=_exif(orientation), comment=b"Jane Doe was here")
    jpeg = buffer.getvalue()
    assert jpeg[2:4] == b"\xff\xe0"
    app0_end = 4 + struct.unpack(">H", jpeg[4:6])[0]
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta><dc:creator>Jane Doe</dc:creator></x:xmpmeta>"
    iptc = b"Photoshop 3.0\x008BIM\x04\x04\x00\x00\x00\x00\x00\x0e\x1c\x02\x50\x00\x0aKildare GP"
    extra = b"".join(
        b"\xff" + bytes([marker]) + struct.pack(">H", len(body) + 2) + body
        for marker, body in ((0xE1, xmp), (0xED, iptc), (0xFE, b"MRN55501234 comment two"))
    )
    if thumbnail:  # JFIF APP0 with a 1x1 RGB thumbnail
        app0 = jpeg[4 + 2 : app0_end]
        body = app0[:12] + b"\x01\x01" + b"\x10\x20\x30"
        jpeg = jpeg[:2] + b"\xff\xe0" + struct.pack(">H", len(body) + 2) + body + jpeg[app0_end:]
        app0_end = 4 + len(body) + 2
    return jpeg[:app0_end] + extra + jpeg[app0_end:] + b"Wallaby trailing data after EOI"


# ------------------------------------------------------------------ PNG
def test_png_text_exif_time_and_private_chunks_are_removed_pixels_unchanged(tmp_path: Path) -> None:
    data = _png()
    for needle in ("Jane", "MRN55501234", "Wallaby", "Gregory"):
        assert needle.encode() in data or needle.encode() in zlib.decompress(data[data.index(b"zTXt") + 13 :])
    src, dst = tmp_path / "in.png", tmp_path / "out.png"
    src.write_bytes(data)
    result = strip_raster_metadata(src, dst)
    out = dst.read_bytes()
    _assert_clean(out)
    for ctype in (b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"prVt"):
        assert ctype not in out
    assert b"iCCP" in out and result.icc_profile_kept
    assert result.format == "png" and not result.recompressed and not result.lossy
    assert result.orientation == 1 and not result.orientation_applied
    assert {"tEXt x 2", "zTXt", "iTXt", "eXIf", "tIME", "ancillary-chunk", "trailing-data"} <= set(result.removed)
    assert np.array_equal(_pixels(out), _pixels(data))
    # IDAT copied byte for byte
    assert data[data.index(b"IDAT") - 4 :].startswith(out[out.index(b"IDAT") - 4 : out.index(b"IEND") - 4][:64])


@pytest.mark.parametrize("mode", ["RGB", "L", "I;16"])
def test_png_orientation_is_applied_losslessly(mode: str) -> None:
    data = _png(orientation=6, mode=mode)
    out, result = strip_raster_bytes(data)
    _assert_clean(out)
    assert result.orientation == 6 and result.orientation_applied and result.recompressed and not result.lossy
    assert b"eXIf" not in out
    expected = _pixels(data, transpose=True)
    got = _pixels(out)
    assert got.shape == expected.shape and got.shape[:2] == (48, 32)
    assert np.array_equal(got, expected)


# ------------------------------------------------------------------ JPEG
def test_jpeg_exif_xmp_iptc_com_thumbnail_and_trailer_removed_pixels_unchanged(tmp_path: Path) -> None:
    data = _jpeg()
    assert b"Jane" in data and b"Kildare" in data and b"MRN55501234" in data
    src, dst = tmp_path / "in.jpg", tmp_path / "out.jpg"
    src.write_bytes(data)
    result = strip_raster_metadata(src, dst)
    out = dst.read_bytes()
    _assert_clean(out)
    assert b"Exif" not in out and b"http://ns.adobe.com" not in out and b"Photoshop" not in out
    assert out.startswith(b"\xff\xd8\xff\xe0") and out.endswith(b"\xff\xd9")
    assert result.format == "jpeg" and not result.recompressed and not result.orientation_tag_kept
    assert {"APP1:EXIF", "APP1:XMP", "APP13:IPTC/Photoshop", "COM x 2", "APP0:JFIF-thumbnail", "trailing-data"} <= set(
        result.removed
    )
    assert np.array_equal(_pixels(out), _pixels(data))
    # the entropy-coded data is copied byte for byte
    sos_in, sos_out = data.index(b"\xff\xda"), out.index(b"\xff\xda")
    assert out[sos_out:] == data[sos_in : data.rindex(b"\xff\xd9") + 2]


def test_jpeg_orientation_keeps_pixels_and_a_minimal_orientation_tag() -> None:
    data = _jpeg(orientation=6, thumbnail=False)
    out, result = strip_raster_bytes(data)
    _assert_clean(out)
    assert result.orientation == 6 and result.orientation_tag_kept and not result.recompressed
    with Image.open(io.BytesIO(out)) as im:
        assert dict(im.getexif()) == {0x0112: 6}
    assert np.array_equal(_pixels(out), _pixels(data))
    assert np.array_equal(_pixels(out, transpose=True), _pixels(data, transpose=True))


def test_progressive_jpeg_is_handled() -> None:
    buffer = io.BytesIO()
    _image().save(buffer, "JPEG", progressive=True, quality=85, comment=b"Jane Doe progressive")
    data = buffer.getvalue()
    assert data.count(b"\xff\xda") > 1
    out, result = strip_raster_bytes(data)
    _assert_clean(out)
    assert "COM" in result.removed
    assert np.array_equal(_pixels(out), _pixels(data))


# ------------------------------------------------------------------ rejection
@pytest.mark.parametrize(
    "payload",
    [b"GIF89a" + b"\x00" * 64, b"not an image", b"\xff\xd8\xff\xe0\x00\x10JFIF", b"\x89PNG\r\n\x1a\n\x00\x00"],
    ids=["gif", "text", "truncated-jpeg", "truncated-png"],
)
def test_unsupported_or_truncated_rasters_are_rejected(payload: bytes) -> None:
    with pytest.raises(UnsupportedRasterError):
        strip_raster_bytes(payload)


def test_corrupt_png_crc_is_rejected() -> None:
    data = bytearray(_png())
    idat = data.index(b"IDAT")
    data[idat + 6] ^= 0xFF
    with pytest.raises(UnsupportedRasterError, match="checksum"):
        strip_raster_bytes(bytes(data))


def test_png_suggested_palette_names_are_removed() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    png = buffer.getvalue()
    at = png.index(b"IDAT") - 4
    splt = _png_chunk(b"sPLT", b"Jane Doe MRN 4711\x00" + b"\x08" + b"\x00\x00\x00\xff\x00\x01")
    out, result = strip_raster_bytes(png[:at] + splt + png[at:])
    assert b"Jane Doe" not in out and b"sPLT" not in out and result.removed
