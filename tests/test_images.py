"""Image inputs: every format, sizes per detail, PNG-or-JPEG, bad files, URLs and downloads,
and how videos and images given together are grouped. Images are made here with OpenCV."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx2
import numpy as np
import pytest
import respx

from vnarrate.errors import InputError
from vnarrate.media import images
from vnarrate.media.images import (
    ImageInput,
    download_image,
    fetch_url,
    frame_count,
    load_image,
    prepare_image,
    sniff_format,
    target_size,
    url_input,
)
from vnarrate.runs.inputs import check_mix
from vnarrate.server.providers import PROFILES
from vnarrate.vision.prompts import image_input_part as image_url_part

URL = "https://img.example.com/photo.jpg"


def photo(w: int, h: int, seed: int = 0) -> np.ndarray:
    """A noisy gradient: compresses far better as JPEG than PNG."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    base = np.concatenate([x + 0 * y, y + 0 * x, (x + y) / 2], axis=2)
    noise = rng.normal(0, 20, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def screenshot(w: int, h: int) -> np.ndarray:
    """Flat colours and text: PNG beats JPEG."""
    img = np.full((h, w, 3), 245, np.uint8)
    cv2.rectangle(img, (0, 0), (w, 40), (90, 60, 30), -1)
    for i in range(8):
        cv2.putText(img, f"Line {i} of text", (20, 80 + 30 * i), 0, 0.7, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def write(path: Path, img: np.ndarray, ext: str | None = None) -> Path:
    ok, buf = cv2.imencode(ext or path.suffix, img)
    assert ok
    path.write_bytes(buf.tobytes())
    return path


def decode(image: ImageInput) -> np.ndarray:
    out = cv2.imdecode(np.frombuffer(image.data, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out is not None
    return out


# --- formats --------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".gif", ".bmp", ".tiff"])
def test_every_format_loads_as_jpeg_or_png(tmp_path: Path, ext: str) -> None:
    path = write(tmp_path / f"pic{ext}", photo(300, 200))
    image = load_image(path, detail="auto")
    assert image.mime in ("image/jpeg", "image/png")
    assert (image.width, image.height) == (300, 200)
    assert (image.original_width, image.original_height) == (300, 200)
    assert image.source_format == {".jpg": "jpeg", ".tiff": "tiff"}.get(ext, ext[1:])
    assert decode(image).shape[:2] == (200, 300)
    assert image.as_url().startswith(f"data:{image.mime};base64,")


def test_format_is_read_from_content_not_name(tmp_path: Path) -> None:
    path = write(tmp_path / "really_a_png.jpg", screenshot(200, 120), ".png")
    assert load_image(path).source_format == "png"


def test_png_kept_when_smaller_jpeg_otherwise(tmp_path: Path) -> None:
    shot = load_image(write(tmp_path / "shot.png", screenshot(640, 360)))
    assert shot.mime == "image/png"
    pic = load_image(write(tmp_path / "pic.png", photo(640, 360)))
    assert pic.mime == "image/jpeg"


def test_transparency_is_flattened_onto_white(tmp_path: Path) -> None:
    rgba = np.zeros((50, 80, 4), np.uint8)
    rgba[:, :40] = (0, 0, 255, 255)  # opaque red on the left, transparent on the right
    image = load_image(write(tmp_path / "alpha.png", rgba))
    out = decode(image)
    assert out.shape == (50, 80, 3)
    assert tuple(out[25, 70]) == (255, 255, 255)
    assert tuple(out[25, 10]) == (0, 0, 255)


def test_grayscale_and_16_bit(tmp_path: Path) -> None:
    gray = load_image(write(tmp_path / "g.png", np.full((30, 40), 128, np.uint8)))
    assert decode(gray).shape == (30, 40, 3)
    deep = load_image(write(tmp_path / "d.png", np.full((30, 40, 3), 40000, np.uint16)))
    assert abs(int(decode(deep)[0, 0, 0]) - 156) <= 1  # 40000 / 256


def _with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an APP1 EXIF segment holding only the orientation tag."""
    tiff = b"MM\x00*\x00\x00\x00\x08" + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    _, buf = cv2.imencode(".jpg", photo(400, 200))
    path = tmp_path / "rotated.jpg"
    path.write_bytes(_with_exif_orientation(buf.tobytes(), 6))  # 90 degrees clockwise
    image = load_image(path)
    assert (image.width, image.height) == (200, 400)
    assert (image.original_width, image.original_height) == (200, 400)


# --- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "detail", "expected"),
    [
        ((1024, 768), "low", (512, 384)),
        ((768, 1024), "low", (384, 512)),
        ((4000, 3000), "high", (1024, 768)),
        ((4000, 3000), "auto", (1024, 768)),
        ((3000, 500), "high", (2000, 333)),
        ((300, 200), "high", (300, 200)),  # never enlarged
        ((300, 200), "low", (300, 200)),
        ((4000, 3000), "original", (4000, 3000)),
    ],
)
def test_target_size(size: tuple[int, int], detail: str, expected: tuple[int, int]) -> None:
    assert target_size(*size, detail) == expected


def test_original_stays_within_the_patch_limit() -> None:
    w, h = target_size(10000, 10000, "original")
    assert -(-w // 32) * -(-h // 32) <= 30_000
    assert w > 5000


def test_huge_jpeg_is_resized_and_decoded_reduced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    big = np.zeros((10000, 10000, 3), np.uint8)
    big[:, 5000:] = (200, 100, 50)
    path = write(tmp_path / "huge.jpg", big)
    seen: list[int] = []
    real = cv2.imdecode

    def spy(buf: np.ndarray, flags: int) -> np.ndarray:
        seen.append(flags)
        return real(buf, flags)

    monkeypatch.setattr(cv2, "imdecode", spy)
    image = load_image(path, detail="high")
    assert (image.width, image.height) == (768, 768)
    assert (image.original_width, image.original_height) == (10000, 10000)
    assert seen == [cv2.IMREAD_REDUCED_COLOR_8]  # 1250 px decoded, not 10000
    low = load_image(path, detail="low")
    assert (low.width, low.height) == (512, 512)


def test_huge_png_is_resized(tmp_path: Path) -> None:
    path = write(tmp_path / "wide.png", np.zeros((2000, 10000, 3), np.uint8))
    image = load_image(path, detail="high")
    assert (image.width, image.height) == (2000, 400)


def test_too_many_pixels_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(images, "MAX_DECODE_PIXELS", 1000)
    path = write(tmp_path / "big.png", np.zeros((50, 50, 3), np.uint8))
    with pytest.raises(InputError, match="too large to decode"):
        load_image(path)


# --- bad files ------------------------------------------------------------------------------


def test_missing_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty file"):
        load_image(tmp_path / "empty.png")
    with pytest.raises(InputError, match="is a folder"):
        load_image(tmp_path)


def test_text_file_named_png(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("these are my notes, not a picture\n" * 5)
    with pytest.raises(InputError, match=r"not an image \(it contains text\)") as err:
        load_image(tmp_path / "notes.png")
    assert err.value.exit_code == 4 and err.value.hint and "PNG, JPEG" in err.value.hint


def test_random_bytes(tmp_path: Path) -> None:
    (tmp_path / "x.jpg").write_bytes(np.random.default_rng(1).bytes(4000))
    with pytest.raises(InputError, match="unknown format"):
        load_image(tmp_path / "x.jpg")


def test_corrupt_png_body(tmp_path: Path) -> None:
    _, buf = cv2.imencode(".png", photo(64, 64))
    data = bytearray(buf.tobytes())
    data[60:400] = b"\x00" * 340  # keep the signature and IHDR, destroy the pixels
    (tmp_path / "bad.png").write_bytes(bytes(data))
    with pytest.raises(InputError, match="cannot decode this PNG"):
        load_image(tmp_path / "bad.png")


def test_truncated_jpeg(tmp_path: Path) -> None:
    _, buf = cv2.imencode(".jpg", photo(400, 300))
    (tmp_path / "cut.jpg").write_bytes(buf.tobytes()[: len(buf) // 2])
    with pytest.raises(InputError, match="truncated JPEG"):
        load_image(tmp_path / "cut.jpg")


def test_heic_refused_with_advice(tmp_path: Path) -> None:
    (tmp_path / "p.heic").write_bytes(
        b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64
    )
    with pytest.raises(InputError, match="HEIC") as err:
        load_image(tmp_path / "p.heic")
    assert err.value.hint and "JPEG or PNG" in err.value.hint


def _animation(ext: str, n: int) -> bytes:
    anim = cv2.Animation()
    anim.frames = [np.full((20, 30, 3), 60 * i, np.uint8) for i in range(n)]
    anim.durations = [100] * n
    ok, buf = cv2.imencodeanimation(ext, anim)
    assert ok
    return bytes(buf)


@pytest.mark.parametrize(
    ("ext", "kind"), [(".gif", "GIF"), (".webp", "WebP"), (".png", r"PNG \(APNG\)")]
)
def test_animated_images_refused(tmp_path: Path, ext: str, kind: str) -> None:
    data = _animation(ext, 3)
    assert frame_count(data, sniff_format(data)) > 1
    (tmp_path / f"a{ext}").write_bytes(data)
    with pytest.raises(InputError, match=f"animated {kind}") as err:
        load_image(tmp_path / f"a{ext}")
    assert err.value.hint and "video" in err.value.hint


def test_still_gif_loads(tmp_path: Path) -> None:
    path = write(tmp_path / "still.gif", screenshot(120, 90))
    assert frame_count(path.read_bytes(), "gif") == 1
    assert load_image(path).mime in ("image/png", "image/jpeg")


# --- content parts and URLs -----------------------------------------------------------------


def test_image_url_part(tmp_path: Path) -> None:
    image = load_image(write(tmp_path / "p.png", screenshot(100, 60)))
    part = image_url_part(image, detail="high")
    assert part["type"] == "image_url" and part["image_url"]["detail"] == "high"
    raw = base64.b64decode(part["image_url"]["url"].split(",", 1)[1])
    assert raw == image.data
    assert "detail" not in image_url_part(image, detail=None)["image_url"]
    remote = url_input(URL)
    assert image_url_part(remote, detail="low")["image_url"] == {"url": URL, "detail": "low"}
    assert remote.is_remote and not remote.data


@pytest.mark.parametrize("bad", ["ftp://x.com/a.png", "file:///etc/passwd", "https://", "x.png"])
def test_url_input_rejects_non_http(bad: str) -> None:
    with pytest.raises(InputError, match="not an http"):
        url_input(bad)


@pytest.fixture
def web() -> Iterator[respx.Router]:
    import pytest_httpx2._plugin  # noqa: F401  (registers the httpcore2 mocker)

    with respx.mock(using="httpcore2", assert_all_mocked=True, assert_all_called=False) as router:
        yield router


def _jpeg(w: int = 1600, h: int = 1200) -> bytes:
    _, buf = cv2.imencode(".jpg", photo(w, h))
    return buf.tobytes()


def test_download_image_resizes_like_a_file(web: respx.Router) -> None:
    web.get(URL).respond(200, content=_jpeg(), headers={"content-type": "image/jpeg"})
    image = download_image(URL, detail="low")
    assert (image.width, image.height) == (512, 384) and image.source == URL and not image.url


def test_download_follows_redirects(web: respx.Router) -> None:
    web.get(URL).respond(302, headers={"location": "https://cdn.example.com/p.jpg"})
    web.get("https://cdn.example.com/p.jpg").respond(
        200, content=_jpeg(100, 80), headers={"content-type": "image/jpeg"}
    )
    assert download_image(URL).width == 100


def test_download_error_status(web: respx.Router) -> None:
    web.get(URL).respond(404, text="nope")
    with pytest.raises(InputError, match="answered 404"):
        fetch_url(URL)


def test_download_not_an_image(web: respx.Router) -> None:
    web.get(URL).respond(200, text="<html></html>", headers={"content-type": "text/html"})
    with pytest.raises(InputError, match="not an image \\(content type text/html\\)"):
        fetch_url(URL)


def test_download_octet_stream_checked_by_content(web: respx.Router) -> None:
    web.get(URL).respond(
        200, content=b"hello", headers={"content-type": "application/octet-stream"}
    )
    with pytest.raises(InputError, match="not an image"):
        download_image(URL)


def test_download_size_cap_by_header(web: respx.Router) -> None:
    web.get(URL).respond(
        200, content=b"x" * 2000, headers={"content-type": "image/jpeg", "content-length": "2000"}
    )
    with pytest.raises(InputError, match="larger than"):
        fetch_url(URL, max_bytes=1000)


def test_download_size_cap_while_streaming(web: respx.Router) -> None:
    def stream() -> Iterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    import httpx  # respx builds its responses with httpx and hands them to httpx2

    web.get(URL).mock(
        return_value=httpx.Response(200, headers={"content-type": "image/jpeg"}, content=stream())
    )
    with pytest.raises(InputError, match="larger than"):
        fetch_url(URL, max_bytes=1000)


def test_download_timeout_and_connection_error(web: respx.Router) -> None:
    web.get(URL).mock(side_effect=httpx2.ReadTimeout("slow"))
    with pytest.raises(InputError, match="timed out after 5 s"):
        fetch_url(URL, timeout=5)
    web.get("https://down.example.com/a.png").mock(side_effect=httpx2.ConnectError("refused"))
    with pytest.raises(InputError, match="cannot download: refused"):
        fetch_url("https://down.example.com/a.png")


def test_prepare_image_local_and_forced_modes(tmp_path: Path, web: respx.Router) -> None:
    path = write(tmp_path / "p.png", screenshot(100, 60))
    assert (
        prepare_image(str(path), url_images_ok=PROFILES["ollama"].url_images_ok).mime == "image/png"
    )
    route = web.get(URL).respond(200, content=_jpeg(), headers={"content-type": "image/jpeg"})
    assert prepare_image(URL, url_images_ok=PROFILES["openai"].url_images_ok).url == URL
    assert (
        prepare_image(URL, url_images_ok=PROFILES["ollama"].url_images_ok, image_urls="pass").url
        == URL
    )
    assert not route.called
    forced = prepare_image(
        URL, url_images_ok=PROFILES["openai"].url_images_ok, image_urls="download"
    )
    assert forced.url is None and forced.mime == "image/jpeg" and route.called


# --- videos and images together -------------------------------------------------------------


def test_videos_alone_and_images_together() -> None:
    groups = check_mix(["video", "image", "video", "url", "image"])
    assert [(g.kind, g.indexes) for g in groups] == [
        ("video", [0]),
        ("images", [1, 3, 4]),
        ("video", [2]),
    ]


def test_images_only_one_request() -> None:
    assert [(g.kind, g.indexes) for g in check_mix(["image", "image"])] == [("images", [0, 1])]


@pytest.mark.parametrize("command", ["voiceover", "script", "frames"])
def test_images_need_describe(command: str) -> None:
    with pytest.raises(InputError, match=f"photo.jpg: `{command}` needs a video"):
        check_mix(["video", "image"], command=command, names=["a.mp4", "photo.jpg"])
    assert check_mix(["video"], command=command)[0].kind == "video"


def test_more_images_than_the_server_takes() -> None:
    with pytest.raises(InputError, match=r"3 images go in one request.*at most 1"):
        check_mix(["image", "image", "url"], max_images=1)
    assert len(check_mix(["video", "video"], max_images=1)) == 2  # videos are packed or chunked


def test_unknown_kind() -> None:
    with pytest.raises(ValueError, match="unknown input kind"):
        check_mix(["audio"])
