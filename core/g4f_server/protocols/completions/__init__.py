"""Legacy OpenAI completions: ``request`` (prompt -> ChatRequest), ``render``
(events -> text_completion), ``routes``.
"""
