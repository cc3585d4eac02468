"""OpenAI chat completions: the request is the contract's ``ChatRequest``;
``render`` turns the event stream into ``chat.completion(.chunk)``; ``routes`` serves it.
"""
