"""The OpenAI Responses API: ``request`` (wire -> ChatRequest), ``tools`` (Responses tools
-> chat tools and back), ``files`` (input_file parts as text), ``render`` (events ->
response objects and events), ``creation`` (one create, over HTTP or a WebSocket),
``routes``, ``socket`` (the WebSocket mode), ``compact`` and ``compaction`` (compaction).
"""
