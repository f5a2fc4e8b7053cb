"""Providers: profiles, detection from the base URL, advice for a server's 400, the server check,
and the exact request shape each profile produces through prompts and chat."""

from __future__ import annotations

import base64
import json
from typing import Any

import numpy as np
import openai
import pytest
import respx
from conftest import chat_response

from vnarrate.errors import ConfigError
from vnarrate.media.images import prepare_image
from vnarrate.models import Description, Frame
from vnarrate.server.providers import (
    PROFILES,
    PROVIDERS,
    ProviderProfile,
    detect_provider,
    profile_for,
    resolve_profile,
)
from vnarrate.vision.chat import ChatOptions, complete
from vnarrate.vision.pack import choose_pack, pack_grid
from vnarrate.vision.prompts import describe_messages
from vnarrate.vision.prompts import image_input_part as image_url_part

GOOD = {"title": "A dog", "description": "A dog sleeps."}


def _client(**kw: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="sk-test-key-000000", max_retries=0, **kw)


# --- profiles -------------------------------------------------------------------------------


def test_every_provider_has_a_profile() -> None:
    assert tuple(PROFILES) == PROVIDERS
    for name, profile in PROFILES.items():
        assert profile.name == name
        assert {"image/jpeg", "image/png"} <= profile.image_mimes  # what images.py produces


@pytest.mark.parametrize(
    ("name", "token_field", "detail", "url_ok", "dummy_key", "base_url"),
    [
        ("openai", "max_completion_tokens", True, True, False, "https://api.openai.com/v1"),
        ("ollama", "max_tokens", False, False, True, "http://localhost:11434/v1"),
        ("lmstudio", "max_tokens", False, False, True, "http://localhost:1234/v1"),
        ("llamacpp", "max_tokens", False, True, True, "http://localhost:8080/v1"),
        ("vllm", "max_tokens", False, True, True, "http://localhost:8000/v1"),
        ("compatible", "max_tokens", False, True, False, None),
    ],
)
def test_profile_facts(
    name: str,
    token_field: str,
    detail: bool,
    url_ok: bool,
    dummy_key: bool,
    base_url: str | None,
) -> None:
    p = profile_for(name)
    assert (p.token_field, p.send_detail, p.url_images_ok, p.dummy_key_ok) == (
        token_field,
        detail,
        url_ok,
        dummy_key,
    )
    assert p.default_base_url == base_url


def test_caps_and_structured_modes() -> None:
    assert PROFILES["vllm"].max_images_per_request == 1
    assert PROFILES["openai"].max_images_per_request == 500
    assert PROFILES["ollama"].max_images_per_request is None
    assert PROFILES["lmstudio"].json_object_ok is False
    assert "image/gif" not in PROFILES["ollama"].image_mimes
    assert "image/webp" not in PROFILES["lmstudio"].image_mimes
    assert all(p.structured_output == "json_schema" for p in PROFILES.values())


def test_profile_for_unknown_lists_choices() -> None:
    with pytest.raises(ConfigError, match="unknown provider 'tgi'") as err:
        profile_for("tgi")
    assert "ollama" in str(err.value) and err.value.exit_code == 3
    assert profile_for(" Ollama ").name == "ollama"


def test_resolve_profile_auto_detects() -> None:
    assert resolve_profile("auto", "http://localhost:11434/v1").name == "ollama"
    assert resolve_profile("vllm", "http://localhost:11434/v1").name == "vllm"
    assert resolve_profile("auto", None).name == "openai"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (None, "openai"),
        ("", "openai"),
        ("https://api.openai.com/v1", "openai"),
        ("https://myres.openai.azure.com/openai/v1", "openai"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://127.0.0.1:11434/v1/", "ollama"),
        ("http://ollama:11434/v1", "ollama"),
        ("https://ollama.internal.example.com/v1", "ollama"),
        ("http://localhost:1234/v1", "lmstudio"),
        ("http://192.168.1.20:1234/v1", "lmstudio"),
        ("http://lmstudio.lan/v1", "lmstudio"),
        ("http://localhost:8080/v1", "llamacpp"),
        ("http://llama-server:9000/v1", "llamacpp"),
        ("http://vllm.gpu-box.example.com/v1", "vllm"),
        ("http://my-vllm:8000/v1", "vllm"),
        # vLLM's default port (also llama-cpp-python's: the cautious vLLM profile suits both).
        ("http://localhost:8000/v1", "vllm"),
        ("http://10.0.0.5:8000/v1", "vllm"),
        ("https://api.example.com:8000/v1", "compatible"),
        # A default port on a public host says nothing.
        ("https://api.example.com:8080/v1", "compatible"),
        ("https://openrouter.ai/api/v1", "compatible"),
        ("https://api.groq.com/openai/v1", "compatible"),
        ("localhost:11434/v1", "ollama"),
        ("http://[::1]:1234/v1", "lmstudio"),
        ("http://host:notaport/v1", "compatible"),
    ],
)
def test_detect_provider(url: str | None, expected: str) -> None:
    assert detect_provider(url) == expected


# --- request shape per profile, end to end through prompts and chat -------------------------


def _frames(n: int, size: tuple[int, int] = (320, 180)) -> list[Frame]:
    import cv2

    out = []
    for i in range(n):
        img = np.full((size[1], size[0], 3), (i * 40) % 256, dtype=np.uint8)
        ok, buf = cv2.imencode(".jpg", img)
        assert ok
        out.append(
            Frame(index=i * 10, time_s=i * 0.5, width=size[0], height=size[1], jpeg=buf.tobytes())
        )
    return out


def _send(profile: ProviderProfile, frames: list[Frame], api: respx.Router) -> dict[str, Any]:
    """What the pipeline does for a profile: pack when needed, build messages, call chat."""
    route = api.post("/chat/completions").respond(200, json=chat_response(GOOD))
    if choose_pack("auto", len(frames), profile.max_images_per_request):
        frames = pack_grid(frames, detail="low", max_images=profile.max_images_per_request)
    messages = describe_messages(
        frames, duration_s=5.0, detail="low" if profile.send_detail else None
    )
    options = ChatOptions(
        model="m",
        token_field=profile.token_field,
        max_tokens=700,
        structured=profile.structured_output,
    )
    answer, _ = complete(_client(), Description, messages, options)
    assert answer.title == "A dog"
    return dict(json.loads(route.calls[-1].request.content))


def _image_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    content = body["messages"][-1]["content"]
    return [p for p in content if p["type"] == "image_url"]


@pytest.mark.parametrize("name", PROVIDERS)
def test_request_shape_per_profile(name: str, api: respx.Router) -> None:
    profile = PROFILES[name]
    body = _send(profile, _frames(6), api)
    other = (
        "max_tokens" if profile.token_field == "max_completion_tokens" else "max_completion_tokens"
    )
    assert body[profile.token_field] == 700 and other not in body
    parts = _image_parts(body)
    cap = profile.max_images_per_request
    assert len(parts) == (min(6, cap) if cap else 6)
    for part in parts:
        assert part["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert ("detail" in part["image_url"]) is profile.send_detail
    assert body["response_format"]["type"] == profile.structured_output


def test_vllm_gets_one_sheet_with_every_frame(api: respx.Router) -> None:
    body = _send(PROFILES["vllm"], _frames(12), api)
    parts = _image_parts(body)
    assert len(parts) == 1
    sheet = base64.b64decode(parts[0]["image_url"]["url"].split(",", 1)[1])
    import cv2

    img = cv2.imdecode(np.frombuffer(sheet, np.uint8), cv2.IMREAD_COLOR)
    assert max(img.shape[:2]) <= 512  # detail low -> one 512 sheet


@pytest.mark.parametrize(
    ("name", "downloaded"),
    [("openai", False), ("vllm", False), ("llamacpp", False), ("ollama", True), ("lmstudio", True)],
)
def test_image_url_passed_or_downloaded(name: str, downloaded: bool, api: respx.Router) -> None:
    import cv2

    _, png = cv2.imencode(".png", np.full((40, 60, 3), 200, np.uint8))
    url = "https://images.example.com/cat.png"
    fetch = api.get(url).respond(200, content=png.tobytes(), headers={"content-type": "image/png"})
    profile = PROFILES[name]
    image = prepare_image(url, url_images_ok=profile.url_images_ok, detail="low")
    part = image_url_part(image, detail="low" if profile.send_detail else None)
    route = api.post("/chat/completions").respond(200, json=chat_response(GOOD))
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is this?"}, part]}]
    options = ChatOptions(max_tokens=8000, model="m", token_field=profile.token_field)
    complete(_client(), Description, messages, options)
    sent = _image_parts(json.loads(route.calls[0].request.content))[0]["image_url"]
    assert fetch.called is downloaded
    if downloaded:
        assert sent["url"].startswith("data:image/png;base64,")
    else:
        assert sent["url"] == url
    assert ("detail" in sent) is profile.send_detail
