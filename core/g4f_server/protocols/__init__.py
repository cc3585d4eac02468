"""The protocols wing: each wire protocol in its own folder (openai_chat/, responses/,
anthropic/, completions/, embeddings/), with ``request`` (wire -> ChatRequest), ``render``
(the internal event stream, events.py -> wire) and ``routes`` (embeddings/ has no
``request``: its wire request is the contract's ``EmbeddingRequest``); ``sse`` is the one
SSE framing, ``streaming`` the one loop that writes a turn's events to a client, and
``websocket`` its sibling for a WebSocket (the same renderer's events, one message each).

Rule: the top of the kernel below the app factory: may import web, controls, pipeline,
providers, storage, the contract and foundation. Nothing imports a protocol but the app's
route table (by name) and the entry points.
"""
