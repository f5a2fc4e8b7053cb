"""A deferring session for `--batch`: chat answered from the cache, or the request set aside.

Takes a run's Session; gives a DeferringSession whose chat never calls the server: an answer
comes from the response cache (with what it cost when this run's batches gave it); a request
without one goes to the ledger (runs/batch_state.py) and stops the flow that asked (Deferred), to
be sent in the next Batch API round (runs/batch_api.py); one whose batch line failed fails its
input.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from ..errors import ApiError, ConfigError
from ..models import Usage
from ..session import Session
from ..vision.chat import cached_answer, chat_body, chat_key

T = TypeVar("T", bound=BaseModel)


class Deferred(Exception):
    """A chat request with no answer yet: a --batch run sends it in its next round. The flow
    that asked stops here, before it writes anything, and runs again once it is answered."""

    def __init__(self, key: str) -> None:
        super().__init__(f"chat request {key[:12]} waits for the Batch API")
        self.key = key


class ChatLedger(Protocol):
    """What a --batch run knows of its chat requests (runs/batch_api.py keeps it)."""

    def answered(self, key: str) -> bool:
        """Whether this run's batches answered `key` (its cost then counts for the input)."""
        ...

    def failure(self, key: str) -> str | None:
        """Why the batch gave no usable answer to `key`, or None."""
        ...

    def defer(self, key: str, schema: type[BaseModel], body: dict[str, Any]) -> None:
        """Send this request (its /chat/completions body) in the next round."""
        ...


@dataclass
class DeferringSession(Session):
    """A Session whose chat never calls the server: an answer comes from the response cache
    (with what it cost when this run's batches gave it); a request without one goes to the
    ledger and stops the flow (Deferred); one whose batch line failed fails its input."""

    ledger: ChatLedger | None = None

    def chat(self, schema: type[T], messages: Sequence[dict[str, Any]]) -> tuple[T, Usage]:
        ledger, cache = self.ledger, self.cache
        if ledger is None or cache is None:
            raise ConfigError("--batch needs the response cache (drop --no-cache)")
        o = self.chat_options
        key = chat_key(schema, messages, o)
        hit = cached_answer(cache, schema, key)
        if hit is not None:
            return hit[0], (hit[1] if ledger.answered(key) else Usage())
        why = ledger.failure(key)
        if why is not None:
            raise ApiError(why)
        ledger.defer(key, schema, chat_body(schema, messages, o))
        raise Deferred(key)


def deferring(session: Session) -> DeferringSession:
    """`session` for a --batch run. The chunks of a video are asked at least two at a time, so
    that every chunk's request is deferred in the same round even with --jobs 1."""
    o = session.options
    plan = o.plan.model_copy(update={"batch": True})  # answers at the Batch API's price
    options = dataclasses.replace(o, jobs=max(2, o.jobs), plan=plan)
    return DeferringSession(
        options=options,
        client=session.client,
        key=session.key,
        cache=session.cache,
        report=session.report,
        warn=session.warn,
        memory=session.memory,
    )
