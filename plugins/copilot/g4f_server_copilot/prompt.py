"""What goes into a ``send`` frame: one text and the images to attach.

Copilot keeps a conversation's history server-side and takes one user text per turn.
Continuing a known conversation, we send only the trailing user message(s). Starting a
new one, the request must stand on its own, so system instructions and earlier turns are
folded into that one text, newest turns kept when it gets too long; images of the kept
turns are attached too, in order, and the text refers to them as "[image N]".

Copilot's composer takes at most ``max_message_chars`` characters; a text over it, or an
empty one, is refused here with a 400 rather than sent to fail upstream. So is a content
part Copilot cannot take (a file, audio, ...): dropping it would answer a question the
client did not ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from g4f_server.errors import InvalidRequestError

if TYPE_CHECKING:
    from g4f_server.requests import Message

_LABELS = {"user": "User", "assistant": "Assistant", "tool": "Tool result", "function": "Tool"}
_SYSTEM_ROLES = ("system", "developer")
# Room for the section headings and separators of a folded text.
_OVERHEAD = 100
# Room for the number in each "[image N]".
_PER_IMAGE = 4
# The content parts a send frame can carry: text, and images (uploaded with a login). An
# assistant's earlier "refusal" part is its answer's text, folded like any other.
_PARTS = frozenset({"text", "image_url"})
_ASSISTANT_PARTS = _PARTS | {"refusal"}


@dataclass(frozen=True, slots=True)
class Prompt:
    text: str
    images: list[str]  # http(s) URLs or data URIs, in the order they are attached


def split_trailing_user(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """(earlier messages, the consecutive user messages at the end)."""
    i = len(messages)
    while i > 0 and messages[i - 1].role == "user":
        i -= 1
    trailing = messages[i:]
    if not trailing:
        raise InvalidRequestError(
            "Copilot answers a user message: the last message must have role 'user'",
            param="messages",
        )
    return messages[:i], trailing


def trailing_text(trailing: list[Message]) -> str:
    return "\n".join(t for t in (m.text() for m in trailing) if t)


def trailing_images(trailing: list[Message]) -> list[str]:
    return [url for m in trailing for url in m.image_urls()]


def check_parts(messages: list[Message]) -> None:
    """A 400 naming the first content part Copilot cannot take, before any network call.

    Every message is looked at, not only the ones this turn sends: a continued
    conversation that Copilot has forgotten is started again from the whole history."""
    for i, message in enumerate(messages):
        if not isinstance(message.content, list):
            continue
        allowed = _ASSISTANT_PARTS if message.role == "assistant" else _PARTS
        for j, part in enumerate(message.content):
            kind = part.get("type")
            if kind not in allowed:
                raise InvalidRequestError(
                    f"Copilot cannot take a {kind!r} content part (message {i}, part {j}): "
                    "it reads text and image_url parts only; put a document's text in a "
                    "text part",
                    param=f"messages.{i}.content.{j}",
                )


def build(messages: list[Message], *, continuing: bool, max_chars: int) -> Prompt:
    check_parts(messages)
    earlier, trailing = split_trailing_user(messages)
    question = trailing_text(trailing)
    question_images = trailing_images(trailing)
    if not question.strip() and not question_images:
        raise InvalidRequestError(
            "Copilot needs something to answer: the last user message is empty",
            param="messages",
        )
    if continuing:
        return _checked(Prompt(question, question_images), max_chars)
    system = "\n".join(m.text() for m in earlier if m.role in _SYSTEM_ROLES)
    history = [m for m in earlier if m.role not in _SYSTEM_ROLES and _has_content(m)]
    if not system and not history:
        return _checked(Prompt(question, question_images), max_chars)
    budget = max_chars - _OVERHEAD - len(system) - len(question)
    kept: list[Message] = []
    for message in reversed(history):  # newest first: older turns are the ones to drop
        budget -= len(_render(message, 0)) + _PER_IMAGE * len(message.image_urls()) + 1
        if budget < 0:
            break
        kept.append(message)
    kept.reverse()
    images: list[str] = []
    lines = []
    for message in kept:
        lines.append(_render(message, len(images)))
        images.extend(message.image_urls())
    parts = []
    if system:
        parts.append(f"Instructions:\n{system}")
    if lines:
        parts.append("Conversation so far:\n" + "\n".join(lines))
    if images and question_images:  # say which attachments are the new message's
        first = len(images) + 1
        refs = " ".join(f"[image {n}]" for n in range(first, first + len(question_images)))
        question = f"{question} {refs}".strip()
    parts.append(f"Reply to this new message:\n{question}")
    return _checked(Prompt("\n\n".join(parts), images + question_images), max_chars)


def _checked(built: Prompt, max_chars: int) -> Prompt:
    if len(built.text) > max_chars:
        raise InvalidRequestError(
            f"Copilot takes at most {max_chars:,} characters per message; this one has "
            f"{len(built.text):,} (the last user message(s), plus the system instructions "
            "when no conversation is continued)",
            param="messages",
        )
    return built


def _text(message: Message) -> str:
    """An earlier turn's text, an assistant's refusal parts included."""
    text = message.text()
    if message.role == "assistant" and isinstance(message.content, list):
        refusals = [p.get("refusal") for p in message.content if p.get("type") == "refusal"]
        text = "\n".join([text, *(r for r in refusals if isinstance(r, str) and r)]).strip()
    return text


def _has_content(message: Message) -> bool:
    return bool(_text(message) or message.image_urls() or message.tool_calls)


def _render(message: Message, images_before: int) -> str:
    """One earlier turn as a line; its images are numbered after ``images_before``."""
    text = _text(message)
    count = len(message.image_urls())
    if count:
        refs = " ".join(f"[image {images_before + i}]" for i in range(1, count + 1))
        text = f"{text} {refs}".strip()
    if message.tool_calls:
        calls = ", ".join(f"{c.function.name}({c.function.arguments})" for c in message.tool_calls)
        text = (text + f" [called {calls}]").strip()
    return f"{_LABELS.get(message.role, message.role)}: {text}"
