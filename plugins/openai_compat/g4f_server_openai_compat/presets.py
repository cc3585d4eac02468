"""What each known OpenAI-compatible upstream is, as data: where it lives, which key it
takes, what its models can do and which request fields it refuses or renames.

Every fact here comes from the vendor's own documentation; the plugin README lists each
one with its source. Nothing here is code per vendor: ``upstreams.py``, ``models.py``
and ``chat.py`` read these fields and behave the same for every preset.
"""

from __future__ import annotations

from dataclasses import dataclass

# What a chat model of any preset can do at least: it answers, and the upstream honours
# the request's stop sequences itself (all the documented APIs take ``stop``).
BASE_CHAT = frozenset({"chat", "stop"})


@dataclass(slots=True, frozen=True)
class Preset:
    key: str  # the name operators use: --upstreams groq
    provider: str  # the provider name clients see: "Groq"
    label: str
    url: str  # home page, shown in /v1/providers
    base_url: str  # may hold {account_id} (Cloudflare)
    key_env: tuple[str, ...] = ()  # variables holding the key, first set wins
    key_required: bool = True  # False: local servers (a key is optional)
    key_hint: str = ""  # where to get a key
    # Where the model list is, relative to base_url ("../x" drops base_url's last
    # segment); None: the upstream has no OpenAI-style list, the preset list is served.
    models_path: str | None = "/models"
    model_prefix: str = ""  # stripped from listed ids ("models/" on Gemini)
    account_env: str | None = None  # fills {account_id} in base_url
    # What its chat models can do beyond BASE_CHAT, and which ids can do more.
    capabilities: frozenset[str] = frozenset({"tools", "json_schema"})
    vision_ids: tuple[str, ...] = ()  # substrings (lower case) of ids that read images
    reasoning_ids: tuple[str, ...] = ()  # substrings of ids that stream reasoning
    embeddings: bool = False  # POST /embeddings exists
    embedding_ids: tuple[str, ...] = ("embed",)  # substrings of embedding model ids
    embedding_model: str | None = None  # the default one, when the vendor names one
    # Its embedding models read token ids of OpenAI's tokenizer (what LangChain sends by
    # default): only OpenAI's own. Another model reads those ids as other words.
    embedding_tokens: bool = False
    # Request quirks: fields the upstream refuses (dropped before sending), fields it
    # names differently (renamed), message fields it refuses (dropped from messages).
    refused: frozenset[str] = frozenset()
    renamed: tuple[tuple[str, str], ...] = ()
    refused_message_fields: frozenset[str] = frozenset()
    stream_usage: bool = True  # send stream_options.include_usage
    # Rate limits: (reset header, remaining header) pairs beyond the x-ratelimit-reset-
    # requests/-tokens that g4f_server.upstream.retry_delay reads already.
    reset_headers: tuple[tuple[str, str], ...] = ()
    forbidden_is_auth: bool = True  # 403 means the key; False: it means the request
    # Which models cost nothing: all of them, ids ending with a suffix, or listed ids.
    free_all: bool = False
    free_suffix: str | None = None
    free_ids: frozenset[str] = frozenset()
    fallback_models: tuple[str, ...] = ()  # served when the list cannot be fetched
    priority: int = 50  # lower is tried first; the operator's table wins
    local: bool = False  # a model server on the operator's machine: no key needed


_REASONING_OPEN = ("gpt-oss", "qwen3", "qwen-3", "deepseek-r1", "qwq", "magistral", "-r1")
_VISION_OPEN = ("llama-4", "vision", "-vl", "gemma-3", "pixtral", "llava")

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in (
        Preset(
            key="gemini",
            provider="Gemini",
            label="Google Gemini API",
            url="https://ai.google.dev",
            base_url="https://generativelanguage.googleapis.com/v1beta/openai",
            key_env=("GEMINI_API_KEY",),
            key_hint="a free key at https://aistudio.google.com/apikey",
            model_prefix="models/",
            capabilities=frozenset({"tools", "json_schema", "vision"}),
            reasoning_ids=("gemini-2.5", "gemini-3"),
            embeddings=True,
            embedding_model="gemini-embedding-001",
            free_ids=frozenset(
                {"gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-embedding-001"}
            ),
            fallback_models=(
                "gemini-2.5-flash",
                "gemini-2.5-flash-lite",
                "gemini-2.5-pro",
                "gemini-embedding-001",
            ),
        ),
        Preset(
            key="groq",
            provider="Groq",
            label="Groq",
            url="https://groq.com",
            base_url="https://api.groq.com/openai/v1",
            key_env=("GROQ_API_KEY",),
            key_hint="a free key at https://console.groq.com/keys",
            vision_ids=("llama-4",),
            reasoning_ids=("gpt-oss", "qwen3", "qwen-qwq", "deepseek-r1"),
            # "will result in a 400 error if they are supplied" (console.groq.com/docs/openai)
            refused=frozenset({"logprobs", "logit_bias", "top_logprobs"}),
            refused_message_fields=frozenset({"name"}),
            free_all=True,
            fallback_models=(
                "llama-3.3-70b-versatile",
                "llama-3.1-8b-instant",
                "openai/gpt-oss-120b",
                "openai/gpt-oss-20b",
                "meta-llama/llama-4-scout-17b-16e-instruct",
                "qwen/qwen3-32b",
            ),
        ),
        Preset(
            key="openrouter",
            provider="OpenRouter",
            label="OpenRouter",
            url="https://openrouter.ai",
            base_url="https://openrouter.ai/api/v1",
            key_env=("OPENROUTER_API_KEY",),
            key_hint="a key at https://openrouter.ai/settings/keys (the :free models cost nothing)",
            reasoning_ids=_REASONING_OPEN,
            vision_ids=_VISION_OPEN,
            forbidden_is_auth=False,  # 403: the input was flagged by moderation
            free_suffix=":free",
            fallback_models=(
                "meta-llama/llama-3.3-70b-instruct:free",
                "deepseek/deepseek-chat-v3-0324:free",
                "qwen/qwen3-coder:free",
            ),
        ),
        Preset(
            key="cerebras",
            provider="Cerebras",
            label="Cerebras Inference",
            url="https://cerebras.ai",
            base_url="https://api.cerebras.ai/v1",
            key_env=("CEREBRAS_API_KEY",),
            key_hint="a free key at https://cloud.cerebras.ai",
            reasoning_ids=("gpt-oss", "qwen-3", "thinking"),
            refused=frozenset(
                {
                    "frequency_penalty",
                    "logit_bias",
                    "presence_penalty",
                    "parallel_tool_calls",
                    "service_tier",
                }
            ),
            reset_headers=(
                ("x-ratelimit-reset-requests-day", "x-ratelimit-remaining-requests-day"),
                ("x-ratelimit-reset-tokens-minute", "x-ratelimit-remaining-tokens-minute"),
            ),
            free_all=True,
            fallback_models=(
                "gpt-oss-120b",
                "llama3.1-8b",
                "llama-3.3-70b",
                "qwen-3-32b",
                "qwen-3-235b-a22b-instruct-2507",
            ),
        ),
        Preset(
            key="mistral",
            provider="Mistral",
            label="Mistral AI (La Plateforme)",
            url="https://mistral.ai",
            base_url="https://api.mistral.ai/v1",
            key_env=("MISTRAL_API_KEY",),
            key_hint="a key on the free Experiment plan at https://console.mistral.ai/api-keys",
            vision_ids=("pixtral", "mistral-small", "mistral-medium"),
            reasoning_ids=("magistral",),
            embeddings=True,
            embedding_model="mistral-embed",
            refused=frozenset({"user", "stream_options", "logit_bias", "logprobs"}),
            renamed=(("seed", "random_seed"), ("max_completion_tokens", "max_tokens")),
            stream_usage=False,
            free_all=True,
            fallback_models=(
                "mistral-small-latest",
                "mistral-medium-latest",
                "mistral-large-latest",
                "codestral-latest",
                "mistral-embed",
            ),
        ),
        Preset(
            key="github",
            provider="GitHubModels",
            label="GitHub Models",
            url="https://github.com/marketplace/models",
            base_url="https://models.github.ai/inference",
            key_env=("GITHUB_TOKEN",),
            key_hint="a GitHub token with the models:read permission",
            models_path="../catalog/models",
            vision_ids=("gpt-4o", "gpt-4.1", "llama-4", "vision"),
            reasoning_ids=("deepseek-r1", "o1", "o3", "o4", "gpt-5"),
            free_all=True,
            fallback_models=(
                "openai/gpt-4.1",
                "openai/gpt-4.1-mini",
                "openai/gpt-4o",
                "openai/gpt-4o-mini",
            ),
        ),
        Preset(
            key="nvidia",
            provider="NVIDIA",
            label="NVIDIA NIM (build.nvidia.com)",
            url="https://build.nvidia.com",
            base_url="https://integrate.api.nvidia.com/v1",
            key_env=("NVIDIA_API_KEY",),
            key_hint="a key (nvapi-...) at https://build.nvidia.com/settings",
            vision_ids=("vision", "-vl", "llama-4"),
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            embedding_ids=("embed",),
            free_all=True,
            fallback_models=(
                "meta/llama-3.3-70b-instruct",
                "deepseek-ai/deepseek-r1",
                "qwen/qwen2.5-coder-32b-instruct",
            ),
        ),
        Preset(
            key="huggingface",
            provider="HuggingFace",
            label="Hugging Face Inference Providers",
            url="https://huggingface.co/docs/inference-providers",
            base_url="https://router.huggingface.co/v1",
            key_env=("HF_TOKEN",),
            key_hint=(
                "a fine-grained token with 'Make calls to Inference Providers' at "
                "https://huggingface.co/settings/tokens"
            ),
            vision_ids=_VISION_OPEN,
            reasoning_ids=_REASONING_OPEN,
            free_all=True,  # within the monthly credits
            fallback_models=("deepseek-ai/DeepSeek-R1", "meta-llama/Llama-3.3-70B-Instruct"),
        ),
        Preset(
            key="cloudflare",
            provider="Cloudflare",
            label="Cloudflare Workers AI",
            url="https://developers.cloudflare.com/workers-ai",
            base_url="https://api.cloudflare.com/client/v4/accounts/{account_id}/ai/v1",
            key_env=("CLOUDFLARE_API_TOKEN", "CLOUDFLARE_API_KEY"),
            key_hint="an API token with Workers AI permission in the Cloudflare dashboard",
            account_env="CLOUDFLARE_ACCOUNT_ID",
            models_path=None,  # the OpenAI-compatible API documents no /models
            vision_ids=("llama-4", "vision", "gemma-3"),
            reasoning_ids=("gpt-oss", "qwq", "deepseek-r1"),
            embeddings=True,
            embedding_ids=("embed", "bge-"),
            embedding_model="@cf/baai/bge-large-en-v1.5",
            free_all=True,  # within the daily free allocation
            fallback_models=(
                "@cf/meta/llama-3.1-8b-instruct",
                "@cf/openai/gpt-oss-120b",
                "@cf/meta/llama-4-scout-17b-16e-instruct",
                "@cf/baai/bge-large-en-v1.5",
            ),
        ),
        Preset(
            key="ollama",
            provider="Ollama",
            label="Ollama (local)",
            url="https://ollama.com",
            base_url="http://localhost:11434/v1",
            key_env=("OLLAMA_API_KEY",),
            key_required=False,
            vision_ids=(*_VISION_OPEN, "llama3.2-vision", "qwen2.5vl", "gemma3"),
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            embedding_ids=("embed", "bge-", "minilm"),
            # Its documented request fields have max_tokens but no max_completion_tokens.
            renamed=(("max_completion_tokens", "max_tokens"),),
            free_all=True,
            priority=40,
            local=True,
        ),
        Preset(
            key="lmstudio",
            provider="LMStudio",
            label="LM Studio (local)",
            url="https://lmstudio.ai",
            base_url="http://localhost:1234/v1",
            key_env=("LMSTUDIO_API_KEY",),
            key_required=False,
            vision_ids=_VISION_OPEN,
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            embedding_ids=("embed", "bge-", "minilm"),
            free_all=True,
            priority=40,
            local=True,
        ),
        Preset(
            key="llamacpp",
            provider="LlamaCpp",
            label="llama.cpp server (local)",
            url="https://github.com/ggml-org/llama.cpp",
            base_url="http://127.0.0.1:8080/v1",
            key_env=("LLAMACPP_API_KEY",),
            key_required=False,
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            free_all=True,
            priority=40,
            local=True,
        ),
        Preset(
            key="vllm",
            provider="vLLM",
            label="vLLM (local)",
            url="https://docs.vllm.ai",
            base_url="http://localhost:8000/v1",
            key_env=("VLLM_API_KEY",),
            key_required=False,
            vision_ids=_VISION_OPEN,
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            free_all=True,
            priority=40,
            local=True,
        ),
        Preset(
            key="openai",
            provider="OpenAI",
            label="OpenAI API (paid)",
            url="https://platform.openai.com",
            base_url="https://api.openai.com/v1",
            key_env=("OPENAI_API_KEY",),
            key_hint="a key at https://platform.openai.com/api-keys (billed per token)",
            vision_ids=("gpt-4o", "gpt-4.1", "gpt-5", "o3", "o4"),
            reasoning_ids=(),  # reasoning is not streamed as text in Chat Completions
            embeddings=True,
            embedding_model="text-embedding-3-small",
            embedding_tokens=True,
            fallback_models=("gpt-4.1-mini", "gpt-4o-mini", "gpt-4.1", "text-embedding-3-small"),
            priority=80,
        ),
        Preset(
            key="deepinfra",
            provider="DeepInfra",
            label="DeepInfra (paid)",
            url="https://deepinfra.com",
            base_url="https://api.deepinfra.com/v1/openai",
            key_env=("DEEPINFRA_API_KEY", "DEEPINFRA_API_TOKEN"),
            key_hint="a key at https://deepinfra.com/dash/api_keys",
            vision_ids=_VISION_OPEN,
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            embedding_ids=("embed", "bge-", "e5-", "minilm", "mpnet", "gte-"),
            embedding_model="BAAI/bge-large-en-v1.5",
            fallback_models=("meta-llama/Llama-3.3-70B-Instruct", "BAAI/bge-large-en-v1.5"),
            priority=80,
        ),
        Preset(
            key="together",
            provider="Together",
            label="Together AI (paid)",
            url="https://www.together.ai",
            base_url="https://api.together.ai/v1",
            key_env=("TOGETHER_API_KEY",),
            key_hint="a key at https://api.together.ai/settings/api-keys",
            vision_ids=_VISION_OPEN,
            reasoning_ids=_REASONING_OPEN,
            embeddings=True,
            embedding_ids=("embed", "bge-", "e5-", "m2-bert", "gte-"),
            fallback_models=("meta-llama/Llama-3.3-70B-Instruct-Turbo", "openai/gpt-oss-20b"),
            priority=80,
        ),
    )
}
