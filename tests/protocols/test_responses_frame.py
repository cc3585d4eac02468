"""A response's frame encoded from pieces (a plain request's: ``Frame.encoded``) is the
frame dict encoded whole, byte for byte; any other request is encoded from its dict; and
a frame read as a dict after a model was named carries that model."""

from __future__ import annotations

from typing import Any

import pytest

from g4f_server.protocols.responses import frame as frames
from g4f_server.protocols.responses.frame import EncodedFrame, Frame, response_frame
from g4f_server.protocols.responses.request import ResponsesRequest
from g4f_server.web.jsonio import dumps

ODD = 'Be "brief"\u0000 \u2028 \\ é 😀 "store":true ,"usage":null'
PLAIN: dict[str, dict[str, Any]] = {
    "nothing but input": {},
    "instructions": {"instructions": ODD},
    "empty instructions": {"instructions": ""},
    "null instructions": {"instructions": None},
    "stored": {"store": True, "instructions": "x"},
    "not stored, streamed": {"store": False, "stream": True},
    "gateway fields": {"provider": "p", "api_key": "k", "proxy": "http://127.0.0.1:1"},
}
OTHER: dict[str, dict[str, Any]] = {
    "an echoed field": {"temperature": 0.5},
    "previous response": {"previous_response_id": "resp_1"},
    "metadata": {"metadata": {"a": '"store":true'}},
    "tools": {"tools": [{"type": "function", "name": "f", "parameters": {}}]},
    "parallel tool calls off": {"parallel_tool_calls": False},
    "an unknown field": {"include": ["reasoning.encrypted_content"]},
}


def _frame(fields: dict[str, Any], model: str = "m-1") -> Frame:
    request = ResponsesRequest.model_validate({"model": "asked", "input": "hi", **fields})
    return Frame(request, "resp_0123abc", model, 'prov"1')


@pytest.mark.parametrize("case", [*PLAIN, *OTHER])
def test_the_encoded_frame_is_the_dict_encoded(case: str) -> None:
    fields = PLAIN.get(case, OTHER.get(case))
    assert fields is not None
    frame = _frame(fields, model=ODD)
    whole = response_frame(frame.request, frame.id, ODD, frame.provider, frame.created)
    encoded = frame.encoded()
    assert b"".join(encoded.pieces()) == dumps(whole)
    # Cut where the final object's fields are: the same cut as finding them.
    again = EncodedFrame.of(dumps(whole))
    assert (encoded.head, encoded.middle, encoded.rest, encoded.tail) == (
        again.head,
        again.middle,
        again.rest,
        again.tail,
    )


@pytest.mark.parametrize("case", list(PLAIN))
def test_a_plain_request_is_encoded_without_its_dict(case: str) -> None:
    frame = _frame(PLAIN[case])
    frame.encoded()
    assert frame._dict is None


@pytest.mark.parametrize("case", list(OTHER))
def test_any_other_request_is_encoded_from_its_dict(case: str) -> None:
    frame = _frame(OTHER[case])
    frame.encoded()
    assert frame._dict is not None


def test_a_model_named_later_is_in_the_dict_and_the_bytes() -> None:
    frame = _frame({"instructions": "x"})
    frame.set_model("named-2")
    assert b'"model":"named-2"' in b"".join(frame.encoded().pieces())
    assert frame.dict()["model"] == "named-2"
    frame.set_model("named-3")  # after the dict was built: kept current
    assert frame.dict()["model"] == "named-3"
    assert b"".join(frame.encoded().pieces()) == dumps(frame.dict())


def test_the_dict_and_the_bytes_say_the_same_second() -> None:
    frame = _frame({})
    created = frame.created
    assert frame.dict()["created_at"] == created
    assert b'"created_at":%d,' % created in frame.encoded().head


def test_a_kept_middle_is_the_one_its_instructions_model_and_provider_give() -> None:
    frames._MIDDLES.clear()
    for model, provider in (("m-1", "p-1"), ("m-1", "p-1"), ("m-1", "p-2"), ("m-2", "p-1")):
        request = ResponsesRequest.model_validate(
            {"model": "asked", "input": "hi", "instructions": ODD}
        )
        frame = Frame(request, "resp_1", model, provider)
        assert b"".join(frame.encoded().pieces()) == dumps(frame.dict())
    assert len(frames._MIDDLES) == 3  # the repeat was read from the cache


def test_long_instructions_are_not_kept_and_the_cache_stays_bounded() -> None:
    frames._MIDDLES.clear()
    long = "x" * (frames.MIDDLE_TEXT_MAX + 1)
    request = ResponsesRequest.model_validate({"model": "a", "input": "hi", "instructions": long})
    frame = Frame(request, "resp_1", "m", "p")
    assert b"".join(frame.encoded().pieces()) == dumps(frame.dict())
    assert not frames._MIDDLES
    for n in range(frames.MIDDLES_MAX + 5):
        request = ResponsesRequest.model_validate(
            {"model": "a", "input": "hi", "instructions": f"{n}"}
        )
        Frame(request, "resp_1", "m", "p").encoded()
    assert 0 < len(frames._MIDDLES) <= frames.MIDDLES_MAX
