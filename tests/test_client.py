"""Client: construction, redaction, and the mapping of SDK failures to one-line ApiErrors."""

from __future__ import annotations

import httpx2
import openai
import pytest
import respx

from vnarrate.errors import ApiError
from vnarrate.server.client import make_client, map_api_error, one_line, redact

KEY = "sk-test-SECRET-0123456789abcdef"


def test_make_client_uses_settings() -> None:
    c = make_client(api_key=KEY, base_url="http://localhost:1234/v1", timeout=5, max_retries=7)
    assert str(c.base_url).startswith("http://localhost:1234/v1")
    assert c.max_retries == 7 and c.timeout == 5


def test_redact_masks_given_secret_and_keylike_strings() -> None:
    text = f"key {KEY} and Bearer abc.def and sk-proj-abcdefghijkl"
    out = redact(text, KEY)
    assert KEY not in out and "abc.def" not in out and "sk-proj-abcdefghijkl" not in out


def test_one_line() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000, 50)) == 50


def test_connection_error_names_the_server(api: respx.Router) -> None:
    api.get("/models").mock(side_effect=httpx2.ConnectError("connection refused"))
    client = make_client(api_key=KEY, base_url=None, timeout=5, max_retries=0)
    with pytest.raises(openai.APIConnectionError) as exc:
        client.models.list()
    err = map_api_error(exc.value)
    assert isinstance(err, ApiError) and "cannot reach api.openai.com" in str(err)
    assert err.exit_code == 5


def test_timeout(api: respx.Router) -> None:
    api.get("/models").mock(side_effect=httpx2.ReadTimeout("read timed out"))
    client = make_client(api_key=KEY, base_url=None, timeout=5, max_retries=0)
    with pytest.raises(openai.APITimeoutError) as exc:
        client.models.list()
    assert "timed out" in str(map_api_error(exc.value))


def test_status_error_never_leaks_the_key(api: respx.Router) -> None:
    api.get("/models").respond(401, json={"error": {"message": f"Incorrect API key {KEY}"}})
    client = make_client(api_key=KEY, base_url=None, timeout=5, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        client.models.list()
    text = str(map_api_error(exc.value, key=KEY))
    assert "401" in text and KEY not in text
