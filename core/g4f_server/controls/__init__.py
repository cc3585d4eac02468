"""The controls wing: the operator's controls (API keys, rate limits, metrics, demo
mode) and the observers they install on the pipeline.

Rule: may import pipeline, providers, storage, the contract and foundation. Never web or
protocols: controls sit below the edge and are installed by the app factory.
"""
