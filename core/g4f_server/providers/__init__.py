"""The providers wing: finding plugins (loader), the registry built from them, the
routing table (model_table), choosing who serves a request (router), cooldown of failing
providers and the context a provider is called with.

Rule: imports the contract, the foundation (config, logs, appkeys, periodic) and storage
only. Never pipeline, controls, protocols or web: a provider call knows no wire and no
operator policy.
"""
