"""Advice for rejected requests: a server's 400 message -> what to tell the user, and the fix.

Takes the message of a 400 and the provider it came from; gives a BadRequestAdvice (one line naming
the `--provider` or setting to use, plus `fix`: the setting change that would make the request
pass) or None when the message names nothing this tool sets. Each kind of rejection (image count,
token field, structured output, images, sampling options, size) has its own small reader; the
first that recognises the message answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from ..models import EFFORTS
from .providers import PROFILES


class BadRequestAdvice(BaseModel):
    """What to tell the user about a rejected request, and the setting change that would fix it.

    `fix` names request options (token_field, structured_output, max_images, pack, image_urls,
    send_detail, temperature, reasoning_effort) with the value to use, so a caller may retry once.
    """

    advice: str
    fix: dict[str, Any] = Field(default_factory=dict)


_REJECT_WORDS = re.compile(
    r"unsupported|unrecogni[sz]ed|unknown|not supported|not permitted|not allowed|extra (?:inputs|"
    r"fields)|unexpected|invalid|not a valid|does not support|must be",
    re.I,
)
_IMAGE_LIMIT = re.compile(
    r"at most (\d+) image|max(?:imum)?(?: number of)?(?: images)?(?: is| of|:)?\s*(\d+)\s*image|"
    r"too many images[^0-9]*(?:max(?:imum)?(?: is| of)?:?\s*)?(\d+)?|"
    r"images? (?:limit|per (?:request|prompt))[^0-9]*(\d+)",
    re.I,
)
_USE_INSTEAD = re.compile(r"use '?\"?(max_completion_tokens|max_tokens)'?\"? instead", re.I)
_TOO_LARGE = re.compile(r"too large|at most \d+|maximum (?:value|is)|must be (?:less|<=)")


class _Message:
    """A 400's message as the readers need it: collapsed, lower-cased, and whether it rejects."""

    def __init__(self, message: str, provider: str) -> None:
        self.text = " ".join(message.split())
        self.low = self.text.lower()
        self.provider = provider
        self.label = PROFILES[provider].label if provider in PROFILES else provider
        self.rejects = bool(_REJECT_WORDS.search(self.text))


Reader = Callable[[_Message], BadRequestAdvice | None]


def parse_image_limit(message: str) -> int | None:
    """The image count a server says it allows per request, from its error message, or None."""
    m = _IMAGE_LIMIT.search(message)
    if not m:
        return None
    for group in m.groups():
        if group is not None:
            return int(group)
    return None


def _image_count(m: _Message) -> BadRequestAdvice | None:
    # vLLM: "At most 1 image(s) may be provided in one request."
    limit = parse_image_limit(m.text)
    if limit is None and "too many images" not in m.low:
        return None
    if limit == 0:
        return BadRequestAdvice(
            advice="the model on this server does not take images: pick a vision model "
            "with --model (run `vnarrate models` to list them)",
        )
    n = limit if limit is not None else 1
    return BadRequestAdvice(
        advice=f"this server takes at most {n} image(s) per request: pass --pack grid to "
        f"tile the frames into {n} contact sheet(s), or --max-images-per-request {n}"
        + ("" if m.provider == "vllm" else " (or --provider vllm)")
        + "; a vLLM server started with --limit-mm-per-prompt '{\"image\":16}' takes more",
        fix={"max_images": n, "pack": "grid"},
    )


def _token_field(m: _Message) -> BadRequestAdvice | None:
    # A value too large for the model, or the wrong field name.
    if re.search(r"max_(?:completion_)?tokens", m.low) and _TOO_LARGE.search(m.low):
        return BadRequestAdvice(
            advice="the token limit is more than this model allows: lower "
            "--max-completion-tokens (the message above says how far)",
        )
    wanted = _USE_INSTEAD.search(m.text)
    if wanted:
        return _token_advice(wanted.group(1).lower(), m.provider)
    if m.rejects and "max_completion_tokens" in m.low:
        return _token_advice("max_tokens", m.provider)
    if m.rejects and re.search(r"\bmax_tokens\b", m.low):
        return _token_advice("max_completion_tokens", m.provider)
    return None


def _token_advice(field: str, provider: str) -> BadRequestAdvice:
    if field == "max_completion_tokens":
        return BadRequestAdvice(
            advice="this server wants max_completion_tokens: pass --provider openai or "
            "--token-field max_completion_tokens",
            fix={"token_field": "max_completion_tokens"},
        )
    local = provider in PROFILES and PROFILES[provider].local
    suggest = provider if local else "ollama"
    return BadRequestAdvice(
        advice=f"this server wants max_tokens: pass --provider {suggest} or "
        "--token-field max_tokens",
        fix={"token_field": "max_tokens"},
    )


def _structured(m: _Message) -> BadRequestAdvice | None:
    low = m.low
    if not ("response_format" in low or "json_schema" in low or "json_object" in low):
        return None
    if re.search(r"must be '?json_schema'?", low) or (
        "json_object" in low and "json_schema" in low and "must be" in low
    ):
        return BadRequestAdvice(
            advice="this server takes only json_schema structured output (LM Studio does): "
            "pass --provider lmstudio or --structured json_schema",
            fix={"structured_output": "json_schema"},
        )
    if m.rejects or "not support" in low:
        return BadRequestAdvice(
            advice=f"{m.label} rejected structured output (response_format): pass "
            "--structured json_object (JSON mode) or --structured none (the schema goes in "
            "the prompt and the answer is validated and repaired once)",
            fix={"structured_output": "none" if "json_object" in low else "json_object"},
        )
    return None


def _image_urls(m: _Message) -> BadRequestAdvice | None:
    low = m.low
    if "image urls are not" in low or "use base64" in low or "must be a base64" in low:
        return BadRequestAdvice(
            advice="this server takes images only as base64 data URLs: pass "
            + (
                "--provider ollama or --provider lmstudio, or "
                if m.provider == "compatible"
                else ""
            )
            + "--image-urls download (vnarrate then downloads and embeds them)",
            fix={"image_urls": "download"},
        )
    if "failed to download image" in low or "error while downloading" in low:
        return BadRequestAdvice(
            advice="the server could not download the image URL itself: pass --image-urls "
            "download (vnarrate then downloads it and sends the data)",
            fix={"image_urls": "download"},
        )
    return None


_NO_IMAGES = (
    "image input is not supported",
    "does not support image",
    "not a multimodal model",
    "image_url is only supported by certain models",
)


def _image_support(m: _Message) -> BadRequestAdvice | None:
    low = m.low
    if any(words in low for words in _NO_IMAGES):
        hint = " (llama.cpp: start llama-server with --mmproj)" if m.provider == "llamacpp" else ""
        return BadRequestAdvice(
            advice="the model on this server does not take images: pick a vision model with "
            f"--model{hint}; `vnarrate models` lists what the server offers",
        )
    if "invalid image input" in low or "invalid image" in low:
        return BadRequestAdvice(
            advice="this server could not read an image's format: pass "
            + ("--provider ollama (JPEG/PNG/WebP only) " if m.provider != "ollama" else "")
            + "so images are sent as JPEG or PNG data URLs, or convert the image",
            fix={"image_urls": "download"},
        )
    if m.rejects and re.search(r"\bdetail\b", low):
        return BadRequestAdvice(
            advice="this server rejects the image `detail` field: pass --provider compatible "
            "(or the server's own --provider), which leaves it out",
            fix={"send_detail": False},
        )
    return None


def _sampling(m: _Message) -> BadRequestAdvice | None:
    if re.search(r"\btemperature\b", m.low) and (m.rejects or "only the default" in m.low):
        return BadRequestAdvice(
            advice="this model does not take --temperature (reasoning models allow only the "
            "default): leave it unset",
            fix={"temperature": None},
        )
    if "reasoning" in m.low and m.rejects:
        lowest = _lowest_effort(m.low)
        if lowest is not None:
            # GPT-6 Astra and Sol reject `none` (Sol also `minimal`): the cheapest effort they
            # take keeps the request cheap, where leaving it unset would mean medium.
            return BadRequestAdvice(
                advice=f"this model does not take that --reasoning-effort: pass "
                f"--reasoning-effort {lowest} (the lowest it takes) or leave it unset",
                fix={"reasoning_effort": lowest},
            )
        return BadRequestAdvice(
            advice=f"{m.label} does not take --reasoning-effort with this model: leave it unset",
            fix={"reasoning_effort": None},
        )
    return None


def _lowest_effort(low: str) -> str | None:
    """The lowest effort a message lists after "supported values", or None."""
    found = re.search(r"supported values(?: are)?:?(.*)", low)
    if not found:
        return None
    named = set(re.findall(r"[a-z]+", found.group(1)))
    return next((e for e in EFFORTS if e in named), None)


def _size(m: _Message) -> BadRequestAdvice | None:
    low = m.low
    if "context length" in low or "context size" in low or "too large" in low or "413" in low:
        return BadRequestAdvice(
            advice="the request is too large for this model: send fewer or smaller images "
            "(--max-frames, --detail low) or tile them (--pack grid)",
        )
    return None


# In this order: the more specific readers first ("too large" also appears in token messages).
_READERS: tuple[Reader, ...] = (
    _image_count,
    _token_field,
    _structured,
    _image_urls,
    _image_support,
    _sampling,
    _size,
)


def advise_bad_request(message: str, provider: str) -> BadRequestAdvice | None:
    """Advice for a 400 that names a parameter this tool sets, or None when it names none."""
    parsed = _Message(message, provider)
    for reader in _READERS:
        advice = reader(parsed)
        if advice is not None:
            return advice
    return None


def explain_bad_request(message: str, provider: str) -> str | None:
    """One line of advice for a 400 naming a parameter (which --provider or setting to use)."""
    advice = advise_bad_request(message, provider)
    return advice.advice if advice else None
