"""Prices: the packaged table, user overrides, costs, and unknown models costing None."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vnarrate.errors import ConfigError
from vnarrate.models import Usage
from vnarrate.server.prices import (
    AUDIO_TOKENS_PER_MINUTE,
    chat_cost,
    format_usd,
    load_prices,
    merge_prices,
    packaged_prices,
    speech_cost,
    transcription_cost,
)


def test_packaged_table_is_dated_sourced_and_has_the_defaults() -> None:
    table = packaged_prices()
    assert table.as_of and table.source and table.currency == "USD"
    # The settings' defaults must be priced, or every default run shows "unknown".
    assert table.chat_price("gpt-5.4-mini") is not None
    assert table.speech_price("gpt-4o-mini-tts") is not None
    assert table.speech_price("gpt-realtime-2.1-mini") is not None
    assert table.speech_price("tts-1").per_1m_characters == 15.0  # type: ignore[union-attr]
    assert table.speech_price("tts-1-hd").per_1m_characters == 30.0  # type: ignore[union-attr]


def test_packaged_data_ships_inside_the_package() -> None:
    import vnarrate

    assert (Path(vnarrate.__file__).parent / "data" / "prices.json").is_file()


def test_chat_cost_per_million() -> None:
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, requests=1)
    assert chat_cost("gpt-5.4-mini", usage) == pytest.approx(0.75 + 4.50)
    assert chat_cost("gpt-4o", usage) == pytest.approx(2.50 + 10.00)


def test_chat_cost_bills_cached_tokens_at_the_cached_rate() -> None:
    usage = Usage(prompt_tokens=10_000, cached_tokens=4_000, completion_tokens=500, requests=1)
    expected = (6_000 * 0.75 + 4_000 * 0.075 + 500 * 4.50) / 1_000_000
    assert chat_cost("gpt-5.4-mini", usage) == pytest.approx(expected)


def test_reasoning_tokens_are_not_billed_twice() -> None:
    # reasoning_tokens are part of completion_tokens in Chat Completions usage.
    a = Usage(prompt_tokens=100, completion_tokens=1000, reasoning_tokens=800, requests=1)
    b = Usage(prompt_tokens=100, completion_tokens=1000, requests=1)
    assert chat_cost("gpt-5.4", a) == chat_cost("gpt-5.4", b)


def test_long_context_surcharge_applies_to_one_long_request() -> None:
    long = Usage(prompt_tokens=300_000, completion_tokens=1000, requests=1)
    expected = (300_000 * 2.50 * 2 + 1000 * 15.00 * 1.5) / 1_000_000
    assert chat_cost("gpt-5.4", long) == pytest.approx(expected)
    short = Usage(prompt_tokens=200_000, completion_tokens=1000, requests=1)
    assert chat_cost("gpt-5.4", short) == pytest.approx((200_000 * 2.5 + 1000 * 15) / 1e6)
    # A sum over several requests cannot tell which was long: standard rates.
    summed = Usage(prompt_tokens=300_000, completion_tokens=1000, requests=3)
    assert chat_cost("gpt-5.4", summed) == pytest.approx((300_000 * 2.5 + 1000 * 15) / 1e6)


def test_dated_and_routed_names_find_their_price() -> None:
    usage = Usage(prompt_tokens=1_000_000, requests=1)
    assert chat_cost("gpt-5.4-mini-2026-03-17", usage) == pytest.approx(0.75)
    assert chat_cost("openai/gpt-4o-2024-08-06", usage) == pytest.approx(2.50)
    assert chat_cost("GPT-4o", usage) == pytest.approx(2.50)


@pytest.mark.parametrize("model", ["llava:13b", "gpt-5.4-pro", "gpt-5.4-mini-fast", "gpt-9"])
def test_unknown_models_cost_none_never_a_guess(model: str) -> None:
    assert chat_cost(model, Usage(prompt_tokens=1000, completion_tokens=10)) is None
    assert speech_cost(model, 1000, 60) is None


def test_speech_cost_per_character() -> None:
    assert speech_cost("tts-1", 1_000_000) == pytest.approx(15.0)
    assert speech_cost("tts-1-hd", 4096) == pytest.approx(4096 * 30 / 1e6)


def test_speech_cost_token_priced_models() -> None:
    # gpt-4o-mini-tts: $0.60/1M text input tokens, $12/1M audio output tokens, ~$0.015/minute.
    one_minute = speech_cost("gpt-4o-mini-tts", 900, 60.0)
    assert one_minute == pytest.approx(0.015, rel=0.05)
    assert one_minute == pytest.approx(
        (900 / 4) * 0.60 / 1e6 + AUDIO_TOKENS_PER_MINUTE * 12.0 / 1e6
    )
    # Without a duration, the length comes from the characters (15 a second): 900 -> 60 s.
    assert speech_cost("gpt-4o-mini-tts", 900) == pytest.approx(one_minute)
    realtime = speech_cost("gpt-realtime-2.1-mini", 900, 60.0)
    assert realtime == pytest.approx(225 * 0.60 / 1e6 + 225 * 2.40 / 1e6 + 1250 * 20 / 1e6)


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps(data))
    return path


def test_user_file_overrides_and_adds(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "as_of": "2027-01-01",
            "chat": {
                "gpt-5.4-mini": {"input": 1.0, "output": 2.0},
                "My-Local-VLM": {"input": 0, "output": 0},
            },
            "speech": {"tts-1": {"per_1m_characters": 10.0}},
        },
    )
    table = load_prices(path)
    usage = Usage(prompt_tokens=1_000_000, completion_tokens=1_000_000, requests=1)
    assert chat_cost("gpt-5.4-mini", usage, table) == pytest.approx(3.0)
    assert chat_cost("my-local-vlm", usage, table) == 0.0
    assert chat_cost("gpt-4o", usage, table) == pytest.approx(12.5)  # untouched entries stay
    assert speech_cost("tts-1", 1_000_000, prices=table) == pytest.approx(10.0)
    assert table.as_of == "2027-01-01"
    assert table.overrides == [str(path)]
    # An override without cached_input bills cached tokens at the input rate.
    cached = Usage(prompt_tokens=1_000_000, cached_tokens=1_000_000, requests=1)
    assert chat_cost("gpt-5.4-mini", cached, table) == pytest.approx(1.0)
    # The packaged table itself is not changed by an override.
    assert chat_cost("gpt-5.4-mini", usage) == pytest.approx(5.25)


def test_no_path_means_the_packaged_table() -> None:
    assert load_prices(None) == packaged_prices()
    assert load_prices("") == packaged_prices()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"chat": {"x": {"input": -1, "output": 1}}}', "chat.x.input"),
        ('{"chat": {"x": {"input": 1}}}', "chat.x.output"),
        ('{"chat": {"x": {"input": 1, "output": 1, "typo": 3}}}', "typo"),
    ],
)
def test_bad_user_files_are_configuration_errors(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as exc:
        load_prices(path)
    assert message in str(exc.value)
    assert exc.value.exit_code == 3


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_prices(tmp_path / "nope.json")


def test_merge_prices_in_memory() -> None:
    merged = merge_prices(packaged_prices(), {"chat": {"a": {"input": 1, "output": 1}}})
    assert merged.chat_price("a") is not None
    assert packaged_prices().chat_price("a") is None


def test_format_usd() -> None:
    assert format_usd(None) == "unknown"
    assert format_usd(0) == "$0.00"
    assert format_usd(0.00001) == "<$0.0001"
    assert format_usd(0.0123) == "$0.012"
    assert format_usd(0.00123) == "$0.0012"
    assert format_usd(12345.678) == "$12,345.68"


# --- GPT-6, prices by server, shutdowns (issue 12) ------------------------------------------


@pytest.mark.parametrize(
    ("model", "inp", "cached", "out"),
    [
        ("gpt-6-luna", 0.10, 0.01, 0.50),
        ("gpt-6.1-terra", 1.00, 0.05, 5.00),
        ("gpt-6.1-sol", 2.00, 0.10, 10.00),
        ("gpt-6.2-sol", 2.00, 0.10, 10.00),
        ("gpt-6.2-astra", 8.00, None, 40.00),
    ],
)
def test_gpt_6_prices(model: str, inp: float, cached: float | None, out: float) -> None:
    price = packaged_prices().chat_price(model)
    assert price is not None
    assert (price.input, price.cached_input, price.output) == (inp, cached, out)
    tenth = Usage(prompt_tokens=100_000, completion_tokens=100_000, requests=1)
    assert chat_cost(model, tenth) == pytest.approx((inp + out) / 10)


def test_an_unpublished_price_is_left_out_and_said_so() -> None:
    table = packaged_prices()
    assert any("gpt-6.2-astra" in n and "cached" in n for n in table.notes)
    # Cached tokens of gpt-6.2-astra cost the input rate: the estimate errs high, never low.
    cached = Usage(prompt_tokens=100_000, cached_tokens=100_000, requests=1)
    assert chat_cost("gpt-6.2-astra", cached) == pytest.approx(0.8)


def test_a_server_that_is_not_openai_gets_only_the_users_prices(tmp_path: Path) -> None:
    from vnarrate.server.prices import describe_cost, price_basis, prices_for

    assert price_basis(openai=True, local=False) == "table"
    assert price_basis(openai=False, local=True) == "free"
    assert price_basis(openai=False, local=False) == "unknown"
    file = tmp_path / "p.json"
    file.write_text(json.dumps({"chat": {"My-VLM": {"input": 1, "output": 1}}}))
    table = load_prices(file)
    theirs = prices_for(table, "unknown")
    assert theirs.chat_price("my-vlm") is not None and theirs.chat_price("gpt-5.4-mini") is None
    assert theirs.speech_price("gpt-4o-mini-tts") is None
    assert prices_for(table, "table").chat_price("gpt-5.4-mini") is not None
    assert describe_cost(0.0, "free") == "free"
    assert describe_cost(None, "unknown") == "unknown (no price for this server)"
    assert describe_cost(0.0, "table") == "$0.00"
    # A user's file cannot pose as the bookkeeping of which entries are theirs.
    file.write_text(json.dumps({"user_chat": ["gpt-5.4"], "chat": {}}))
    assert load_prices(file).user_chat == ["my-vlm"] or load_prices(file).user_chat == []


def test_shutdown_dates_are_kept_once_with_their_sources() -> None:
    import datetime

    from vnarrate.server.prices import shutdown_date, shutdowns

    assert shutdowns().as_of and shutdowns().sources
    assert shutdown_date("gpt-4o-mini-tts") == datetime.date(2027, 1, 6)
    assert shutdown_date("gpt-5-2025-08-07") == datetime.date(2026, 12, 11)
    assert shutdown_date("openai/gpt-4.1") == datetime.date(2027, 1, 14)
    assert shutdown_date("gpt-realtime-2.1-mini") is None and shutdown_date("gpt-5.4-mini") is None


def test_transcription_is_priced_per_minute_of_audio_sent() -> None:
    table = packaged_prices()
    # The default speech-to-text model is priced (OpenAI's model page: $0.0045 a minute).
    assert transcription_cost("gpt-transcribe", 60.0, table) == pytest.approx(0.0045)
    assert transcription_cost("openai/gpt-transcribe", 30.0, table) == pytest.approx(0.00225)
    assert transcription_cost("whisper-1", 120.0, table) == pytest.approx(0.012)
    assert transcription_cost("my-local-whisper", 60.0, table) is None
    mine = merge_prices(table, {"transcription": {"my-local-whisper": {"per_minute": 0.001}}})
    assert transcription_cost("my-local-whisper", 600.0, mine) == pytest.approx(0.01)
    with pytest.raises(ConfigError, match="transcription"):
        merge_prices(table, {"transcription": {"x": {"per_minute": -1}}})
