"""An emulator of the Copilot upstream (upstreams.md 1.14) for the plugin's tests.

It checks what the client sends (start body, socket query, handshake, send frames,
attachment auth) and can be scripted per turn: ``emu.script.append("error:invalid-event")``
makes the next turn answer with that error. Scenarios:

- ``normal``: the usual event sequence; chainOfThought in mode ``reasoning``, a citation in
  mode ``search`` or when the prompt says "cite", the image sequence when it says "draw".
- ``error:<code>`` / ``error:<code>:<message>``: an ``error`` frame with that errorCode
  (and message).
- ``empty``: ``received`` and ``done`` with no answer in between.
- ``odd-types``: fields of the wrong type (lists, objects, numbers) among normal ones;
  ``odd-error``: an ``error`` frame whose errorCode is a list and message an object.
- ``challenge`` / ``challenge:<method>``: a challenge before answering; the send is dropped
  and must come again after a matching challengeResponse. Method-less challenges pass with
  any token; ``cloudflare`` passes when the upgrade carried ``cf_clearance=cleared``; others
  fail (``challenge-failed``).
- ``stall``: one appendText, then silence. ``silence``: ``received``, then silence.
- ``close``: one appendText, then the server closes the socket.
- ``replace-extend`` / ``replace-rewrite``: replaceText that extends / rewrites the text.

Built on the kit's ``Upstream``: its faults (``fail("status", status=401)`` answers the
next REST call, ``"stall"`` holds it; ``"cut"``, ``"empty"`` and ``"hangup"`` apply to the
chat socket, counting the answer's events after ``startMessage``), ``open_requests`` and
``closed()`` detect a socket left open, and ``env(url)`` points the plugin here:
``g4f-server conformance copilot --emulator plugins/copilot/tests/emulator.py --faults``.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from g4f_server.testing.upstream import Fault, Upstream

ANON_COOKIE = "__Host-copilot-anon"
MAX_TEXT_CHARS = 10_240  # what Copilot's composer takes; longer texts are refused
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a bigger frame makes the server close the socket (1009)
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)


@dataclass
class Conversation:
    id: str
    owners: set[str]  # anon cookie values / tokens allowed to use it
    turns: list[dict[str, Any]] = field(default_factory=list)  # the send frames received


class _Stop(Exception):
    """A kit fault (cut, hangup) ends the answer here."""


@dataclass(eq=False)
class CopilotEmulator(Upstream):
    valid_tokens: set[str] = field(default_factory=lambda: {"good-token"})
    script: list[str] = field(default_factory=list)  # scenario per next turn, FIFO
    start_status: int | None = None  # force this HTTP status on /c/api/start
    # A login whose REST calls accept cookies only: 401 on /c/api/start and
    # /c/api/attachments when Authorization is sent (upstreams.md 1.3, 4.2).
    rest_rejects_bearer: bool = False
    odd_upload: bool = False  # /c/api/attachments answers a url that is not a string
    require_handshake: bool = True  # send before setOptions+reportLocalConsents -> invalid-event
    greet: bool = True  # send "connected" after the upgrade
    conversations: dict[str, Conversation] = field(default_factory=dict)
    starts: list[dict[str, Any]] = field(default_factory=list)  # {"body", "headers"}
    sockets: list[dict[str, Any]] = field(default_factory=list)  # {"query", "headers", "frames"}
    uploads: list[dict[str, Any]] = field(default_factory=list)
    downloads: list[str] = field(default_factory=list)  # generated images fetched
    open_sockets: int = 0
    _ids: Any = field(default_factory=itertools.count)

    answer_path = "/c/api/chat"  # the kit's answer faults go to the chat socket

    def __post_init__(self) -> None:
        Upstream.__init__(self)

    @property
    def base(self) -> str:
        """The server's root (the kit's ``url``): image and attachment URLs point here."""
        return self.url

    @base.setter
    def base(self, value: str) -> None:
        self.url = value

    def env(self, url: str) -> dict[str, str]:
        return {"COPILOT_URL": url}

    # --- helpers for tests -------------------------------------------------------------
    def forget(self, conversation_id: str) -> None:
        """The upstream drops a conversation (expiry): later sends of it are refused."""
        del self.conversations[conversation_id]

    def texts(self, conversation_id: str) -> list[str]:
        """The text part of every turn the client sent in a conversation."""
        return [t["content"][-1]["text"] for t in self.conversations[conversation_id].turns]

    @property
    def last_send(self) -> dict[str, Any]:
        sends = [f for s in self.sockets for f in s["frames"] if f.get("event") == "send"]
        return sends[-1]

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/c/api/start", self.start_conversation)
        app.router.add_get("/c/api/chat", self.chat)
        app.router.add_post("/c/api/attachments", self.attachments)
        app.router.add_get("/images/{name}", self.image)

    async def image(self, request: web.Request) -> web.Response:
        """The generated images' blob URLs (the gateway downloads them)."""
        self.downloads.append(request.match_info["name"])
        return web.Response(body=PNG, content_type="image/png")

    # --- REST ---------------------------------------------------------------------------
    async def start_conversation(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "invalid json"}, status=400)
        self.starts.append({"body": body, "headers": dict(request.headers)})
        if self.start_status:
            return web.json_response({"error": "forced"}, status=self.start_status)
        if not isinstance(body, dict) or body.get("startNewConversation") is not True:
            return web.json_response({"error": "startNewConversation missing"}, status=400)
        if not isinstance(body.get("timeZone"), str):
            return web.json_response({"error": "timeZone missing"}, status=400)
        owners = set()
        auth = request.headers.get("Authorization", "")
        if auth:
            if self.rest_rejects_bearer or auth.removeprefix("Bearer ") not in self.valid_tokens:
                return web.json_response({"error": "Invalid session"}, status=401)
            owners.add(auth.removeprefix("Bearer "))
        n = next(self._ids)
        conversation_id = f"conv-{n}"
        anon = request.cookies.get(ANON_COOKIE) or f"anon-{n}"
        owners.add(anon)
        self.conversations[conversation_id] = Conversation(conversation_id, owners)
        response = web.json_response({"currentConversationId": conversation_id})
        response.set_cookie(ANON_COOKIE, anon, path="/", httponly=True)
        return response

    async def attachments(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        if self.rest_rejects_bearer or auth.removeprefix("Bearer ") not in self.valid_tokens:
            return web.json_response({"error": "Unauthorized"}, status=401)
        n = next(self._ids)
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            self.uploads.append({"kind": "document", "form": dict(form)})
            return web.json_response({"id": f"doc-{n}"})
        data = await request.read()
        self.uploads.append({"kind": "image", "type": request.content_type, "size": len(data)})
        if self.odd_upload:
            return web.json_response({"url": [f"{self.base}/attachments/{n}.png"]})
        return web.json_response({"url": f"{self.base}/attachments/{n}.png"})

    # --- the chat socket ------------------------------------------------------------------
    async def chat(self, request: web.Request) -> web.StreamResponse:
        query = dict(request.query)
        if query.get("api-version") != "2":
            return web.json_response({"error": "api-version"}, status=400)
        token = query.get("accessToken")
        if token is not None and token not in self.valid_tokens:
            return web.json_response({"error": "Unauthorized"}, status=401)
        ws = web.WebSocketResponse(max_msg_size=MAX_FRAME_BYTES)
        await ws.prepare(request)
        record: dict[str, Any] = {"query": query, "headers": dict(request.headers), "frames": []}
        self.sockets.append(record)
        # A socket speaks for one identity: the signed-in user when it carries a token,
        # else whoever the anonymous cookie names.
        identities = {token} if token else {i for i in (request.cookies.get(ANON_COOKIE),) if i}
        record["cookies"] = dict(request.cookies)
        self.open_sockets += 1
        try:
            await self._serve(ws, record, query, identities, self.fault(request))
        except _Stop:
            fault = self.fault(request)
            if fault is not None and fault.kind == "cut" and request.transport is not None:
                request.transport.close()  # no close frame, no "done": the answer is cut
            else:  # a hang-up: nothing more until the client closes its socket
                while (await ws.receive()).type == WSMsgType.TEXT:
                    pass
        finally:
            self.open_sockets -= 1
        return ws

    async def _next(self, ws: web.WebSocketResponse, record: dict[str, Any]) -> dict | None:
        msg = await ws.receive()
        if msg.type != WSMsgType.TEXT:
            return None
        frame = msg.json()
        record["frames"].append(frame)
        return frame

    async def _serve(
        self,
        ws: web.WebSocketResponse,
        record: dict,
        query: dict,
        identities: set[str],
        fault: Fault | None = None,
    ) -> None:
        if self.greet:
            await ws.send_json({"event": "connected"})
        handshake: set[str] = set()
        while True:
            frame = await self._next(ws, record)
            if frame is None:
                return
            event = frame.get("event")
            if event in ("setOptions", "reportLocalConsents"):
                handshake.add(event)
                continue
            if event != "send":
                await ws.send_json({"event": "error", "errorCode": "invalid-event"})
                continue
            problem = self._check_send(frame, query, identities, handshake)
            if problem:
                code, _, message = problem.partition(":")
                error = {"event": "error", "errorCode": code}
                await ws.send_json(error | ({"message": message} if message else {}))
                continue
            scenario = self.script.pop(0) if self.script else "normal"
            if fault is not None and fault.kind == "empty":
                scenario = "empty"
            if scenario.startswith("challenge"):
                method = scenario.partition(":")[2] or None
                challenge_id = "0.4242"
                await ws.send_json(
                    {"event": "challenge", "method": method, "parameter": None, "id": challenge_id}
                )
                answer = await self._next(ws, record)
                if not answer or answer.get("event") != "challengeResponse":
                    return
                ok = answer.get("id") == challenge_id and answer.get("method") == method
                # A cloudflare challenge is passed by the clearance cookie on the upgrade.
                cleared = method is None or (
                    method == "cloudflare" and record["cookies"].get("cf_clearance") == "cleared"
                )
                if not ok or not cleared:
                    await ws.send_json({"event": "error", "errorCode": "challenge-failed"})
                    return
                frame = await self._next(ws, record)  # the held send, repeated
                if not frame or frame.get("event") != "send":
                    await ws.send_json({"event": "error", "errorCode": "invalid-event"})
                    return
                scenario = "normal"
            conversation = self.conversations[frame["conversationId"]]
            conversation.turns.append(frame)
            await self._answer(ws, frame, conversation, scenario, fault)
            if scenario in ("stall", "silence"):
                # Say nothing until the client gives up and closes.
                while (await ws.receive()).type == WSMsgType.TEXT:
                    pass
                return
            if scenario == "close":
                await ws.close(code=1011)
                return

    def _check_send(
        self, frame: dict, query: dict, identities: set[str], handshake: set[str]
    ) -> str | None:
        if not query.get("clientSessionId"):
            return "invalid-event"
        if self.require_handshake and handshake != {"setOptions", "reportLocalConsents"}:
            return "invalid-event"
        # Unknown, forgotten and other identities' conversations look the same.
        conversation = self.conversations.get(frame.get("conversationId"))
        if conversation is None or not conversation.owners & identities:
            return "invalid-event:unknown conversationId"
        content = frame.get("content")
        if not isinstance(content, list) or not content:
            return "invalid-event"
        last = content[-1]
        if last.get("type") != "text" or not isinstance(last.get("text"), str):
            return "invalid-event"
        # An empty message or an over-long one: refused without a reason.
        if not last["text"].strip() and len(content) == 1:
            return "invalid-event"
        if len(last["text"]) > MAX_TEXT_CHARS:
            return "invalid-event"
        if frame.get("mode") not in ("chat", "reasoning", "smart", "study", "search"):
            return "invalid-mode"
        return None

    async def _answer(
        self,
        ws: web.WebSocketResponse,
        frame: dict,
        conversation: Conversation,
        scenario: str,
        fault: Fault | None = None,
    ) -> None:
        text: str = frame["content"][-1]["text"]
        mode = frame["mode"]
        turn = len(conversation.turns)
        send = ws.send_json
        if fault is not None and fault.kind in ("cut", "hangup"):
            send = self._counting(ws, fault)
        await send({"event": "received"})
        if scenario.startswith("error:"):
            code, _, message = scenario.partition(":")[2].partition(":")
            error: dict[str, Any] = {"event": "error", "errorCode": code}
            if message:
                error["message"] = message
            await send(error)
            return
        if scenario == "odd-error":
            await send({"event": "error", "errorCode": ["a", "b"], "message": {"x": 1}})
            return
        if scenario == "empty":
            await send({"event": "done"})
            return
        if scenario == "silence":
            return
        await send({"event": "startMessage", "conversationId": conversation.id, "messageId": "m1"})
        if scenario in ("stall", "close"):
            await send({"event": "appendText", "text": "Partial"})
            return
        if mode == "reasoning":
            await send({"event": "chainOfThought", "text": "Let me think. "})
            await send({"event": "chainOfThought", "text": "Done thinking."})
        images = [p for p in frame["content"] if p.get("type") == "image"]
        if scenario == "replace-extend":
            await send({"event": "appendText", "text": "Hello"})
            await send({"event": "replaceText", "text": "Hello world"})
        elif scenario == "odd-types":
            await send({"event": "startMessage", "conversationId": 7})
            await send({"event": "appendText", "text": ["a", "b"]})
            await send({"event": "appendText", "text": {"x": 1}})
            await send({"event": "appendText", "text": "Hello "})
            await send({"event": "appendText", "text": 42})
            await send({"event": "replaceText", "text": ["Hello 42"]})
            await send({"event": "chainOfThought", "text": {"step": 1}})
            await send({"event": "citation", "url": ["https://example.org"], "title": "x"})
            await send({"event": "citation", "url": "https://example.org/a", "title": {"x": 1}})
            await send({"event": "generatingImage", "prompt": ["a", "fox"]})
            await send({"event": "imageGenerated", "url": {"href": "x"}, "thumbnailUrl": 1})
            n = next(self._ids)
            await send(
                {"event": "imageGenerated", "url": f"{self.base}/images/{n}.png", "thumbnailUrl": 5}
            )
            await send({"event": "titleUpdate", "title": {"x": 1}})
            await send({"event": ["appendText"], "text": "never shown"})
        elif scenario == "replace-rewrite":
            await send({"event": "appendText", "text": "Helo"})
            await send({"event": "replaceText", "text": "Hello"})
        elif "draw" in text.lower():
            if "forbidden" in text.lower():
                await send({"event": "appendText", "text": "I can't create that image."})
            else:
                prompt = text.split(":", 1)[-1].strip().splitlines()[0]
                n = next(self._ids)
                await send({"event": "appendText", "text": "Here is your image."})
                await send({"event": "generatingImage", "prompt": prompt})
                preview = base64.b64encode(PNG).decode()
                await send({"event": "partialImageGenerated", "content": preview})
                await send(
                    {
                        "event": "imageGenerated",
                        "url": f"{self.base}/images/{n}.png",
                        "thumbnailUrl": f"{self.base}/images/{n}-thumb.png",
                    }
                )
        else:
            await send({"event": "appendText", "text": "Hello"})
            await send({"event": "appendText", "text": " from Copilot"})
            suffix = f" (turn {turn}, {len(images)} images)." if images else f" (turn {turn})."
            await send({"event": "appendText", "text": suffix})
        if mode == "search" or "cite" in text.lower():
            await send(
                {"event": "citation", "url": "https://example.org/source", "title": "Source"}
            )
        await send({"event": "partCompleted"})
        await send({"event": "done"})
        await send({"event": "titleUpdate", "title": "A title"})
        await send({"event": "suggestedFollowups", "suggestions": ["More?"]})
        await asyncio.sleep(0)

    @staticmethod
    def _counting(ws: web.WebSocketResponse, fault: Fault) -> Any:
        """``send_json`` that stops (``_Stop``) after ``fault.after`` events of the answer
        (``received`` and ``startMessage`` open it: they are not counted)."""
        sent = 0

        async def send(event: dict[str, Any]) -> None:
            nonlocal sent
            if event.get("event") not in ("received", "startMessage"):
                if sent >= fault.after:
                    raise _Stop(fault.kind)
                sent += 1
            await ws.send_json(event)

        return send
