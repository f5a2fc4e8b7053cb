"""The server check (`vnarrate models`): a client -> is the server reachable, is the key accepted,
which models does it offer, is the configured one among them?

Takes an OpenAI client, the model and the provider; gives a ServerReport with one verdict and a
hint, never an exception for a server problem. GET /models once, no retries, short timeout.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from .providers import PROFILES, ProviderProfile, detect_provider

if TYPE_CHECKING:
    import openai

Verdict = Literal[
    "ok", "model_missing", "no_models", "bad_key", "unreachable", "wrong_url", "error"
]


class ServerReport(BaseModel):
    """What `vnarrate models` / `doctor` found out about the configured server."""

    base_url: str
    provider: str
    model: str
    verdict: Verdict
    ok: bool  # the configured model can be asked (or the server does not say it cannot)
    reachable: bool
    key_ok: bool | None  # None: not known (the server could not be reached)
    models: list[str] = Field(default_factory=list)
    model_listed: bool | None = None  # None: the list could not be read
    message: str
    hint: str | None = None
    notes: list[str] = Field(default_factory=list)

    def lines(self) -> list[str]:
        """The report as the CLI prints it (stdout), one fact a line."""
        out = [
            f"server:   {self.base_url} ({PROFILES.get(self.provider, PROFILES['compatible']).label})",
            f"reached:  {'yes' if self.reachable else 'no'}",
        ]
        if self.key_ok is not None:
            out.append(f"key:      {'accepted' if self.key_ok else 'rejected'}")
        if self.models:
            out.append(f"models:   {len(self.models)}")
            out.extend(f"  {'*' if m == self._listed_as() else ' '} {m}" for m in self.models)
        if self.model_listed is not None:
            out.append(
                f"model:    {self.model} ({'listed' if self.model_listed else 'NOT listed'})"
            )
        out.append(f"verdict:  {'OK' if self.ok else 'PROBLEM'}: {self.message}")
        if self.hint:
            out.append(f"hint:     {self.hint}")
        out.extend(f"note:     {n}" for n in self.notes)
        return out

    def _listed_as(self) -> str | None:
        return _find_model(self.model, self.models)


def _find_model(model: str, models: list[str]) -> str | None:
    """The listed id the configured model refers to. Ollama serves `llava` as `llava:latest`."""
    if model in models:
        return model
    for m in models:
        if ":" not in model and m == f"{model}:latest":
            return m
        if m.lower() == model.lower():
            return m
    return None


def _pull_hint(profile: ProviderProfile, model: str, models: list[str]) -> str:
    close = difflib.get_close_matches(model, models, n=3, cutoff=0.5)
    did_you_mean = f"did you mean {', '.join(close)}? " if close else ""
    how = f"{profile.pull_hint.format(model=model)}, or " if profile.pull_hint else ""
    return f"{did_you_mean}{how}pick one of the listed models with --model"


def _failure(exc: Exception, base_url: str, profile: ProviderProfile) -> tuple[Verdict, str, str]:
    """(verdict, message, hint) for a failed GET /models."""
    import openai

    if isinstance(exc, openai.AuthenticationError):
        if profile.dummy_key_ok:
            return (
                "bad_key",
                "the API key was rejected (401)",
                ("this server was started with an API key: pass the same one with --api-key"),
            )
        return "bad_key", "the API key was rejected (401)", "check OPENAI_API_KEY / --api-key"
    if isinstance(exc, openai.PermissionDeniedError):
        return (
            "bad_key",
            "the key may not list models (403)",
            ("check the key's permissions, or the project it belongs to"),
        )
    if isinstance(exc, openai.APITimeoutError):
        return (
            "unreachable",
            f"{base_url} did not answer in time",
            ("is the server running and loaded? check --base-url"),
        )
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc.__context__
        why = f": {' '.join(str(cause).split())[:120]}" if cause and str(cause) else ""
        start = f" ({profile.start_hint})" if profile.start_hint else ""
        default = profile.default_base_url
        hint = f"is the server running{start}? check --base-url" + (
            f" (default for {profile.label}: {default})" if default else ""
        )
        return "unreachable", f"cannot connect to {base_url}{why}", hint
    if isinstance(exc, openai.NotFoundError):
        return (
            "wrong_url",
            f"{base_url}/models does not exist (404)",
            ("the base URL usually ends in /v1"),
        )
    if isinstance(exc, openai.APIStatusError):
        return (
            "error",
            f"the server answered {exc.status_code} to GET /models",
            ("try again; if it persists, look at the server's log"),
        )
    # A web page or another API at this URL (the SDK hands back text, not a model list).
    return (
        "wrong_url",
        f"{base_url} answered, but not with an OpenAI model list",
        ("check --base-url: it usually ends in /v1"),
    )


def check_server(client: openai.OpenAI, *, model: str, provider: str | None = None) -> ServerReport:
    """GET /models once (no retries, short timeout) and judge the key, the URL and the model.

    Never raises for a server problem: every outcome is a ServerReport with a verdict.
    """
    import openai

    base_url = str(client.base_url).rstrip("/")
    name = provider if provider in PROFILES else detect_provider(base_url)
    profile = PROFILES[name]

    def report(verdict: Verdict, message: str, **kw: Any) -> ServerReport:
        known_key = verdict in ("ok", "model_missing", "no_models")
        fields: dict[str, Any] = {
            "ok": verdict == "ok",
            "reachable": verdict != "unreachable",
            "key_ok": True if known_key else (False if verdict == "bad_key" else None),
            **kw,
        }
        return ServerReport(
            base_url=base_url,
            provider=name,
            model=model,
            verdict=verdict,
            message=message,
            **fields,
        )

    try:
        # One quick try: a doctor that waits through the SDK's retries looks hung.
        page = client.with_options(max_retries=0, timeout=10.0).models.list()
        models = sorted({str(m.id) for m in page.data})
    except (openai.OpenAIError, AttributeError, TypeError, ValueError) as exc:
        verdict, message, hint = _failure(exc, base_url, profile)
        return report(verdict, message, hint=hint)

    if not models:
        how = profile.pull_hint.format(model=model) if profile.pull_hint else None
        return report(
            "no_models",
            "the server lists no models",
            models=models,
            model_listed=False,
            hint=how or "load a model on the server",
        )
    if _find_model(model, models) is not None:
        notes = [f"{profile.label} ignores the key unless it was started with one"]
        return report(
            "ok",
            f"{model} is available",
            models=models,
            model_listed=True,
            notes=notes if profile.dummy_key_ok else [],
        )
    if name == "llamacpp":
        # A single-model llama-server answers whatever `model` says with the model it loaded.
        return report(
            "ok",
            f"{model} is not listed, but llama-server serves its loaded model whatever the name",
            models=models,
            model_listed=False,
        )
    return report(
        "model_missing",
        f"{model} is not among the server's {len(models)} models",
        models=models,
        model_listed=False,
        hint=_pull_hint(profile, model, models),
    )
