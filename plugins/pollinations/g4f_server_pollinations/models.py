"""Live model lists (text, image, audio) with a TTL cache and a built-in fallback.

The upstream lists change often, so nothing here but the fallback names a model. A fetch
that outlives ``POLLINATIONS_MODELS_TIMEOUT`` keeps running in the background: start-up
gets the fallback (or the previous list) at once and the next listing gets the live one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from g4f_server.provider import FallbackModels, ModelInfo, ProviderContext
from g4f_server_pollinations import transport
from g4f_server_pollinations.config import Settings, api_key, auth_headers, settings

DEFAULT_CHAT = "openai"
DEFAULT_IMAGE = "flux"
DEFAULT_SPEECH = "elevenlabs"
DEFAULT_TRANSCRIPTION = "whisper"
# The legacy text host reads text aloud with this model only.
LEGACY_SPEECH_MODEL = "openai-audio"

# OpenAI names that clients send by default, mapped onto the defaults above so the SDKs'
# usual calls (model="tts-1", "whisper-1", "dall-e-3") work without knowing our ids.
OPENAI_ALIASES = {
    "speech": ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"),
    "transcription": ("whisper-1",),
    "image": ("dall-e-3", "dall-e-2"),
}

OWNER = "Pollinations.AI"
_FETCH_TIMEOUT = 20.0  # a background fetch may take this long before it gives up
_TRANSCRIBER = re.compile(r"whisper|scribe|transcri|stt", re.IGNORECASE)

# Used only when the upstream cannot be reached (offline start-up, outage).
FALLBACK_TEXT: list[dict[str, Any]] = [
    {
        "name": "openai",
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "tools": True,
        "description": "OpenAI (fallback entry)",
    },
    {
        "name": "openai-fast",
        "aliases": ["gpt-4.1-nano"],
        "input_modalities": ["text", "image"],
        "output_modalities": ["text"],
        "tools": True,
    },
    {
        "name": "openai-audio",
        "input_modalities": ["text", "image", "audio"],
        "output_modalities": ["audio", "text"],
        "tools": True,
    },
    {"name": "gemini", "input_modalities": ["text", "image"], "tools": True},
    {"name": "mistral-small", "input_modalities": ["text"], "tools": True},
    {"name": "qwen-3-coder", "input_modalities": ["text"], "tools": True},
    {"name": "deepseek-reasoning", "input_modalities": ["text"], "reasoning": True},
]
FALLBACK_IMAGE: list[dict[str, Any]] = [
    {"name": "flux", "input_modalities": ["text"], "output_modalities": ["image"]},
    {"name": "turbo", "input_modalities": ["text"], "output_modalities": ["image"]},
    {"name": "gptimage", "input_modalities": ["text", "image"], "output_modalities": ["image"]},
    {"name": "kontext", "input_modalities": ["text", "image"], "output_modalities": ["image"]},
]
OPENAI_VOICES = (
    "alloy", "echo", "fable", "onyx", "nova", "shimmer", "ash", "ballad", "coral", "sage", "verse",
)  # fmt: skip
# ElevenLabs voices of the speech model (2.5), for when the live list cannot be read.
ELEVENLABS_VOICES = (
    "rachel", "domi", "bella", "elli", "charlotte", "dorothy", "sarah", "emily", "lily",
    "matilda", "adam", "antoni", "arnold", "josh", "sam", "daniel", "charlie", "james", "fin",
    "callum", "liam", "george", "brian", "bill",
)  # fmt: skip
FALLBACK_AUDIO: list[dict[str, Any]] = [
    {
        "name": "elevenlabs",
        "output_modalities": ["audio"],
        "voices": [*OPENAI_VOICES, *ELEVENLABS_VOICES],
    },
    {"name": "openai-audio", "output_modalities": ["audio", "text"], "voices": list(OPENAI_VOICES)},
    {"name": "whisper", "input_modalities": ["audio"], "output_modalities": ["text"]},
    {"name": "scribe", "input_modalities": ["audio"], "output_modalities": ["text"]},
]


@dataclass(slots=True)
class Catalog:
    """The raw upstream entries per kind, and when they were fetched."""

    text: list[dict[str, Any]]
    image: list[dict[str, Any]]
    audio: list[dict[str, Any]]
    fetched_at: float
    live: bool  # False while any kind still comes from the fallback

    def models(self) -> list[ModelInfo]:
        return build_models(self.text, self.image, self.audio)

    def entry(self, kind: str, model: str) -> dict[str, Any] | None:
        for item in getattr(self, kind):
            if item.get("name") == model or model in item.get("aliases", ()):
                return item
        return None


def fallback_catalog() -> Catalog:
    return Catalog(FALLBACK_TEXT, FALLBACK_IMAGE, FALLBACK_AUDIO, fetched_at=0.0, live=False)


def _entries(data: Any) -> list[dict[str, Any]]:
    """Normalise a list answer: objects stay, bare strings (legacy image host) become
    ``{"name": s}``; an OpenAI-style ``{"data": [...]}`` is unwrapped."""
    if isinstance(data, Mapping) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise ValueError(f"expected a list of models, got {type(data).__name__}")
    out = []
    for item in data:
        if isinstance(item, str):
            out.append({"name": item})
        elif isinstance(item, Mapping) and isinstance(item.get("name") or item.get("id"), str):
            entry = dict(item)
            entry.setdefault("name", entry.get("id"))
            out.append(entry)
    if not out:
        raise ValueError("empty model list")
    return out


def _enrich(entries: list[dict[str, Any]], known: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bare names (the legacy image host lists only names) borrow what the built-in list
    knows about the same model, e.g. that kontext takes input images."""
    by_name = {k["name"]: k for k in known}
    return [
        {**by_name[e["name"]], **e} if len(e) == 1 and e["name"] in by_name else e for e in entries
    ]


def _mods(entry: Mapping[str, Any], key: str) -> set[str]:
    value = entry.get(key)
    return {str(v) for v in value} if isinstance(value, list) else set()


def _aliases(entry: Mapping[str, Any]) -> tuple[str, ...]:
    value = entry.get("aliases")
    if isinstance(value, str):
        return (value,)
    return tuple(a for a in value or () if isinstance(a, str) and a)


def _text_caps(entry: Mapping[str, Any]) -> set[str]:
    ins, outs = _mods(entry, "input_modalities"), _mods(entry, "output_modalities")
    caps = {"chat"} if not outs or "text" in outs or "audio" in outs else set()
    if not caps:
        return caps
    # response_format is forwarded untouched; the gateway validates it per model.
    caps.add("json_schema")
    # stop: the gateway host honours it, and on the legacy host the plugin cuts (_StopCut).
    caps.add("stop")
    if "image" in ins or entry.get("vision"):
        caps.add("vision")
    if "audio" in ins:
        caps.add("audio_input")
    if entry.get("tools"):
        caps.add("tools")
    if entry.get("reasoning"):
        caps.add("reasoning")
    return caps


def _image_caps(entry: Mapping[str, Any]) -> set[str]:
    outs = _mods(entry, "output_modalities")
    # Video models come through the images route (no other route makes media from a
    # prompt): "image" makes them reachable there, "video" says what they make.
    caps = {"image", "video"} if "video" in outs else {"image"}
    if "image" in _mods(entry, "input_modalities"):
        caps.add("vision")  # image-to-image: accepts input pictures
    return caps


def _audio_caps(entry: Mapping[str, Any]) -> set[str]:
    ins, outs = _mods(entry, "input_modalities"), _mods(entry, "output_modalities")
    if "audio" in outs:
        return {"speech"}
    if "audio" in ins or _TRANSCRIBER.search(str(entry.get("name"))):
        return {"transcription"}
    return {"speech"}


def _extra(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k not in ("name", "id", "aliases", "description")}


def build_models(
    text: Iterable[Mapping[str, Any]],
    image: Iterable[Mapping[str, Any]],
    audio: Iterable[Mapping[str, Any]],
) -> list[ModelInfo]:
    """Merge the three lists into one ModelInfo per id (a model may be in several)."""
    merged: dict[str, dict[str, Any]] = {}
    for entries, caps_of in ((text, _text_caps), (image, _image_caps), (audio, _audio_caps)):
        for entry in entries:
            caps = caps_of(entry)
            if not caps:
                continue
            name = str(entry["name"])
            slot = merged.setdefault(
                name, {"caps": set(), "aliases": [], "description": "", "extra": {}}
            )
            slot["caps"] |= caps
            slot["aliases"] += [a for a in _aliases(entry) if a not in slot["aliases"]]
            slot["description"] = slot["description"] or str(entry.get("description") or "")
            slot["extra"].update(_extra(entry))
    _add_openai_aliases(merged)
    _add_voice_models(merged)
    taken = set(merged)
    return [
        ModelInfo(
            id=name,
            capabilities=frozenset(slot["caps"]),
            aliases=tuple(a for a in slot["aliases"] if a not in taken or a == name),
            owned_by=OWNER,
            description=slot["description"],
            extra=slot["extra"],
            voice_of=slot.get("voice_of", ""),
        )
        for name, slot in merged.items()
    ]


def _add_voice_models(merged: dict[str, dict[str, Any]]) -> None:
    """Each voice of the ElevenLabs model as a speech model of its own (2.5: a voice name
    sent as the model means that voice on that model), so ``"model": "rachel"`` routes
    here and reaches ``create_speech`` as "rachel". Marked ``voice_of``: the gateway's
    model lists show it among the speech model's voices, not as a model."""
    speech = merged.get(DEFAULT_SPEECH)
    if speech is None or "speech" not in speech["caps"]:
        return
    claimed = {a for s in merged.values() for a in s["aliases"]}
    for voice in speech["extra"].get("voices") or ():
        if isinstance(voice, str) and voice and voice not in merged and voice not in claimed:
            merged[voice] = {
                "caps": {"speech"},
                "aliases": [],
                "description": f"Voice {voice!r} of the {DEFAULT_SPEECH} speech model",
                "extra": {"voice": voice, "model": DEFAULT_SPEECH},
                "voice_of": DEFAULT_SPEECH,  # listed by the gateway as a voice, not a model
            }


def voice_model(ctx: ProviderContext, model: str) -> str | None:
    """The voice a speech "model" names, if it is a voice rather than a model."""
    if cached_entry(ctx, "audio", model) is not None:
        return None
    entry = cached_entry(ctx, "audio", DEFAULT_SPEECH) or {}
    voices = entry.get("voices") or (*OPENAI_VOICES, *ELEVENLABS_VOICES)
    return model if model in voices else None


def _add_openai_aliases(merged: dict[str, dict[str, Any]]) -> None:
    defaults = {"speech": DEFAULT_SPEECH, "transcription": DEFAULT_TRANSCRIPTION}
    defaults["image"] = DEFAULT_IMAGE
    for cap, names in OPENAI_ALIASES.items():
        target = defaults[cap] if cap in merged.get(defaults[cap], {}).get("caps", ()) else None
        target = target or next((n for n, s in merged.items() if cap in s["caps"]), None)
        if target is None:
            continue
        claimed = {a for s in merged.values() for a in s["aliases"]}
        merged[target]["aliases"] += [a for a in names if a not in merged and a not in claimed]


async def _fetch(ctx: ProviderContext, url: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    async with transport.call(
        ctx, "GET", url, keyed=bool(headers), what="model list", timeout=_FETCH_TIMEOUT,
        headers=headers,
    ) as resp:  # fmt: skip
        return _entries(await resp.json(content_type=None))


async def _refresh(ctx: ProviderContext, cfg: Settings) -> Catalog:
    """Fetch all three lists; a list that fails keeps its previous (or fallback) value."""
    key = api_key(ctx, cfg)
    image_url = f"{cfg.gen_url}/image/models" if key else f"{cfg.image_url}/models"
    results = await asyncio.gather(
        _fetch(ctx, f"{cfg.gen_url}/text/models", {}),  # public; no key needed
        _fetch(ctx, image_url, auth_headers(key)),
        _fetch(ctx, f"{cfg.gen_url}/audio/models", auth_headers(key)),
        return_exceptions=True,
    )
    previous: Catalog = ctx.state.get("catalog") or fallback_catalog()
    lists = []
    fallback = fallback_catalog()
    for kind, result in zip(("text", "image", "audio"), results, strict=True):
        if isinstance(result, BaseException):
            ctx.log.warning("pollinations_models_failed", kind=kind, error=str(result))
            lists.append(getattr(previous, kind))
        else:
            lists.append(_enrich(result, getattr(fallback, kind)))
    live = not any(isinstance(r, BaseException) for r in results)
    catalog = Catalog(*lists, fetched_at=time.monotonic(), live=live)
    ctx.state["catalog"] = catalog
    return catalog


async def catalog(ctx: ProviderContext) -> Catalog:
    """The current catalog: cached while fresh, else refreshed within the listing timeout
    (falling back to the last one, or the built-in list, when that takes too long)."""
    cfg = settings()
    current: Catalog | None = ctx.state.get("catalog")
    if current and current.live and time.monotonic() - current.fetched_at < cfg.models_ttl:
        return current
    task: asyncio.Task[Catalog] | None = ctx.state.get("catalog_task")
    if task is None or task.done():
        task = asyncio.create_task(_refresh(ctx, cfg))
        ctx.state["catalog_task"] = task  # a reference keeps the task alive
    try:
        return await asyncio.wait_for(asyncio.shield(task), cfg.models_timeout)
    except TimeoutError:
        ctx.log.warning("pollinations_models_slow", timeout=cfg.models_timeout)
        return current or fallback_catalog()


async def list_models(ctx: ProviderContext) -> list[ModelInfo]:
    current = await catalog(ctx)
    # A list not (all) fetched live is served, but the kernel shows the provider degraded.
    return current.models() if current.live else FallbackModels(current.models())


def cached_entry(ctx: ProviderContext, kind: str, model: str) -> dict[str, Any] | None:
    """Metadata of a model from whatever catalog is at hand (never fetches)."""
    current: Catalog = ctx.state.get("catalog") or fallback_catalog()
    return current.entry(kind, model)
