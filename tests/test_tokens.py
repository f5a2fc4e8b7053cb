"""Token estimates: every worked example of OpenAI's vision guide, the edges of both rules, and
the offline text estimate against known o200k_base counts."""

from __future__ import annotations

import base64
import math

import pytest

from vnarrate.media.images import image_size
from vnarrate.vision.tokens import (
    FALLBACK_FAMILY,
    MAX_PATCHES_PER_IMAGE,
    data_url_size,
    image_tokens,
    message_overhead,
    messages_tokens,
    patch_count,
    request_tokens,
    resolve_model,
    text_tokens,
    tile_tokens,
)

# --- worked examples from the guide ("Images and vision" > "Calculating costs") ---------------


@pytest.mark.parametrize(
    ("width", "height", "detail", "tokens"),
    [
        (1024, 1024, "high", 765),  # no 2048 fit; 768x768; 4 tiles: 170 * 4 + 85
        (2048, 4096, "high", 1105),  # 1024x2048, then 768x1536; 6 tiles: 170 * 6 + 85
        (4096, 8192, "low", 85),  # low detail is a fixed cost whatever the size
    ],
)
def test_tile_worked_examples_gpt_4o(width: int, height: int, detail: str, tokens: int) -> None:
    est = image_tokens("gpt-4o", width, height, detail)
    assert est.tokens == tokens
    assert est.method == "tile"
    assert est.known


def test_tile_worked_example_intermediate_sizes() -> None:
    assert tile_tokens(2048, 4096, base=85, tile=170, low=False) == (1105, 6, 768, 1536)
    assert tile_tokens(1024, 1024, base=85, tile=170, low=False) == (765, 4, 768, 768)


def test_patch_worked_examples_1536_budget() -> None:
    # "Cost calculation examples for a model with a 1,536-patch budget"
    assert patch_count(1024, 1024, max_side=2048, budget=1536) == (1024, 1024, 1024)
    # 57 x 75 = 4275 patches > 1536; shrink 0.603, adjusted 0.586 -> 1056 x 1408 = 33 x 44
    assert patch_count(1800, 2400, max_side=2048, budget=1536) == (1452, 1056, 1408)


def test_patch_worked_examples_with_multipliers() -> None:
    # The same examples on the deprecated 1,536-patch models, times their listed multipliers.
    assert image_tokens("o4-mini", 1800, 2400, "high").tokens == math.ceil(1452 * 1.72)  # 2498
    assert image_tokens("gpt-4.1-nano", 1024, 1024, "high").tokens == 2520  # ceil(1024 * 2.46)
    assert image_tokens("gpt-5-nano", 1024, 1024, "high").tokens == 1536  # 1024 * 1.5


def test_patch_worked_examples_gpt_5_4_high() -> None:
    # "Cost calculation examples for gpt-5.4 with detail: high": 2048 px, 2,500 patches, x1.2
    small = image_tokens("gpt-5.4", 1024, 1024, "high")
    assert (small.units, small.tokens) == (1024, 1229)  # ceil(1024 * 1.2)
    big = image_tokens("gpt-5.4", 2048, 2048, "high")
    assert (big.width, big.height, big.units, big.tokens) == (1600, 1600, 2500, 3000)


def test_tile_table_low_detail_bases() -> None:
    assert image_tokens("gpt-4o-mini", 4000, 3000, "low").tokens == 2833
    assert image_tokens("gpt-4.1", 4000, 3000, "low").tokens == 85
    assert image_tokens("gpt-5", 4000, 3000, "low").tokens == 70
    assert image_tokens("gpt-5.1", 4000, 3000, "low").tokens == 70
    assert image_tokens("o1", 4000, 3000, "low").tokens == 75
    assert image_tokens("o3", 4000, 3000, "low").tokens == 75


def test_tile_table_high_detail_tiles() -> None:
    assert image_tokens("gpt-4o-mini", 1024, 1024, "high").tokens == 2833 + 4 * 5667
    assert image_tokens("gpt-5", 1024, 1024, "high").tokens == 70 + 4 * 140
    assert image_tokens("gpt-5-chat-latest", 1024, 1024, "high").tokens == 70 + 4 * 140


# --- per-model sizing from the model sizing table ---------------------------------------------


def test_gpt_5_4_low_detail_can_cost_more_than_high() -> None:
    # low: 2048 px and a 6,144-patch budget; high: 2,500 patches.
    low = image_tokens("gpt-5.4-mini", 2048, 2048, "low")
    high = image_tokens("gpt-5.4-mini", 2048, 2048, "high")
    assert low.units == 4096 and low.tokens == math.ceil(4096 * 1.2)
    assert low.tokens > high.tokens == 3000


def test_gpt_5_4_original_limits() -> None:
    est = image_tokens("gpt-5.4", 10_000, 10_000, "original")
    assert est.units <= 10_000
    assert max(est.width, est.height) <= 6000
    assert not est.rejected


def test_gpt_5_5_low_fits_512() -> None:
    est = image_tokens("gpt-5.5", 640, 480, "low")
    assert (est.width, est.height, est.units, est.tokens) == (512, 384, 192, 231)


def test_auto_follows_each_models_default() -> None:
    assert image_tokens("gpt-5.4", 3000, 3000, "auto") == image_tokens(
        "gpt-5.4", 3000, 3000, "high"
    )
    assert image_tokens("gpt-5.5", 3000, 3000, "auto").detail == "original"
    assert image_tokens("gpt-5.6-terra", 3000, 3000, "auto").detail == "original"
    assert (
        image_tokens("gpt-4o", 3000, 3000, "auto").tokens
        == image_tokens("gpt-4o", 3000, 3000, "high").tokens
    )


def test_uniform_models_ignore_detail() -> None:
    # gpt-5.2 and gpt-4.1-mini: every detail level uses 2048 px and 6,144 patches.
    assert {image_tokens("gpt-5.2", 1920, 1080, d).tokens for d in ("low", "high", "auto")} == {
        math.ceil(60 * 34 * 1.2)
    }
    assert image_tokens("gpt-4.1-mini", 1024, 1024, "low").tokens == math.ceil(1024 * 1.62)


def test_original_on_a_model_without_it_is_estimated_as_high() -> None:
    tile = image_tokens("gpt-4o", 1024, 1024, "original")
    assert tile.tokens == 765 and tile.detail == "high"
    assert any("original" in n for n in tile.notes)
    patch = image_tokens("gpt-5.2", 1024, 1024, "original")
    assert patch.detail == "high" and any("original" in n for n in patch.notes)


def test_gpt_5_6_original_over_30000_patches_is_flagged_rejected() -> None:
    ok = image_tokens("gpt-5.6-sol", 4800, 6400, "original")  # 150 x 200 = 30,000 exactly
    assert ok.units == MAX_PATCHES_PER_IMAGE and not ok.rejected
    over = image_tokens("gpt-5.6-sol", 4832, 6400, "original")
    assert over.rejected and any("30,000" in n for n in over.notes)


# --- edges -----------------------------------------------------------------------------------


def test_tiny_images() -> None:
    assert image_tokens("gpt-4o", 1, 1, "high").tokens == 85 + 170  # one tile
    assert image_tokens("gpt-5.4", 1, 1, "high").tokens == 2  # one patch, ceil(1.2)


def test_exact_multiples_of_tiles_and_patches() -> None:
    assert image_tokens("gpt-4o", 512, 512, "high").tokens == 255
    assert image_tokens("gpt-4o", 513, 512, "high").tokens == 425
    assert image_tokens("gpt-4o", 768, 768, "high").tokens == 765
    assert patch_count(32, 32, max_side=2048, budget=2500)[0] == 1
    assert patch_count(33, 32, max_side=2048, budget=2500)[0] == 2
    assert patch_count(1600, 1600, max_side=2048, budget=2500)[0] == 2500  # at the budget
    assert patch_count(1601, 1600, max_side=2048, budget=2500)[0] <= 2500


def test_portrait_and_landscape_cost_the_same() -> None:
    for model in ("gpt-4o", "gpt-5.4-mini", "gpt-4.1-nano", "gpt-5.5"):
        for w, h in ((1080, 1920), (300, 5000), (2500, 700)):
            for detail in ("low", "high"):
                a = image_tokens(model, w, h, detail)
                b = image_tokens(model, h, w, detail)
                assert a.tokens == b.tokens, (model, w, h, detail)


def test_portrait_tile_resize() -> None:
    # 1080x1920: shortest side to 768, the other rounded down (1365); 2 x 3 tiles.
    assert tile_tokens(1080, 1920, base=85, tile=170, low=False) == (1105, 6, 768, 1365)


def test_huge_images_stay_within_budgets() -> None:
    for w, h in ((100_000, 100_000), (65_000, 20), (20, 65_000), (8000, 4500), (6001, 6001)):
        est = image_tokens("gpt-5.4", w, h, "high")
        assert 1 <= est.units <= 2500 and max(est.width, est.height) <= 2048
        tile = image_tokens("gpt-4o", w, h, "high")
        assert tile.width <= 2048 and tile.height <= 2048 and min(tile.width, tile.height) <= 768


@pytest.mark.parametrize("budget", [1536, 2500, 6144, 10_000])
def test_patch_budget_is_never_exceeded(budget: int) -> None:
    for w in range(33, 6000, 397):
        for h in range(17, 6000, 431):
            patches, rw, rh = patch_count(w, h, max_side=None, budget=budget)
            assert patches <= budget
            assert rw <= w and rh <= h


def test_rejects_empty_sizes_and_unknown_detail() -> None:
    with pytest.raises(ValueError):
        image_tokens("gpt-4o", 0, 10, "high")
    with pytest.raises(ValueError):
        image_tokens("gpt-4o", 10, 10, "ultra")


# --- model names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),  # longest prefix wins
        ("GPT-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1", "gpt-4.1"),
        ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
        ("gpt-5-chat-latest", "gpt-5"),
        ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
        ("gpt-5.4-nano", "gpt-5.4-nano"),
        ("gpt-5.6-luna", "gpt-5.6"),
        ("openai/gpt-5.4-mini", "gpt-5.4-mini"),  # router prefix
        ("o4-mini-2025-04-16", "o4-mini"),
        ("chatgpt-4o-latest", "chatgpt-4o"),
    ],
)
def test_model_names_resolve_by_family(name: str, family: str) -> None:
    rule = resolve_model(name)
    assert rule.known and rule.family == family


@pytest.mark.parametrize("name", ["llava:13b", "qwen2.5-vl-7b", "gpt-5.3-codex", "gpt-4oo", "o5"])
def test_unknown_models_are_flagged_and_use_the_fallback(name: str) -> None:
    est = image_tokens(name, 768, 432, "auto")
    assert not est.known
    assert est.family == FALLBACK_FAMILY
    assert any("unknown model" in n and FALLBACK_FAMILY in n for n in est.notes)
    assert est.tokens == image_tokens(FALLBACK_FAMILY, 768, 432, "auto").tokens


def test_rule_description_names_the_rule() -> None:
    assert "2,500-patch" in image_tokens("gpt-5.4-mini", 768, 432, "high").rule
    assert "tile" in image_tokens("gpt-4o", 768, 432, "high").rule


# --- text ------------------------------------------------------------------------------------

# openai-cookbook "How to count tokens with tiktoken", o200k_base column.
COOKBOOK = [
    ("tiktoken is great!", 6),
    ("antidisestablishmentarianism", 6),
    ("2 + 2 = 4", 7),
    ("お誕生日おめでとう", 8),
]

# o200k_base counts measured offline when this estimate was written (bpe-openai 0.1.4, a
# tiktoken-compatible tokenizer that reproduces the cookbook counts above exactly).
O200K = [
    (
        "You watch videos through frames sampled from them, each labelled with its timestamp, "
        "and write what a viewer needs to know: what happens, who or what is shown, where, and "
        "how it changes over time.",
        42,
    ),
    ("Give this video a title and a description in markdown (short paragraphs, no headings).", 17),
    (
        "A red kite circles above a wheat field at dusk while a tractor crawls along the far hedge.",
        20,
    ),
    ("The video lasts 2:03.5 (m:ss.s).\n48 frames follow, from 0:00.0 to 2:01.0.", 33),
    ("[0:00.0]", 7),
    ("[1:05:12.5]", 9),
    ("- 0:12.0–0:18.0: at most 13 words", 19),
    (
        '{"title": "Sunset over the harbour", "language": "en", "segments": [{"start_s": 0.0, '
        '"end_s": 6.0, "text": "The boats rest in the evening light."}]}',
        51,
    ),
    (
        "Write the narration as segments with start_s and end_s in seconds (numbers, from the "
        "start of the video) and the text spoken in that time.",
        31,
    ),
    ("Le chat noir dort sur le canapé pendant que la pluie tombe doucement sur la fenêtre.", 17),
    (
        "Der Zug fährt langsam in den Bahnhof ein, und die Reisenden warten geduldig auf dem Bahnsteig.",
        22,
    ),
    (
        "El perro corre por la playa persiguiendo las olas mientras el sol se pone en el horizonte.",
        21,
    ),
    ("Мужчина в красной куртке идёт по заснеженной улице вечернего города.", 21),
    ("一只小猫在窗台上晒太阳，外面下着小雨。", 18),
    ("東京の街は夜になるとネオンで明るく輝きます。", 18),
    (
        "def describe(path: str, settings: Settings) -> DescribeResult:\n"
        "    frameset = extract(path, settings)\n    return frameset",
        27,
    ),
]


@pytest.mark.parametrize(("text", "count"), COOKBOOK)
def test_text_tokens_cookbook_examples(text: str, count: int) -> None:
    # Rare words split more than the estimate assumes: within 2 tokens.
    assert abs(text_tokens(text) - count) <= 2


def test_text_tokens_exact_on_numbers_and_timestamps() -> None:
    assert text_tokens("2 + 2 = 4") == 7
    assert text_tokens("[0:00.0]") == 7
    assert text_tokens("") == 0


@pytest.mark.parametrize(("text", "count"), O200K)
def test_text_tokens_each_within_20_percent(text: str, count: int) -> None:
    assert abs(text_tokens(text) - count) <= max(2, 0.2 * count)


def test_text_tokens_total_within_5_percent() -> None:
    real = sum(c for _, c in O200K)
    est = sum(text_tokens(t) for t, _ in O200K)
    assert abs(est - real) / real < 0.05


def test_text_tokens_scale_with_length() -> None:
    one = text_tokens("The boats rest in the evening light. ")
    assert text_tokens("The boats rest in the evening light. " * 100) == pytest.approx(
        100 * one, rel=0.05
    )


# --- requests --------------------------------------------------------------------------------


def test_messages_tokens_cookbook_example() -> None:
    # The cookbook's example conversation: 124 prompt tokens on gpt-4o per the API.
    messages = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that translates corporate "
            "jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have more bandwidth to touch base on "
            "opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the ocean for the "
            "client deliverable.",
        },
    ]
    est = messages_tokens("gpt-4o", messages)
    assert est.overhead_tokens == 6 * 3 + 4 * 1 + 3
    assert est.total == pytest.approx(124, rel=0.15)


def _jpeg(width: int, height: int) -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".jpg", np.zeros((height, width, 3), np.uint8))
    assert ok
    return bytes(buf)


def test_image_sizes_are_read_from_headers() -> None:
    assert image_size(_jpeg(320, 180)) == (320, 180)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big")
    png += (480).to_bytes(4, "big")
    assert image_size(png) == (640, 480)
    assert image_size(b"GIF89a" + (7).to_bytes(2, "little") + (9).to_bytes(2, "little")) == (7, 9)
    assert image_size(b"not an image") is None
    url = "data:image/jpeg;base64," + base64.b64encode(_jpeg(96, 64)).decode()
    assert data_url_size(url) == (96, 64)
    assert data_url_size("https://example.com/a.jpg") is None


def test_messages_tokens_counts_images_from_data_urls() -> None:
    url = "data:image/jpeg;base64," + base64.b64encode(_jpeg(768, 432)).decode()
    messages = [
        {"role": "system", "content": "Describe."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[0:00.0]"},
                {"type": "image_url", "image_url": {"url": url, "detail": "low"}},
                {"type": "text", "text": "[0:01.0]"},
                {"type": "image_url", "image_url": {"url": url}},
            ],
        },
    ]
    est = messages_tokens("gpt-4o", messages)
    assert est.images == 2
    assert est.image_tokens == 85 + image_tokens("gpt-4o", 768, 432, "auto").tokens
    assert est.known
    remote = messages_tokens(
        "gpt-4o",
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}],
    )
    assert remote.image_tokens == image_tokens("gpt-4o", 2048, 2048, "auto").tokens
    assert any("unknown size" in n for n in remote.notes)


def test_messages_tokens_counts_the_response_format() -> None:
    messages = [{"role": "user", "content": "hi"}]
    schema = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}
    assert messages_tokens("gpt-4o", messages, response_format=schema).text_tokens > (
        messages_tokens("gpt-4o", messages).text_tokens
    )


def test_request_tokens_adds_images_text_and_framing() -> None:
    est = request_tokens(
        "gpt-5.4-mini", texts=["[0:00.0]", "[0:01.0]"], images=[(768, 432)] * 2, detail="high"
    )
    assert est.image_tokens == 2 * image_tokens("gpt-5.4-mini", 768, 432, "high").tokens
    assert est.text_tokens == 14
    assert est.overhead_tokens == message_overhead(2) == 9
    assert est.total == est.image_tokens + est.text_tokens + est.overhead_tokens
    assert est.known
    unknown = request_tokens("mystery-vlm", images=[(64, 64)])
    assert not unknown.known and unknown.notes
