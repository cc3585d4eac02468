"""What goes upstream is what the client set: request_body dumps only the fields in the
request's ``model_fields_set``, which is the same as dumping every field while each field
the client did not set is None or the gateway's own."""

from __future__ import annotations

from g4f_server.requests import ChatRequest
from g4f_server_openai_compat import chat
from g4f_server_openai_compat.upstreams import resolve

UP = resolve("vllm", {}, {"VLLM_BASE_URL": "http://127.0.0.1:9/v1"})
HI = [{"role": "user", "content": "hi"}]


def test_every_field_with_a_default_but_none_is_the_gateways() -> None:
    for name, info in ChatRequest.model_fields.items():
        default = info.get_default(call_default_factory=True)
        assert default is None or name in chat.GATEWAY_FIELDS, (name, default)


def test_a_request_that_sets_nothing_more_sends_nothing_more() -> None:
    request = ChatRequest.model_validate({"model": "m", "messages": HI})
    assert chat.request_body(UP, request) == {"model": "m", "messages": HI, "stream": False}


def test_set_fields_extras_and_later_updates_travel_none_does_not() -> None:
    request = ChatRequest.model_validate(
        {"model": "m", "messages": HI, "stream": True, "temperature": 0.5, "stop": None,
         "top_k": 40, "api_key": "client-key"}
    )  # fmt: skip
    request = request.model_copy(update={"max_tokens": 7})
    body = chat.request_body(UP, request)
    assert body == {
        "model": "m",
        "messages": HI,
        "temperature": 0.5,
        "top_k": 40,  # an extra field the upstream may know
        "max_tokens": 7,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_the_configured_keys_headers_are_kept_and_a_clients_key_is_not() -> None:
    up = resolve("groq", {"api_key": "configured"}, {})
    state: dict[str, object] = {}
    url, headers = chat._route(up, up.api_key, False, state)
    assert chat._route(up, up.api_key, False, state)[1] is headers  # made once
    assert str(url) == f"{up.base_url}/chat/completions"
    assert headers["Authorization"] == "Bearer configured"
    assert headers["Accept"] == "application/json"
    assert chat._route(up, up.api_key, True, state)[1]["Accept"] == "text/event-stream"
    _, theirs = chat._route(up, "client-key", False, state)
    assert theirs["Authorization"] == "Bearer client-key"
    assert "client-key" not in repr(state)  # not kept past its request
