"""An upstream session: the identity we present, ``POST /c/api/start`` and attachments.

Cookies are passed explicitly as a ``Cookie`` header on every request instead of living in
the shared ClientSession's jar: the jar is shared by all users of the gateway, while a
Copilot conversation belongs to the identity (anonymous cookie or login) that started it.
Cookies the upstream sets on session start are kept in the conversation state so the
next turn presents the same identity.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from g4f_server.errors import InvalidRequestError, ProviderError, ProviderTimeoutError
from g4f_server_copilot import config, fields
from g4f_server_copilot.auth import Credentials, Flavour, cookie_header
from g4f_server_copilot.errors import from_http_status

MAX_IMAGE_BYTES = 20 * 1024 * 1024


@dataclass(slots=True)
class Session:
    flavour: Flavour
    creds: Credentials
    conversation_id: str | None = None
    # Cookies the upstream set for this conversation's identity (e.g. __Host-copilot-anon).
    session_cookies: dict[str, str] = field(default_factory=dict)
    title: str | None = None
    # False once REST refused the Bearer token and the conversation was started with
    # cookies alone: that made it another identity's, so the token stays out of the
    # whole conversation (socket and uploads), or the upstream refuses it.
    use_token: bool = True

    @property
    def token(self) -> str | None:
        return self.creds.access_token if self.use_token else None

    def fresh(self) -> Session:
        """The same identity, without a conversation yet."""
        return Session(
            flavour=self.flavour,
            creds=self.creds,
            session_cookies=dict(self.session_cookies),
            use_token=self.use_token,
        )

    def cookies(self) -> dict[str, str]:
        return {**self.creds.cookies, **self.session_cookies}

    def headers(self, *, bearer: bool = False, json_body: bool = False) -> dict[str, str]:
        """Headers of the chosen client flavour (upstreams.md 1.3)."""
        if self.flavour == "app":
            headers = {
                "Accept-Encoding": "gzip, deflate",
                "User-Agent": config.APP_USER_AGENT,
                "X-Search-UILang": "en-US",
            }
        else:
            base = config.base_url()
            headers = {
                "Accept": "*/*",
                "Accept-Language": "en-US",
                "Accept-Encoding": "gzip, deflate",
                "sec-ch-ua": config.SEC_CH_UA,
                "sec-ch-ua-mobile": "?0",
                "sec-ch-ua-platform": '"Windows"',
                "sec-fetch-dest": "empty",
                "sec-fetch-mode": "cors",
                "sec-fetch-site": "same-origin",
                "User-Agent": config.WEB_USER_AGENT,
                "Origin": base,
                "Referer": base + "/",
            }
        if json_body:
            headers["Content-Type"] = "application/json"
        cookies = self.cookies()
        if cookies:
            headers["Cookie"] = cookie_header(cookies)
        if bearer and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
            if self.creds.identity_type:
                headers["X-UserIdentityType"] = self.creds.identity_type
        return headers

    def state(self) -> dict[str, Any]:
        """What the kernel keeps for the next turn (JSON-serialisable)."""
        data: dict[str, Any] = {"conversation_id": self.conversation_id, "flavour": self.flavour}
        if self.session_cookies:
            data["session_cookies"] = dict(self.session_cookies)
        if self.title:
            data["title"] = self.title
        if not self.use_token:
            data["use_token"] = False
        return data

    async def start(self, http: aiohttp.ClientSession, timeout: float, proxy: str | None) -> None:
        """Create a new upstream conversation and remember its id and cookies."""
        body = {
            "timeZone": "UTC",
            "startNewConversation": True,
            "teenSupportEnabled": True,
            "correctPersonalizationSetting": True,
            "deferredDataUseCapable": True,
        }
        if self.flavour == "web":
            body["performUserMerge"] = True
        # Reports disagree on whether REST calls accept a Bearer header (upstreams.md 4.2):
        # try with it, and once more with cookies only if that is refused. Without cookies
        # that second start would just be anonymous: then the 401 means a bad token.
        attempts = [True, False] if self.token and self.creds.cookies else [bool(self.token)]
        for bearer in attempts:
            status, text, headers, cookies = await self._post_start(
                http, body, bearer=bearer, timeout=timeout, proxy=proxy
            )
            if status == 401 and bearer and len(attempts) > 1:
                continue
            break
        if status < 400 and len(attempts) > 1 and not bearer:
            self.use_token = False
        if status >= 400:
            raise from_http_status("session start", status, text, headers)
        try:
            data = _json(text)
            conversation_id = data["currentConversationId"]
        except (ValueError, KeyError, TypeError):
            raise ProviderError(
                f"Copilot session start returned no conversation id: {text[:200]}"
            ) from None
        if not isinstance(conversation_id, str) or not conversation_id:
            raise ProviderError("Copilot session start returned an empty conversation id")
        self.conversation_id = conversation_id
        self.session_cookies.update(cookies)

    async def _post_start(
        self,
        http: aiohttp.ClientSession,
        body: dict[str, Any],
        *,
        bearer: bool,
        timeout: float,
        proxy: str | None,
    ) -> tuple[int, str, Any, dict[str, str]]:
        url = config.base_url() + "/c/api/start"
        try:
            async with asyncio.timeout(timeout):
                async with http.post(
                    url,
                    json=body,
                    headers=self.headers(bearer=bearer, json_body=True),
                    proxy=proxy,
                ) as resp:
                    forget_jar_cookies(http)
                    text = await resp.text()
                    cookies = {name: morsel.value for name, morsel in resp.cookies.items()}
                    return resp.status, text, resp.headers, cookies
        except TimeoutError:
            raise ProviderTimeoutError(
                f"Copilot did not answer the session start within {timeout:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"Copilot is unreachable: {exc}") from None

    async def upload_image(
        self, http: aiohttp.ClientSession, image: str, timeout: float, proxy: str | None
    ) -> dict[str, str]:
        """A content part for one image of the request (uploaded when it is inline data)."""
        if image.startswith(("http://", "https://")):
            # The upstream fetches remote images itself; passing the URL avoids a download.
            return {"type": "image", "url": image}
        data, mime = decode_data_uri(image)
        url = config.base_url() + "/c/api/attachments"
        headers = self.headers(bearer=True)
        headers["Content-Type"] = mime
        try:
            async with asyncio.timeout(timeout):
                async with http.post(url, data=data, headers=headers, proxy=proxy) as resp:
                    forget_jar_cookies(http)
                    text = await resp.text()
                    if resp.status >= 400:
                        raise from_http_status("image upload", resp.status, text, resp.headers)
        except TimeoutError:
            raise ProviderTimeoutError(
                f"Copilot did not accept the image within {timeout:g}s"
            ) from None
        except aiohttp.ClientError as exc:
            raise ProviderError(f"Copilot is unreachable: {exc}") from None
        try:
            answer = _json(text)
        except ValueError:
            answer = None
        uploaded = fields.string(answer, "url") if isinstance(answer, dict) else None
        if uploaded is None:
            raise ProviderError(f"Copilot image upload returned no url: {text[:200]}")
        return {"type": "image", "url": uploaded}


def forget_jar_cookies(http: aiohttp.ClientSession) -> None:
    """Drop what the upstream just set in the shared jar.

    aiohttp merges jar cookies into every request and lets them override an explicit
    Cookie header, so one user's anonymous identity would leak into another's request.
    We keep cookies per conversation ourselves (see the module docstring).
    """
    with contextlib.suppress(AttributeError, NotImplementedError):
        http.cookie_jar.clear_domain(config.host().split(":")[0])


def _json(text: str) -> Any:
    return json.loads(text)


_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def sniff_image(data: bytes) -> str | None:
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_data_uri(uri: str) -> tuple[bytes, str]:
    """Bytes and MIME type of a ``data:image/...;base64,...`` URI."""
    header, sep, payload = uri.partition(",")
    if not uri.startswith("data:") or not sep or ";base64" not in header:
        raise InvalidRequestError(
            "Copilot takes images as http(s) URLs or base64 data URIs", param="messages"
        )
    try:
        data = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        raise InvalidRequestError(
            "an image data URI is not valid base64", param="messages"
        ) from None
    if len(data) > MAX_IMAGE_BYTES:
        raise InvalidRequestError("an image is larger than 20 MB", param="messages")
    mime = sniff_image(data)
    if mime is None:
        raise InvalidRequestError("Copilot accepts PNG, JPEG, GIF or WebP images", param="messages")
    return data, mime
