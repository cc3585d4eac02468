"""POST /v1/chat/completions and its per-provider and per-conversation forms."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from g4f_server import errors, sse
from g4f_server import events as ev
from g4f_server.context import make_context, provider_key
from g4f_server.conversations import conversation_key, remember_turn, with_history
from g4f_server.dispatch import ChatRun, start_chat
from g4f_server.jsonio import json_response, read_json
from g4f_server.keys import CONFIG, CONVERSATIONS, MEDIA, REGISTRY
from g4f_server.logs import get_logger
from g4f_server.protocols.openai_chat import (
    ChunkRenderer,
    Transcript,
    completion_body,
    new_completion_id,
)
from g4f_server.registry import ProviderEntry
from g4f_server.router import resolve
from g4f_server.routes import request_body
from g4f_server.routes._service import served_headers
from g4f_server.schemas.chat import ChatRequest
from g4f_server.validation import parse_model

log = get_logger("g4f_server.chat")


@request_body(ChatRequest)
async def chat_completions(request: web.Request) -> web.StreamResponse:
    """Create a chat completion (OpenAI-compatible; streaming with `stream: true`)."""
    app = request.app
    config = app[CONFIG]
    chat = parse_model(ChatRequest, await read_json(request))
    provider = request.match_info.get("provider") or chat.provider
    conversation_id = request.match_info.get("conversation_id") or chat.conversation_id
    if chat.proxy and not config.allow_request_proxy:
        raise errors.InvalidRequestError(
            "The 'proxy' field is disabled on this server; the operator can enable it "
            "with --allow-request-proxy",
            param="proxy",
            code="proxy_not_allowed",
        )
    store = app[CONVERSATIONS]
    key = provider_key(request, chat.api_key)
    # Scoped store key of the client's id (see conversations.conversation_key).
    conv_key = None
    if conversation_id:
        conv_key = conversation_key(
            request.headers, conversation_id, provider_key=key, user=chat.user
        )
        chat = await with_history(store, conv_key, chat)
    routes = resolve(
        app[REGISTRY],
        config,
        capability="chat",
        model=chat.model,
        provider=provider,
        needs=chat.needed_capabilities(),
    )
    states: dict[str, Any] = {}
    if conv_key:
        for route in routes:
            states[route.entry.name] = await store.load(conv_key, route.entry.name)

    def ctx_for(entry: ProviderEntry) -> Any:
        return make_context(
            app,
            entry,
            request,
            api_key=key,
            proxy=chat.proxy or config.proxy,
            conversation_id=conversation_id,
            conversation=states.get(entry.name),
        )

    run = await start_chat(
        routes,
        chat,
        ctx_for,
        first_event_timeout=config.timeout,
        idle_timeout=config.stream_timeout,
    )
    entry = run.route.entry
    headers = served_headers(request, run.route, run.attempts)
    extra = {"conversation_id": conversation_id} if conversation_id else None

    async def remember(transcript: Transcript) -> None:
        """Store the turn before the client sees the end of the answer, so that its next
        request (on any connection) finds it."""
        if not conv_key:
            return
        try:
            if transcript.state is not None:
                await store.save(conv_key, entry.name, transcript.state)
            await remember_turn(store, conv_key, chat, transcript)
        except Exception as exc:  # the answer is complete: deliver it, report the store
            log.error("conversation_not_saved", provider=entry.name, exc_info=exc)

    try:
        if chat.stream:
            return await _stream(request, chat, run, headers, extra, remember)
        transcript = Transcript()
        await _collect(request, run, transcript, config.timeout)
    finally:
        await run.close()
    await remember(transcript)
    body = completion_body(
        transcript,
        chat,
        completion_id=new_completion_id(),
        model=run.route.model,
        provider=entry.name,
        extra=extra,
    )
    return json_response(body, headers=headers)


async def _collect(
    request: web.Request, run: ChatRun, transcript: Transcript, within: float
) -> None:
    """The whole answer, read within ``within`` seconds (on the stream's own watchdog:
    one timer for both limits)."""
    add = transcript.add
    async for batch in run.batches(within):
        for event in batch:
            if isinstance(event, ev.Media) and event.url is None:  # inline: no await per event
                event = await request.app[MEDIA].publish(event, request)
            add(event)


async def _stream(
    request: web.Request,
    chat: ChatRequest,
    run: ChatRun,
    headers: dict[str, str],
    extra: dict[str, Any] | None,
    remember: Callable[[Transcript], Awaitable[None]],
) -> web.StreamResponse:
    """Stream the answer: one write per batch the provider yielded, the role chunk with
    the first. A failure after the headers travels in the stream, never as a silent stop."""
    renderer = ChunkRenderer(new_completion_id(), run.route.model, run.route.entry.name)
    transcript = Transcript()
    response = await sse.open_stream(request, headers)
    lines = [renderer.role()]
    try:
        add, render, write = transcript.add, renderer.render, response.write
        async for batch in run.batches():
            for event in batch:
                if isinstance(event, ev.Media) and event.url is None:
                    event = await request.app[MEDIA].publish(event, request)
                add(event)
                if (line := render(event)) is not None:
                    lines.append(line)
            if lines:
                await write(b"".join(lines))
                lines.clear()
    except errors.G4FError as exc:
        log.info("stream_failed", provider=run.route.entry.name, code=exc.code, status=exc.status)
        await response.write_eof(b"".join([*lines, sse.event(exc.to_dict()), sse.DONE]))
        return response
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        error = errors.ProviderError(f"Provider '{run.route.entry.name}' failed unexpectedly")
        log.error("provider_crashed", provider=run.route.entry.name, exc_info=exc)
        await response.write_eof(b"".join([*lines, sse.event(error.to_dict()), sse.DONE]))
        return response
    await remember(transcript)
    lines.append(renderer.finish(transcript, extra))
    if chat.wants_usage_chunk:
        lines.append(renderer.usage(transcript, chat))
    lines.append(sse.DONE)
    await response.write_eof(b"".join(lines))  # the last chunks and the end in one write
    return response
