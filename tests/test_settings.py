"""Settings: defaults, env, .env, flags, precedence, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnarrate.errors import ConfigError, UsageError
from vnarrate.server.providers import detect_provider
from vnarrate.session import api_key, stage_options
from vnarrate.settings import Settings, load_settings


def key_of(s: Settings) -> str:
    return api_key(s, stage_options(s).profile)


def test_defaults_are_current_models() -> None:
    s = load_settings()
    assert s.model == "gpt-5.4-mini"
    assert not s.model.startswith(("gpt-4o", "gpt-4.1")) and s.model != "gpt-5"
    assert s.resize == 768 and s.detail == "auto" and s.temperature is None
    assert s.max_completion_tokens >= 4000  # room for a reasoning model's hidden tokens


def test_precedence_flag_env_dotenv_default(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("VNARRATE_MODEL=from-dotenv\nVNARRATE_RESIZE=512\nVNARRATE_STRIDE=7\n")
    s = load_settings()
    assert (s.model, s.resize, s.stride) == ("from-dotenv", 512, 7)
    monkeypatch.setenv("VNARRATE_MODEL", "from-env")
    s = load_settings()
    assert (s.model, s.resize) == ("from-env", 512)
    s = load_settings(model="from-flag", resize=None)
    assert (s.model, s.resize) == ("from-flag", 512)


def test_openai_env_names_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-123456")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    s = load_settings()
    assert key_of(s) == "sk-from-env-123456"
    assert s.base_url == "http://localhost:11434/v1"
    assert stage_options(s).provider == "ollama"
    assert stage_options(s).chat.token_field == "max_tokens"
    assert "sk-from-env" not in repr(s) and "sk-from-env" not in str(s.model_dump())


def test_key_in_dotenv(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("OPENAI_API_KEY=sk-dotenv-abcdef\n")
    assert key_of(load_settings()) == "sk-dotenv-abcdef"


def test_unrelated_env_vars_are_not_read(monkeypatch: pytest.MonkeyPatch) -> None:
    # LANGUAGE and MODEL are common in shells; only VNARRATE_* names count.
    monkeypatch.setenv("LANGUAGE", "en_US:en")
    monkeypatch.setenv("MODEL", "nope")
    s = load_settings()
    assert s.language is None and s.model == "gpt-5.4-mini"


def test_missing_key_says_how_to_set_it() -> None:
    with pytest.raises(ConfigError) as err:
        key_of(load_settings())
    text = str(err.value)
    assert "OPENAI_API_KEY" in text and ".env" in text and "--api-key" in text
    assert err.value.exit_code == 3


def test_local_server_needs_no_key() -> None:
    s = load_settings(base_url="http://localhost:11434/v1")
    assert key_of(s) == "not-needed"


def test_bad_env_value_is_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNARRATE_STRIDE", "0")
    with pytest.raises(ConfigError, match="VNARRATE_STRIDE"):
        load_settings()


def test_bad_flag_value_is_usage_error() -> None:
    with pytest.raises(UsageError, match="--resize") as err:
        load_settings(resize=5)
    assert err.value.exit_code == 2


@pytest.mark.parametrize(
    ("url", "provider"),
    [
        (None, "openai"),
        ("https://api.openai.com/v1", "openai"),
        ("http://localhost:11434/v1", "ollama"),
        ("http://127.0.0.1:1234/v1", "lmstudio"),
        ("http://gpu-box:8000/v1", "compatible"),
    ],
)
def test_detect_provider(url: str | None, provider: str) -> None:
    assert detect_provider(url) == provider


def test_frame_choice_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNARRATE_FRAMES", "5")
    assert load_settings().sample == "count"
    assert load_settings(sample="interval").sample == "interval"  # an explicit mode wins
    monkeypatch.setenv("VNARRATE_EVERY", "2")
    with pytest.raises(ConfigError, match="VNARRATE_FRAMES and VNARRATE_EVERY both choose"):
        load_settings()
    monkeypatch.setenv("VNARRATE_SAMPLE", "interval")
    assert stage_options(load_settings()).sampling.every_s == 2


# --- no default model near its shutdown (issue 12, item 17) -----------------------------------


def test_no_default_model_is_within_60_days_of_a_known_shutdown() -> None:
    import datetime

    from vnarrate.server.prices import shutdown_date, shutdowns
    from vnarrate.session import speech_model

    today = max(datetime.date.today(), datetime.date(2026, 12, 5))
    s = Settings()
    defaults = {
        "model": s.model,
        "realtime_model": s.realtime_model,
        # `--tts-model auto` on OpenAI and on other servers, as a new user's command runs.
        "tts_model on OpenAI": speech_model(s, "openai"),
    }
    # Off OpenAI, `auto` sends the name compatible speech servers accept (tts-1): it is not
    # OpenAI's model there, and is never what `auto` asks of OpenAI.
    assert speech_model(s, "openai") != speech_model(s, "compatible")
    assert shutdowns().models  # the table is there, dated
    for name, model in defaults.items():
        date = shutdown_date(model)
        assert date is None or (date - today).days > 60, (name, model, date)


def test_tts_model_auto_speaks_over_realtime_on_openai_and_keeps_speech_only_voices() -> None:
    from vnarrate.session import speech_model

    assert Settings().tts_model == "auto"
    assert speech_model(Settings(), "openai") == "gpt-realtime-2.1-mini"
    assert speech_model(Settings(), "ollama") == "tts-1"
    # A voice only /audio/speech has, or that endpoint asked for: its model while it is served.
    assert speech_model(Settings(voice="onyx"), "openai") == "gpt-4o-mini-tts"
    assert speech_model(Settings(tts_backend="speech"), "openai") == "gpt-4o-mini-tts"
    assert speech_model(Settings(tts_model="tts-1-hd"), "openai") == "tts-1-hd"


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("false", "off"),
        ("0", "off"),
        ("true", "narration"),
        ("Both", "both"),
        ("dialogue", "dialogue"),
    ],
)
def test_subtitles_take_a_mode_and_the_old_switch_values(
    monkeypatch: pytest.MonkeyPatch, value: str, mode: str
) -> None:
    monkeypatch.setenv("VNARRATE_SUBTITLES", value)
    assert Settings().subtitles == mode


def test_subtitles_refuse_an_unknown_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNARRATE_SUBTITLES", "karaoke")
    with pytest.raises(ConfigError, match="VNARRATE_SUBTITLES"):
        load_settings()
