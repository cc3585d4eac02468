"""The pipeline wing: one chat turn from a parsed request to a finished transcript
(history, resolution, failover and timeouts, stop sequences, emulation, the response
cache's policy), the media and service calls (images, audio), and who is asking (scope).

Rule: imports the contract, the foundation, storage and providers. Never controls,
protocols or web: the operator's controls observe a turn through ``observers``, and a turn
knows no wire format.
"""
