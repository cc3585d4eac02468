"""Pure functions: prompt folding, mode rules, image decoding, error mapping."""

from __future__ import annotations

import base64

import pytest

from g4f_server.errors import InvalidRequestError, ProviderAuthError, ProviderRateLimitError
from g4f_server.requests import Message
from g4f_server_copilot import prompt
from g4f_server_copilot.errors import from_error_frame, from_http_status
from g4f_server_copilot.models import mode_for
from g4f_server_copilot.session import decode_data_uri


def msgs(*pairs: tuple[str, str]) -> list[Message]:
    return [Message(role=role, content=content) for role, content in pairs]  # type: ignore[arg-type]


LIMIT = 10_240


def test_single_message_is_sent_as_is() -> None:
    assert prompt.build(msgs(("user", "Hi")), continuing=False, max_chars=LIMIT).text == "Hi"


def test_trailing_user_messages_are_joined() -> None:
    history = msgs(("user", "a"), ("assistant", "b"), ("user", "c"), ("user", "d"))
    assert prompt.build(history, continuing=True, max_chars=LIMIT).text == "c\nd"


def test_long_history_keeps_the_newest_turns() -> None:
    turns = [("user", f"old {i} " + "x" * 1000) for i in range(30)]
    history = msgs(("system", "Rules."), *turns, ("assistant", "latest answer"), ("user", "Q?"))
    text = prompt.build(history, continuing=False, max_chars=LIMIT).text
    assert len(text) <= LIMIT
    assert "Rules." in text and "latest answer" in text and text.endswith("Q?")
    assert "old 0 " not in text and "old 29 " in text


def test_mode_rules() -> None:
    assert mode_for("Copilot") == "chat"
    assert mode_for("Think Deeper") == "reasoning"
    assert mode_for("o1-mini") == "reasoning"
    assert mode_for("gpt-5-chat") == "smart"
    assert mode_for("my-study-buddy") == "study"
    assert mode_for("anything") == "chat"


def test_data_uri_decoding() -> None:
    jpeg = b"\xff\xd8\xff\xe0" + b"\0" * 20
    uri = "data:image/jpeg;base64," + base64.b64encode(jpeg).decode()
    assert decode_data_uri(uri) == (jpeg, "image/jpeg")
    with pytest.raises(InvalidRequestError):
        decode_data_uri("data:text/plain;base64," + base64.b64encode(b"hello").decode())
    with pytest.raises(InvalidRequestError):
        decode_data_uri("file:///etc/passwd")


def test_error_mapping() -> None:
    assert isinstance(from_http_status("x", 401, ""), ProviderAuthError)
    limited = from_http_status("x", 429, "", {"Retry-After": "7"})
    assert isinstance(limited, ProviderRateLimitError) and limited.retry_after == 7
    assert (
        "region"
        in from_error_frame({"event": "error", "errorCode": "chat-service-unavailable"}).message
    )
    assert "no-code" not in from_error_frame({"event": "error", "message": "boom"}).message
    assert "boom" in from_error_frame({"event": "error", "message": "boom"}).message
