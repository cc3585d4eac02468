"""The one seam through which the operator's controls watch a turn.

The pipeline knows nothing of API keys, rate limits, metrics or demo mode: it calls these
four points, and ``controls/`` installs what runs there when the app is built (one
function per point, or None when no control cares: a server without controls pays one
attribute read per point).

- ``admitted(request, body)``: the body names its public model (and maybe a provider key
  or a proxy): a control may refuse the request by raising, before any provider is called.
  ``admitted_now`` is the same observer as a plain call, set beside it when it never
  awaits: a turn then needs no coroutine before the provider is called.
- ``cache_verdict(request, state)``: the response cache said ``hit``, ``miss`` or
  ``bypass``.
- ``first_token(request, provider)``: the provider's first part of the answer arrived.
- ``finished(request, transcript, chat)``: an answer is complete (its tokens count); a
  plain call that returns what is left to await, or None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from g4f_server.pipeline.transcript import Transcript
    from g4f_server.requests import ChatRequest


@dataclass(slots=True)
class Observers:
    admitted: Callable[[web.Request, Any], Awaitable[None]] | None = None
    admitted_now: Callable[[web.Request, Any], None] | None = None
    cache_verdict: Callable[[web.Request, str], None] | None = None
    first_token: Callable[[web.Request, str], None] | None = None
    finished: Callable[[web.Request, Transcript, ChatRequest], Awaitable[None] | None] | None = None


OBSERVERS: web.AppKey[Observers] = web.AppKey("observers")
