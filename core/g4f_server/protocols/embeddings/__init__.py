"""OpenAI embeddings: ``render`` (vectors -> the ``list`` of ``embedding`` objects, as
floats or base64) and ``routes``.

No ``request`` module: the wire request is the contract's ``EmbeddingRequest`` itself, as
providers receive it (as with images), so there is nothing to translate. Routing,
failover and the checks of a provider's vectors are the pipeline's
(``pipeline/embeddings.py``): they know no wire format.
"""
