"""POST /v1/chat/completions and its per-provider and per-conversation forms."""

from __future__ import annotations

import asyncio
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
    stream_response: web.StreamResponse | None = None
    try:
        if chat.stream:
            stream_response, transcript = await _stream(request, chat, run, headers, extra)
        else:
            transcript = Transcript()
            try:
                async with asyncio.timeout(config.timeout):
                    await _collect(request, run, transcript)
            except TimeoutError:
                raise errors.ProviderTimeoutError(
                    f"Provider '{entry.name}' did not finish within {config.timeout:g}s"
                ) from None
    finally:
        await run.close()
    if transcript is not None and conv_key:
        if transcript.state is not None:
            await store.save(conv_key, entry.name, transcript.state)
        await remember_turn(store, conv_key, chat, transcript)
    if stream_response is not None:
        return stream_response
    body = completion_body(
        transcript,
        chat,
        completion_id=new_completion_id(),
        model=run.route.model,
        provider=entry.name,
        extra=extra,
    )
    return json_response(body, headers=headers)


async def _collect(request: web.Request, run: ChatRun, transcript: Transcript) -> None:
    add = transcript.add
    async for event in run.events():
        if isinstance(event, ev.Media) and event.url is None:  # inline: no await per event
            event = await request.app[MEDIA].publish(event, request)
        add(event)


async def _stream(
    request: web.Request,
    chat: ChatRequest,
    run: ChatRun,
    headers: dict[str, str],
    extra: dict[str, Any] | None,
) -> tuple[web.StreamResponse, Transcript | None]:
    """Stream the answer; the transcript is None when it ended in an error."""
    renderer = ChunkRenderer(new_completion_id(), run.route.model, run.route.entry.name)
    transcript = Transcript()
    response = await sse.open_stream(request, headers)
    write = response.write
    await write(renderer.role())
    try:
        add, render, queue = transcript.add, renderer.render, response.queue
        async for event in run.events():
            if isinstance(event, ev.Media) and event.url is None:
                event = await request.app[MEDIA].publish(event, request)
            add(event)
            line = render(event)
            if line is not None and queue(line):
                await response.flush()
    except errors.G4FError as exc:
        # Headers are sent: the failure travels in the stream, never as a silent stop.
        log.info("stream_failed", provider=run.route.entry.name, code=exc.code, status=exc.status)
        await write(sse.event(exc.to_dict()))
        await write(sse.DONE)
        return response, None
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as exc:
        error = errors.ProviderError(f"Provider '{run.route.entry.name}' failed unexpectedly")
        log.error("provider_crashed", provider=run.route.entry.name, exc_info=exc)
        await write(sse.event(error.to_dict()))
        await write(sse.DONE)
        return response, None
    await write(renderer.finish(transcript, extra))
    if chat.wants_usage_chunk:
        await write(renderer.usage(transcript, chat))
    await write(sse.DONE)
    return response, transcript
