"""pollinations provider for g4f-server (skeleton; the protocol lands with its own issue)."""
