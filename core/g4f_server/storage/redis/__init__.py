"""Shared state on Redis (``--state-url``): the backends of storage/interfaces.py
for several gateway instances. Imported only when a state URL is set (redis is an extra).
"""
