"""Image inputs (beside the frames stage): still images and image URLs -> images ready to send.

Takes local image files, http(s) URLs and a detail level; gives ImageInput values: either a URL
passed to the API as is, or JPEG/PNG bytes resized to what the detail level can use, for a
`data:` URL. Also decides how videos and images given together are grouped into requests.

Formats: PNG, JPEG, WebP and still GIF as OpenAI's vision guide lists them, plus whatever else
OpenCV decodes here (BMP, TIFF, AVIF, JPEG 2000), converted. Every local image is decoded and
re-encoded: EXIF orientation is applied, metadata (GPS and the like) is dropped, transparency is
flattened onto white, and the result is JPEG or PNG, which every server takes (Ollama refuses GIF,
LM Studio WebP). PNG is kept when it is smaller than the JPEG (screenshots, diagrams). Animated
GIF/WebP/PNG and HEIC are refused with a line saying what to do instead.
"""

from __future__ import annotations

import base64
import math
import re
import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..errors import InputError
from ..models import ImageUrlMode

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

MB = 1024 * 1024
DOWNLOAD_MAX_BYTES = 20 * MB  # OpenAI's own per-image limit for URLs
DOWNLOAD_TIMEOUT_S = 30.0
FILE_MAX_BYTES = 200 * MB
# Decoding needs width x height x 3-4 bytes at once (PNG, WebP, TIFF cannot decode at a reduced
# size; JPEG can). 10000x10000 is ~300-400 MB; past this, refuse rather than exhaust memory.
MAX_DECODE_PIXELS = 250_000_000
# detail=original is still bounded by the API: an image over 30,000 32-px patches is rejected.
MAX_ORIGINAL_PATCHES = 30_000
PATCH_PX = 32

ImageFormat = Literal["png", "jpeg", "gif", "webp", "bmp", "tiff", "avif", "jp2", "heic"]


class ImageOptions(BaseModel):
    """How still images are prepared (session/options.py builds it once per run)."""

    model_config = ConfigDict(frozen=True)

    detail: str  # what the image is sized for, whether or not the server is sent `detail`
    jpeg_quality: int
    image_urls: ImageUrlMode
    url_images_ok: bool  # False: the server cannot fetch http(s) images itself


class ImageInput(BaseModel):
    """One image ready for a request: a remote URL sent as is, or encoded bytes for a data URL."""

    model_config = ConfigDict(frozen=True)

    source: str  # the path or URL as given
    url: str | None = None  # set when the API fetches the image itself
    data: bytes = Field(default=b"", repr=False, exclude=True)
    mime: str | None = None  # image/jpeg or image/png, with data
    width: int | None = None  # as sent (None for a remote URL)
    height: int | None = None
    original_width: int | None = None
    original_height: int | None = None
    source_format: str | None = None  # what the file was: png, jpeg, gif, ...

    @property
    def is_remote(self) -> bool:
        return self.url is not None

    def as_url(self) -> str:
        """The value of `image_url.url`: the remote URL, or a base64 data URL."""
        if self.url is not None:
            return self.url
        return data_url(self.data, self.mime or "image/jpeg")


def data_url(data: bytes, mime: str = "image/jpeg") -> str:
    """`data` as a base64 `data:` URL, the form every server takes."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- recognising formats --------------------------------------------------------------------

_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}


def sniff_format(data: bytes) -> ImageFormat | None:
    """The image format from the first bytes (the file name is not trusted), or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data[:2] == b"BM" and len(data) >= 26:
        return "bmp"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "tiff"
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        if brand in (b"avif", b"avis"):
            return "avif"
        if brand in _HEIF_BRANDS:
            return "heic"
    if data[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or data[:4] == b"\xff\x4f\xff\x51":
        return "jp2"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) read from a JPEG, PNG, GIF or WebP header, or None."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
        return int(w), int(h)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
        return int(w), int(h)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg_size(data)
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        w = int.from_bytes(data[24:27], "little") + 1
        h = int.from_bytes(data[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return int(w) & 0x3FFF, int(h) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15 except DHT (C4), JPG (C8) and DAC (CC) carry the frame size.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if i + 9 > len(data):
                return None
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(w), int(h)
        i += 2 + length
    return None


def frame_count(data: bytes, fmt: str | None) -> int:
    """How many frames an image holds: >1 for an animated GIF, WebP or PNG (APNG), else 1.

    Reads the container structure only (no pixel decoding); for GIF it stops at the second frame.
    """
    if fmt == "gif":
        return _gif_frames(data)
    if fmt == "webp":
        # VP8X header: flags byte at offset 20, bit 1 = animation.
        return 2 if data[12:16] == b"VP8X" and len(data) > 20 and data[20] & 0x02 else 1
    if fmt == "png":
        return _apng_frames(data)
    return 1


def _gif_frames(data: bytes) -> int:
    try:
        pos = 13
        flags = data[10]
        if flags & 0x80:  # global colour table
            pos += 3 * (2 ** ((flags & 0x07) + 1))
        frames = 0
        while pos < len(data):
            block = data[pos]
            if block == 0x3B:  # trailer
                break
            if block == 0x21:  # extension: label, then sub-blocks
                pos = _skip_sub_blocks(data, pos + 2)
            elif block == 0x2C:  # image descriptor
                frames += 1
                if frames > 1:
                    return frames
                packed = data[pos + 9]
                pos += 10
                if packed & 0x80:  # local colour table
                    pos += 3 * (2 ** ((packed & 0x07) + 1))
                pos = _skip_sub_blocks(data, pos + 1)  # after the LZW minimum code size
            else:
                break  # garbage after the image: stop counting
        return max(frames, 1)
    except IndexError:
        return 1


def _skip_sub_blocks(data: bytes, pos: int) -> int:
    while True:
        size = data[pos]
        pos += 1
        if size == 0:
            return pos
        pos += size


def _apng_frames(data: bytes) -> int:
    pos = 8
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        if kind == b"acTL" and pos + 12 <= len(data):
            (frames,) = struct.unpack(">I", data[pos + 8 : pos + 12])
            return int(frames)
        if kind in (b"IDAT", b"IEND"):
            return 1
        pos += 12 + length
    return 1


def _looks_like_text(data: bytes) -> bool:
    head = data[:512]
    printable = sum(32 <= b < 127 or b in (9, 10, 13) for b in head)
    return printable >= 0.95 * len(head)


# --- sizing -------------------------------------------------------------------------------


def target_size(width: int, height: int, detail: str) -> tuple[int, int]:
    """The size to send at `detail`, never larger than the image.

    low: fit within 512x512 (the model sees no more). high/auto: short side <= 768 and long side
    <= 2000, as the vision guide advises. original: kept, unless over the API's patch limit.
    """
    if width <= 0 or height <= 0:
        raise ValueError("image size must be positive")
    if detail == "low":
        scale = min(1.0, 512 / width, 512 / height)
    elif detail == "original":
        scale = 1.0
        while math.ceil(width * scale / PATCH_PX) * math.ceil(height * scale / PATCH_PX) > (
            MAX_ORIGINAL_PATCHES
        ):
            scale *= 0.98
    else:
        scale = min(1.0, 768 / min(width, height), 2000 / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


# --- local images -----------------------------------------------------------------------------


def load_image(path: str | Path, *, detail: str = "auto", jpeg_quality: int = 85) -> ImageInput:
    """A local still image, decoded, resized for `detail` and encoded as JPEG or PNG.

    Raises InputError for a missing, empty, unreadable, animated, unsupported or corrupt file.
    """
    p = Path(path)
    name = str(path)
    if not p.exists():
        raise InputError(f"{name}: no such file")
    if p.is_dir():
        raise InputError(f"{name}: is a folder, not an image")
    try:
        size = p.stat().st_size
        if size > FILE_MAX_BYTES:
            raise InputError(f"{name}: {size / MB:.0f} MB is too large for an image input")
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return image_from_bytes(data, source=name, detail=detail, jpeg_quality=jpeg_quality)


def image_from_bytes(
    data: bytes, *, source: str, detail: str = "auto", jpeg_quality: int = 85
) -> ImageInput:
    """Like load_image, for bytes already read (a file or a download)."""
    if not data:
        raise InputError(f"{source}: empty file")
    fmt = sniff_format(data)
    if fmt is None:
        what = "it contains text" if _looks_like_text(data) else "unknown format"
        raise InputError(
            f"{source}: not an image ({what})",
            hint="images must be PNG, JPEG, WebP or GIF (BMP, TIFF and AVIF are converted)",
        )
    if fmt == "heic":
        raise InputError(
            f"{source}: HEIC/HEIF images cannot be decoded here",
            hint="convert it to JPEG or PNG first (e.g. `heif-convert` or the phone's export)",
        )
    frames = frame_count(data, fmt)
    if frames > 1:
        kind = {"gif": "GIF", "webp": "WebP", "png": "PNG (APNG)"}[fmt]
        raise InputError(
            f"{source}: animated {kind}: only still images can be described as images",
            hint="convert it to a video (e.g. mp4) to describe its motion, or export one frame",
        )
    image, (w0, h0) = _decode(data, fmt, source=source, detail=detail)
    w, h = target_size(w0, h0, detail)
    if (image.shape[1], image.shape[0]) != (w, h):
        image = _resize(image, (w, h))
    payload, mime = encode_image(image, jpeg_quality=jpeg_quality, try_png=fmt != "jpeg")
    return ImageInput(
        source=source,
        data=payload,
        mime=mime,
        width=w,
        height=h,
        original_width=w0,
        original_height=h0,
        source_format=fmt,
    )


def _reduction(width: int, height: int, detail: str) -> int:
    """The largest JPEG DCT scaling (1, 2, 4, 8) that still decodes at least the target size."""
    tw, th = target_size(width, height, detail)
    for factor in (8, 4, 2):
        if width // factor >= tw and height // factor >= th:
            return factor
    return 1


def _decode(
    data: bytes, fmt: str, *, source: str, detail: str
) -> tuple[npt.NDArray[np.uint8], tuple[int, int]]:
    """(8-bit BGR image, full size as displayed). A JPEG decodes as small as the target allows
    (DCT scaling: 1/8 of the memory for a huge photo); alpha is flattened onto white."""
    import cv2
    import numpy as np

    size = image_size(data)
    if size is not None and size[0] * size[1] > MAX_DECODE_PIXELS:
        raise InputError(
            f"{source}: {size[0]}x{size[1]} ({size[0] * size[1] / 1e6:.0f} megapixels) is too "
            "large to decode safely",
            hint="downscale it first (any image editor), e.g. to 8000 px on the long side",
        )
    if fmt == "jpeg" and b"\xff\xd9" not in data[-4096:]:
        # libjpeg would "decode" a cut-off file, greying out the missing part.
        raise InputError(f"{source}: truncated JPEG (the file ends early)")
    buf = np.frombuffer(data, dtype=np.uint8)
    if fmt == "jpeg":
        factor = _reduction(size[0], size[1], detail) if size else 1
        flags = {
            1: cv2.IMREAD_COLOR,
            2: cv2.IMREAD_REDUCED_COLOR_2,
            4: cv2.IMREAD_REDUCED_COLOR_4,
            8: cv2.IMREAD_REDUCED_COLOR_8,
        }[factor]
        image = cv2.imdecode(buf, flags)
    else:
        image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise InputError(
            f"{source}: cannot decode this {fmt.upper()} image (corrupt or truncated?)"
        )
    shown = (int(image.shape[1]), int(image.shape[0]))
    if size is None or fmt != "jpeg":
        return _to_bgr8(image), shown
    # Reduced decoding: the full size is the header's, turned like the decoded image (EXIF).
    full = size if (size[0] >= size[1]) == (shown[0] >= shown[1]) else (size[1], size[0])
    return _to_bgr8(image), full


def _resize(image: npt.NDArray[np.uint8], size: tuple[int, int]) -> npt.NDArray[np.uint8]:
    import cv2
    import numpy as np

    # INTER_AREA: the right filter for shrinking (no aliasing on text and fine patterns).
    out: Any = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.asarray(out, dtype=np.uint8)


def _to_bgr8(image: Any) -> npt.NDArray[np.uint8]:
    import cv2
    import numpy as np

    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        lo, hi = float(image.min()), float(image.max())  # float TIFF/EXR-like data
        image = ((image - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
    if image.ndim == 2:
        return np.ascontiguousarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if image.shape[2] == 4:
        # Transparent pixels become white (what a viewer shows), not black (what dropping does).
        alpha = image[:, :, 3:4].astype(np.float32) / 255.0
        rgb = image[:, :, :3].astype(np.float32)
        flat = rgb * alpha + 255.0 * (1.0 - alpha)
        return np.ascontiguousarray(np.clip(flat + 0.5, 0, 255).astype(np.uint8))
    return np.ascontiguousarray(image[:, :, :3])


def encode_image(
    image: npt.NDArray[np.uint8], *, jpeg_quality: int = 85, try_png: bool = True
) -> tuple[bytes, str]:
    """(bytes, mime): JPEG, or PNG when that is smaller (flat colours, text, screenshots)."""
    import cv2

    ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
    if not ok:
        raise InputError("cannot encode the image as JPEG")
    best, mime = jpg.tobytes(), "image/jpeg"
    if try_png:
        ok, png = cv2.imencode(".png", image, [cv2.IMWRITE_PNG_COMPRESSION, 6])
        if ok and len(png) < len(best):
            best, mime = png.tobytes(), "image/png"
    return best, mime


# --- URLs ---------------------------------------------------------------------------------

_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.I)


def is_url(text: str) -> bool:
    return bool(_URL.match(text.strip()))


def url_input(url: str) -> ImageInput:
    """An image URL passed to the API as is (the server fetches it)."""
    u = url.strip()
    if not is_url(u):
        raise InputError(f"{url}: not an http(s) URL")
    return ImageInput(source=url, url=u)


def fetch_url(
    url: str, *, max_bytes: int = DOWNLOAD_MAX_BYTES, timeout: float = DOWNLOAD_TIMEOUT_S
) -> tuple[bytes, str]:
    """GET an image URL with a size cap and an overall deadline: (bytes, content type).

    Raises InputError for a bad URL, a failed or slow download, an error status, a body that
    is not an image (by content type), or one larger than `max_bytes`.
    """
    import httpx2

    if not is_url(url):
        raise InputError(f"{url}: not an http(s) URL")
    deadline = time.monotonic() + timeout
    try:
        with (
            httpx2.Client(
                follow_redirects=True,
                timeout=httpx2.Timeout(timeout),
                headers={"User-Agent": "vnarrate (image input)", "Accept": "image/*"},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                raise InputError(f"{url}: the server answered {response.status_code}")
            ctype = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if ctype and not ctype.startswith("image/") and ctype not in _BINARY_TYPES:
                raise InputError(f"{url}: not an image (content type {ctype})")
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise InputError(_too_big(url, int(declared), max_bytes))
            chunks: list[bytes] = []
            got = 0
            for chunk in response.iter_bytes():
                got += len(chunk)
                if got > max_bytes:
                    raise InputError(_too_big(url, got, max_bytes))
                if time.monotonic() > deadline:
                    raise InputError(f"{url}: download took longer than {timeout:g} s")
                chunks.append(chunk)
    except httpx2.TimeoutException:
        raise InputError(f"{url}: download timed out after {timeout:g} s") from None
    except httpx2.HTTPError as exc:
        why = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise InputError(f"{url}: cannot download: {why}") from None
    return b"".join(chunks), ctype


_BINARY_TYPES = {"application/octet-stream", "binary/octet-stream"}


def _too_big(url: str, size: int, limit: int) -> str:
    return f"{url}: larger than {limit / MB:g} MB ({size / MB:.1f} MB or more)"


def download_image(
    url: str,
    *,
    max_bytes: int = DOWNLOAD_MAX_BYTES,
    timeout: float = DOWNLOAD_TIMEOUT_S,
    detail: str = "auto",
    jpeg_quality: int = 85,
) -> ImageInput:
    """An image URL downloaded (for servers that take only data URLs) and prepared like a file."""
    data, _ = fetch_url(url, max_bytes=max_bytes, timeout=timeout)
    return image_from_bytes(data, source=url, detail=detail, jpeg_quality=jpeg_quality)


def prepare_image(
    source: str,
    *,
    url_images_ok: bool = True,
    detail: str = "auto",
    jpeg_quality: int = 85,
    image_urls: ImageUrlMode = "auto",
    max_bytes: int = DOWNLOAD_MAX_BYTES,
    timeout: float = DOWNLOAD_TIMEOUT_S,
) -> ImageInput:
    """A path or URL made ready to send: URLs pass as URLs unless the server cannot fetch them
    (`url_images_ok` False: Ollama, LM Studio).

    `image_urls`: auto follows `url_images_ok`; pass always sends the URL; download always fetches.
    """
    if is_url(source):
        download = image_urls == "download" or (image_urls == "auto" and not url_images_ok)
        if not download:
            return url_input(source)
        return download_image(
            source, max_bytes=max_bytes, timeout=timeout, detail=detail, jpeg_quality=jpeg_quality
        )
    return load_image(source, detail=detail, jpeg_quality=jpeg_quality)
