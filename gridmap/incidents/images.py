"""Photos as gridmap stores them: decoded from JPEG, PNG or HEIC, turned upright, re-encoded bare.

A phone's photo carries where it was taken (EXIF GPS), the phone (Make, Model, serial numbers in the
maker notes), often the owner's name or software in XMP, and an ICC profile naming the device. A
resident's photo of a broken street light taken from their window must not publish where they live,
so nothing of the file but its pixels is kept:

1. The type is decided by the bytes, never by the file name or the declared content type; only
   JPEG, PNG and HEIC (HEIF) are opened (``Image.open(formats=…)``), so a text file named ``.jpg``
   or a PDF is refused before any decoder runs.
2. Size limits before decoding: ``MAX_PHOTO_BYTES`` per file and ``MAX_PHOTO_PIXELS`` read from the
   header, so a small file that would decode to gigabytes (a decompression bomb) is refused unread.
3. The EXIF orientation is applied (``ImageOps.exif_transpose``) while it is still known: a photo
   taken with the phone held upright is stored upright.
4. Colours are converted to sRGB when the file names another colour space, transparency is laid on
   white, and a new image is made from the pixels alone (``Image.frombytes``): no ``info`` of the
   original (EXIF, XMP, ICC, comments, maker notes) can reach the encoder.
5. Two baseline JPEGs are written with no metadata at all: the photo, its longest side at most
   ``FULL_SIDE``, and a thumbnail of at most ``THUMB_SIDE``.
"""

from __future__ import annotations

import io
import logging
import warnings
from dataclasses import dataclass
from typing import Final

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from gridmap.errors import InvalidInput, PayloadTooLarge, size_text

log = logging.getLogger(__name__)

try:  # HEIC/HEIF from phones (iPhones save HEIC by default): pillow-heif registers the decoder with Pillow
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIC_SUPPORTED: Final = True
except ImportError:  # pragma: no cover - pillow-heif is a dependency; without it HEIC is refused, not a 500
    HEIC_SUPPORTED = False  # type: ignore[misc]

MAX_PHOTO_BYTES: Final = 8 << 20
"""Bytes of one uploaded file: a 48 MP phone photo as HEIC or a high-quality JPEG is 3–6 MB."""
MAX_PHOTO_PIXELS: Final = 50_000_000
"""Pixels of one photo, read from its header before decoding: phones take up to 48 MP (200 MP modes
excepted); beyond this a file is refused as a possible decompression bomb."""
FULL_SIDE: Final = 2048
"""Longest side of the stored photo: enough to read a sign or a meter, about 0.3–0.8 MB as JPEG."""
THUMB_SIDE: Final = 320
"""Longest side of the thumbnail shown in lists, on the phone page and to Open311 clients."""
FULL_QUALITY: Final = 85
THUMB_QUALITY: Final = 80
FORMATS: Final = ("JPEG", "PNG", "HEIF") if HEIC_SUPPORTED else ("JPEG", "PNG")
"""The decoders Pillow may use for an upload; any other file type is refused unread."""
OUTPUT_TYPE: Final = "image/jpeg"
MAX_NAME_SHOWN: Final = 60
"""Characters of an uploaded file's name repeated in an error message."""

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class CleanPhoto:
    """A photo ready to store: two metadata-free JPEGs and their sizes."""

    image: bytes
    width: int
    height: int
    thumbnail: bytes
    thumb_width: int
    thumb_height: int
    source_format: str
    """What the upload was (JPEG, PNG, HEIF): for the log, never stored with the photo."""


def shown_name(filename: str | None, position: int) -> str:
    """How a message names an upload: its file name, shortened and without control characters, or its place."""
    name = "".join(c for c in (filename or "") if c.isprintable()).strip()
    if not name:
        return f"第 {position} 张照片"
    if len(name) > MAX_NAME_SHOWN:
        name = name[:MAX_NAME_SHOWN] + "…"
    return f"照片“{name}”"


def clean_photo(data: bytes, *, name: str = "照片") -> CleanPhoto:
    """The upload ``data`` decoded, turned upright and re-encoded without metadata.

    Raises ``PayloadTooLarge`` (413) past ``MAX_PHOTO_BYTES`` and ``InvalidInput`` (422) for an empty
    file, a file that is not JPEG, PNG or HEIC, a photo of more than ``MAX_PHOTO_PIXELS`` or one that
    cannot be decoded; ``name`` says which upload in the message (see ``shown_name``).
    """
    if len(data) > MAX_PHOTO_BYTES:
        raise PayloadTooLarge(f"{name}过大（{size_text(len(data))}）：每张照片最多 {size_text(MAX_PHOTO_BYTES)}")
    if not data:
        raise InvalidInput(f"{name}是空文件")
    kinds = "JPEG、PNG 或 HEIC" if HEIC_SUPPORTED else "JPEG 或 PNG"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            source = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InvalidInput(f"{name}像素过多：每张照片最多 {MAX_PHOTO_PIXELS // 1_000_000} 百万像素") from None
    except UnidentifiedImageError:
        raise InvalidInput(f"{name}不是可识别的图片：只接受 {kinds} 格式的照片") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInput(f"{name}无法读取（文件可能已损坏）：只接受 {kinds} 格式的照片") from exc
    with source:
        width, height = source.size
        if width < 1 or height < 1:
            raise InvalidInput(f"{name}没有像素")
        if width * height > MAX_PHOTO_PIXELS:
            raise InvalidInput(f"{name}像素过多（{width}×{height}）：每张照片最多 {MAX_PHOTO_PIXELS // 1_000_000} 百万像素")
        try:
            pixels = _upright_rgb(source)
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise InvalidInput(f"{name}无法解码（文件可能已损坏或不完整）") from exc
        kind = str(source.format)
    full = _bounded(pixels, FULL_SIDE)
    thumb = _bounded(full, THUMB_SIDE)
    return CleanPhoto(image=_jpeg(full, FULL_QUALITY), width=full.width, height=full.height,
                      thumbnail=_jpeg(thumb, THUMB_QUALITY), thumb_width=thumb.width, thumb_height=thumb.height,
                      source_format=kind)


def _upright_rgb(source: Image.Image) -> Image.Image:
    """The first frame decoded, EXIF orientation applied, in sRGB, as a new image holding pixels only."""
    source.load()
    upright = ImageOps.exif_transpose(source)  # reads the Orientation tag while the EXIF is still here
    rgb = _to_srgb(upright, upright.info.get("icc_profile"))
    return Image.frombytes("RGB", rgb.size, rgb.tobytes())  # a new image: no info, EXIF, XMP or ICC of the file


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB pixels: transparency laid on white, greyscale, palettes and CMYK converted, a camera's colour
    space (Display P3 on iPhones) converted to sRGB; a profile that cannot be read is ignored."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        image = canvas
    elif image.mode.startswith(("I", "F")):  # 16-bit or 32-bit greyscale (PNG) to 8 bits
        image = image.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if icc and image.mode in ("RGB", "CMYK"):
        try:
            return ImageCms.profileToProfile(image, ImageCms.ImageCmsProfile(io.BytesIO(icc)), _SRGB,
                                             outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            log.info("a photo's ICC profile could not be read; its colours are kept as they are")
    return image.convert("RGB")


def _bounded(image: Image.Image, side: int) -> Image.Image:
    if max(image.size) <= side:
        return image
    copy = image.copy()
    copy.thumbnail((side, side), Image.Resampling.LANCZOS)
    return copy


def _jpeg(image: Image.Image, quality: int) -> bytes:
    """A baseline JPEG with nothing but JFIF and the pixels (no EXIF, XMP, ICC or comment is passed)."""
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, optimize=True, progressive=False)
    return out.getvalue()
