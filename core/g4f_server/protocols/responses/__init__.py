"""The OpenAI Responses API: ``request`` (wire -> ChatRequest), ``render``
(events -> response objects and events), ``routes``.
"""
