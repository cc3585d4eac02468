"""The legacy OpenAI completions request (POST /v1/completions), and how it becomes the
``ChatRequest`` every provider takes: the prompt is the user's message."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from g4f_server import errors
from g4f_server.requests import ApiKey, ChatRequest, StreamOptions, _Open
from g4f_server.web.validation import parse_model


class CompletionRequest(_Open):
    """POST /v1/completions. ``provider``, ``api_key`` and ``proxy`` are gateway fields."""

    model: str = ""
    prompt: str | list[str]
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: int | None = Field(default=None, ge=1, le=1)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    echo: bool = False
    suffix: str | None = None
    frequency_penalty: float | None = Field(default=None, ge=-2, le=2)
    presence_penalty: float | None = Field(default=None, ge=-2, le=2)
    seed: int | None = None
    user: str | None = None
    # Gateway fields (not OpenAI's).
    provider: str | None = None
    api_key: ApiKey | None = None
    proxy: str | None = None

    @property
    def prompt_text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise errors.InvalidRequestError(
                "One prompt per request: send a string or a list of one string "
                f"(got {len(self.prompt)})",
                param="prompt",
                code="unsupported_value",
            )
        return self.prompt[0]

    def to_chat(self) -> ChatRequest:
        if self.suffix:
            raise errors.InvalidRequestError(
                "'suffix' (insertion) is not supported: chat providers only continue a prompt",
                param="suffix",
                code="unsupported_value",
            )
        if not self.prompt_text:
            raise errors.InvalidRequestError("'prompt' is empty", param="prompt")
        fields: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": self.prompt_text}],
            "stream": self.stream,
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
            "stop": self.stop,
            "frequency_penalty": self.frequency_penalty,
            "presence_penalty": self.presence_penalty,
            "seed": self.seed,
            "user": self.user,
            "provider": self.provider,
            "api_key": self.api_key,
            "proxy": self.proxy,
        }
        return parse_model(ChatRequest, {k: v for k, v in fields.items() if v is not None})
