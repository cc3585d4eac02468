"""What providers receive: the chat request and the media requests, as OpenAI defines
them (part of the plugin contract).

Every object allows extra fields: a client sending a field we do not know yet must
never get a 4xx for it, and providers that forward the body keep it. Field types that
travel on (a key in an HTTP header, provider options) are checked here, at the edge, so
that a client mistake is a 400 naming the field, never a provider call that fails.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    field_validator,
    model_validator,
)
from pydantic_core import SchemaSerializer

from g4f_server.errors import InvalidRequestError

CONVERSATION_ID_MAX = 200  # characters, in the body field and the URL path alike

# (max_messages, max_content_parts) of the request being handled. The edge sets them
# when it reads a body (``set_chat_limits``); the chat validators read them, since a
# validator has no access to the app's settings.
_CHAT_LIMITS: ContextVar[tuple[int, int]] = ContextVar("chat_limits", default=(2048, 2048))


def set_chat_limits(max_messages: int, max_content_parts: int) -> None:
    """The limits the next chat request validated in this context is held to."""
    limits = (max_messages, max_content_parts)
    if _CHAT_LIMITS.get() != limits:  # nearly always held already: a read costs less
        _CHAT_LIMITS.set(limits)


def set_request_limits(max_messages: int, max_content_parts: int, max_inputs: int) -> None:
    """``set_chat_limits`` and ``set_embedding_limits`` in one call (the edge sets both for
    every body it reads)."""
    limits = (max_messages, max_content_parts)
    if _CHAT_LIMITS.get() != limits:
        _CHAT_LIMITS.set(limits)
    if _EMBEDDING_LIMIT.get() != max_inputs:
        _EMBEDDING_LIMIT.set(max_inputs)


def chat_limits() -> tuple[int, int]:
    """(max_messages, max_content_parts) in force for the current request."""
    return _CHAT_LIMITS.get()


# --- field types shared by every request -----------------------------------------

# What an HTTP header value can carry: providers send the key upstream in a header, and a
# NUL, a line break or a non-ASCII byte there fails inside the HTTP client (a 502 and a
# failover for what is the client's mistake).
_HEADER_SAFE = re.compile(r"[\x20-\x7e]*")


def header_safe(value: str) -> str:
    if not _HEADER_SAFE.fullmatch(value):
        raise ValueError("must be printable ASCII (it travels in an HTTP header)")
    return value


ApiKey = Annotated[str, AfterValidator(header_safe)]


# --- extra fields that providers read: their types, checked before any provider call ----

Rule = tuple[Callable[[Any], bool], str]


def _dimension(value: Any) -> bool:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return type(value) is int and 1 <= value <= 16384


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


IMAGE_OPTIONS: dict[str, Rule] = {
    "width": (_dimension, "an integer from 1 to 16384"),
    "height": (_dimension, "an integer from 1 to 16384"),
    "image": (lambda v: isinstance(v, str) or _strings(v), "an image URL or a list of them"),
    "images": (lambda v: isinstance(v, str) or _strings(v), "an image URL or a list of them"),
}
CHAT_OPTIONS: dict[str, Rule] = {
    "modalities": (_strings, 'a list such as ["text"] or ["text", "audio"]'),
}


def typed_extras(data: Any, rules: dict[str, Rule]) -> Any:
    """``data`` unchanged, or a 400 naming the first extra field of the wrong type.
    (Raised as our own error: pydantic passes it through with its ``param``.)"""
    if isinstance(data, dict):
        for name, (valid, expected) in rules.items():
            value = data.get(name)
            if value is not None and not valid(value):
                raise InvalidRequestError(f"Invalid value for '{name}': {expected}", param=name)
    return data


# --- chat ----------------------------------------------------------------------------


def names_no_option(data: Any) -> bool:
    """True when ``data`` is a dict naming none of ``CHAT_OPTIONS`` (nearly every body):
    ``ChatRequest._options`` then has nothing to check (a set test in C)."""
    return type(data) is dict and CHAT_OPTIONS.keys().isdisjoint(data)


Role = Literal["system", "developer", "user", "assistant", "tool", "function"]


class _Open(BaseModel):
    # Validators are built on first use, not at import: start-up stays fast.
    model_config = ConfigDict(extra="allow", defer_build=True)


class FunctionCall(_Open):
    name: str
    arguments: str = ""


class ToolCall(_Open):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class Message(_Open):
    role: Role
    # A string, or a list of content parts ({"type": "text"|"image_url"|"input_audio"|...}).
    content: str | list[dict[str, Any]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    @field_validator("content")
    @classmethod
    def _check_parts(cls, value: Any) -> Any:
        if isinstance(value, list):
            for i, part in enumerate(value):
                kind = part.get("type")
                if not isinstance(kind, str):
                    raise ValueError(f"content part {i} needs a string 'type'")
                if kind == "text" and not isinstance(part.get("text"), str):
                    raise ValueError(f"content part {i}: a text part needs 'text'")
                if kind == "image_url":
                    image = part.get("image_url")
                    url = image.get("url") if isinstance(image, dict) else image
                    if not isinstance(url, str) or not url:
                        raise ValueError(f"content part {i}: an image_url part needs a url")
        return value

    @model_validator(mode="after")
    def _check_role_fields(self) -> Message:
        if self.content is None and self.role != "assistant":
            raise ValueError(f"a {self.role} message needs content")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an assistant message needs content or tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs tool_call_id")
        return self

    def text(self) -> str:
        """The message's text, parts joined by newlines (images and audio left out)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(p["text"] for p in self.content if p.get("type") == "text")

    def image_urls(self) -> list[str]:
        """URLs (http or data:) of the image parts of this message."""
        if not isinstance(self.content, list):
            return []
        urls = []
        for part in self.content:
            if part.get("type") == "image_url":
                image = part["image_url"]
                urls.append(image["url"] if isinstance(image, dict) else image)
        return urls


class FunctionDef(_Open):
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(_Open):
    type: str = "function"
    function: FunctionDef | None = None


class ResponseFormat(_Open):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class StreamOptions(_Open):
    include_usage: bool = False


_CHAT = frozenset({"chat"})


class ChatRequest(_Open):
    """POST /v1/chat/completions. ``model`` is resolved by the router before providers
    see it; ``provider``, ``api_key``, ``conversation_id`` and ``proxy`` are gateway fields."""

    model: str = ""
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1)
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    stop: str | list[str] | None = None
    seed: int | None = None
    tools: list[Tool] | None = None
    tool_choice: str | dict[str, Any] | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    user: str | None = None
    # Gateway fields (not OpenAI's).
    provider: str | None = None
    api_key: ApiKey | None = None
    conversation_id: str | None = Field(default=None, max_length=CONVERSATION_ID_MAX)
    proxy: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _options(cls, data: Any) -> Any:
        if names_no_option(data):
            return data
        return typed_extras(data, CHAT_OPTIONS)

    @field_validator("messages", mode="before")
    @classmethod
    def _within_limits(cls, value: Any) -> Any:
        """Counted before the messages are validated one by one: 600,000 of them took
        seconds of event loop (max_messages, max_content_parts)."""
        if not isinstance(value, list):
            return value
        max_messages, max_parts = _CHAT_LIMITS.get()
        if len(value) > max_messages:
            raise ValueError(f"at most {max_messages} messages are allowed (max_messages)")
        parts = 0
        for message in value:
            # ``type() is``, a C compare, answers the common case (parsed JSON) first.
            if type(message) is dict or isinstance(message, dict):
                content = message.get("content")
            elif isinstance(message, Message):
                content = message.content
            else:
                continue
            if isinstance(content, list):
                parts += len(content)
        if parts > max_parts:
            raise ValueError(
                f"at most {max_parts} content parts are allowed in all messages together "
                "(max_content_parts)"
            )
        return value

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, value: str | list[str] | None) -> list[str] | None:
        if isinstance(value, str):
            return [value]
        return value

    def message_dicts(self) -> list[dict[str, Any]]:
        """The messages as JSON-ready dicts, None fields left out and extra fields kept:
        what an OpenAI-compatible upstream takes. One serializer pass for all of them
        (a ``model_dump`` per message costs about twice as much), called directly:
        ``TypeAdapter.dump_python``'s own frame cost a third as much again.

        A text message with no tool calls and no extra fields (nearly every message) is
        built here from its fields, in the serializer's order: the serializer's whole
        call chain per request cost ~12k instructions for two messages. Any other message
        sends them all through the serializer (tests/contract/test_message_dicts.py holds both
        equal over many bodies)."""
        out = []
        for message in self.messages:
            fields = message.__dict__
            content = fields["content"]
            if (
                type(content) is not str
                or message.__pydantic_extra__
                or fields["tool_calls"] is not None
            ):
                return _messages_serializer().to_python(  # type: ignore[no-any-return]
                    self.messages, mode="json", exclude_none=True
                )
            item = {"role": fields["role"], "content": content}
            if (name := fields["name"]) is not None:
                item["name"] = name
            if (call_id := fields["tool_call_id"]) is not None:
                item["tool_call_id"] = call_id
            out.append(item)
        return out

    @property
    def token_limit(self) -> int | None:
        """max_completion_tokens (current name) or max_tokens (older name)."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def wants_usage_chunk(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    def needed_capabilities(self) -> frozenset[str]:
        """What a model must support to answer this request."""
        more = []
        if self.tools:
            more.append("tools")
        for message in self.messages:
            if isinstance(message.content, list):
                kinds = {part.get("type") for part in message.content}
                if "image_url" in kinds:
                    more.append("vision")
                if "input_audio" in kinds:
                    more.append("audio_input")
        # JSON mode too: a model that ignores response_format answers prose (a 200 that
        # breaks the client's json.loads), so only models that honour it are asked.
        if self.response_format and self.response_format.type != "text":
            more.append("json_schema")
        return _CHAT.union(more) if more else _CHAT


@functools.cache
def _messages_serializer() -> SchemaSerializer:
    return TypeAdapter(list[Message]).serializer


# --- images and audio ----------------------------------------------------------------

_SIZE = re.compile(r"(\d{2,5})x(\d{2,5})")


class ImageRequest(_Open):
    """POST /v1/images/generations. Provider-specific options (nologo, seed, ...) arrive
    as extra fields and are available in ``model_extra``."""

    prompt: str = Field(min_length=1, max_length=32000)
    model: str = ""
    n: int = Field(default=1, ge=1, le=4)
    size: str | None = None
    response_format: Literal["url", "b64_json"] = "url"
    seed: int | None = None
    negative_prompt: str | None = None
    provider: str | None = None
    api_key: ApiKey | None = None

    # Common provider options stay extra fields (providers read them from model_extra);
    # their types are checked here, so a wrong one is a 400, not a provider crash.
    _options = model_validator(mode="before")(
        classmethod(lambda cls, data: typed_extras(data, IMAGE_OPTIONS))
    )

    @field_validator("size")
    @classmethod
    def _check_size(cls, value: str | None) -> str | None:
        if value is not None and value != "auto" and not _SIZE.fullmatch(value):
            raise ValueError("size must look like 1024x1024")
        return value

    @property
    def dimensions(self) -> tuple[int, int] | None:
        match = _SIZE.fullmatch(self.size or "")
        return (int(match[1]), int(match[2])) if match else None


class SpeechRequest(_Open):
    """POST /v1/audio/speech."""

    input: str = Field(min_length=1, max_length=4096)
    model: str = ""
    voice: str = "alloy"
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)
    instructions: str | None = None
    provider: str | None = None
    api_key: ApiKey | None = None


class TranscriptionForm(BaseModel):
    """multipart/form-data of POST /v1/audio/transcriptions (as /openapi.json shows it)."""

    file: bytes
    model: str = ""
    language: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    response_format: Literal["json", "text", "srt", "vtt", "verbose_json"] = "json"
    provider: str | None = None


class TranscriptionRequest(_Open, TranscriptionForm):
    """The form as providers receive it: ``file`` holds the uploaded bytes."""

    filename: str = "audio.wav"
    content_type: str = "application/octet-stream"
    api_key: ApiKey | None = None
    extra: dict[str, Any] = Field(default_factory=dict)


# --- embeddings --------------------------------------------------------------------------

# How many inputs one embeddings request may hold (``max_embedding_inputs``): set by the
# edge when it reads a body, as the chat limits are. 2,048 is OpenAI's own bound.
_EMBEDDING_LIMIT: ContextVar[int] = ContextVar("embedding_limit", default=2048)
# A token id travels on as JSON and through orjson (64-bit at most); no tokenizer has
# anywhere near this many ids.
MAX_TOKEN_ID = 2**31 - 1

TokenId = Annotated[int, Field(strict=True, ge=0, le=MAX_TOKEN_ID)]
EmbeddingInput = str | list[str] | list[TokenId] | list[list[TokenId]]
_INPUT_SHAPES = "a string, a list of strings, a list of token ids or a list of token-id lists"
_EMBEDDINGS = frozenset({"embeddings"})
_EMBEDDING_TOKENS = frozenset({"embeddings", "token_input"})


def set_embedding_limits(max_inputs: int) -> None:
    """The limit the next embeddings request validated in this context is held to."""
    if _EMBEDDING_LIMIT.get() != max_inputs:
        _EMBEDDING_LIMIT.set(max_inputs)


def _is_token(value: Any) -> bool:
    return type(value) is int  # a bool is an int to Python, never a token id to us


def _token_ids(value: list[Any]) -> bool:
    """A non-empty list of token ids in range (min and max run in C: 200,000 ids cost
    about a millisecond)."""
    return (
        bool(value)
        and all(_is_token(t) for t in value)
        and min(value) >= 0
        and max(value) <= MAX_TOKEN_ID
    )


def _check_embedding_input(value: Any) -> Any:
    """The shape of ``input`` checked by hand before pydantic's union does it: a wrong
    shape then says which shapes are right instead of four branches' errors, and the
    count is refused before 600,000 inputs are validated one by one."""
    if isinstance(value, str):
        if not value:
            raise ValueError("input must not be an empty string")
        return value
    if not isinstance(value, list) or not value:
        raise ValueError(f"input must be {_INPUT_SHAPES}" + (" (not empty)" if value == [] else ""))
    if _is_token(value[0]):  # one text as token ids: its length is bounded by max_json_items
        if not _token_ids(value):
            raise ValueError(f"token ids must be integers from 0 to {MAX_TOKEN_ID}")
        return value
    limit = _EMBEDDING_LIMIT.get()
    if len(value) > limit:
        raise ValueError(f"at most {limit} inputs are allowed (max_embedding_inputs)")
    if isinstance(value[0], str):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ValueError(f"input {i} is not a string: {_INPUT_SHAPES}, not a mix")
            if not item:
                raise ValueError(f"input {i} must not be an empty string")
        return value
    for i, item in enumerate(value):
        if not isinstance(item, list):
            raise ValueError(f"input {i} is not a list of token ids: input must be {_INPUT_SHAPES}")
        if not _token_ids(item):
            raise ValueError(
                f"input {i} must be a non-empty list of token ids (integers from 0 to "
                f"{MAX_TOKEN_ID})"
            )
    return value


class EmbeddingRequest(_Open):
    """POST /v1/embeddings. ``input`` is one text, a list of texts, one list of token ids
    or a list of them, as OpenAI takes it; ``inputs`` gives it as a list either way and
    ``tokens`` says which. Token ids are ids of the tokenizer the client used (OpenAI's,
    for OpenAI's clients): only models with ``token_input`` are sent them.
    ``encoding_format`` is the kernel's business (it encodes base64 itself): a provider
    returns floats. ``model`` is resolved by the router before providers see it;
    ``provider`` and ``api_key`` are gateway fields."""

    input: EmbeddingInput
    model: str = ""
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(default=None, ge=1, le=65536)
    user: str | None = None
    provider: str | None = None
    api_key: ApiKey | None = None

    _input_shape = field_validator("input", mode="before")(
        classmethod(lambda cls, value: _check_embedding_input(value))
    )

    @property
    def tokens(self) -> bool:
        """True when the inputs are token ids, not texts."""
        value = self.input
        return isinstance(value, list) and not isinstance(value[0], str)

    @property
    def inputs(self) -> list[str] | list[list[int]]:
        """The input as a list of texts or a list of token-id lists, in order."""
        value = self.input
        if isinstance(value, str):
            return [value]
        if _is_token(value[0]):
            return [value]  # type: ignore[list-item]  # one text as token ids
        return value  # type: ignore[return-value]

    def needed_capabilities(self) -> frozenset[str]:
        """What a model must support to answer this request: token ids only go to a
        model that reads them (its tokenizer's ids mean nothing to another model)."""
        return _EMBEDDING_TOKENS if self.tokens else _EMBEDDINGS
