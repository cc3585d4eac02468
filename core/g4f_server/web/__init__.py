"""The web wing: the HTTP edge. The edge around every route's handler (request id, key
check, error mapping, access line), admission caps, the runner and the ``--workers``
supervisor, the connection guard (cap, per-address share, timeouts), reading bodies
(limits, inflating, JSON, validation), CORS, OpenAPI, the route table and the routes that
are not a chat protocol.

Rule: may import controls, pipeline, providers, storage, the contract and foundation.
Never a protocol module: the route table names protocol handlers as strings, and an error
shape is read from the handler's mark, not chosen by path.
"""
