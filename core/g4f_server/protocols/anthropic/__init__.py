"""Anthropic Messages: ``request`` (wire -> ChatRequest), ``render`` (events ->
message and its events, errors in Anthropic's shape), ``routes``.
"""
