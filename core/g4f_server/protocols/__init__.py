"""Output protocols: each renders the internal event stream (events.py) in one wire format."""
