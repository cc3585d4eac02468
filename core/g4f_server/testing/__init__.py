"""The provider author's kit: helpers, pytest fixtures, an upstream emulator toolkit and
the conformance suite. Installed with ``pip install "g4f-server[testing]"``.

Importing this package needs no pytest: ``png_bytes()``, ``wav_bytes()``,
``wait_until()`` and ``chat_events()`` work in a plain emulator script. The pytest half
(``fixtures.py``) loads only when a project turns the kit on, with
``-p g4f_server.testing`` (``addopts``) or ``pytest_plugins = ["g4f_server.testing"]`` in
its root ``conftest.py``: pytest then reads ``pytest_plugins`` below. It is not
registered through the ``pytest11`` entry point: installing g4f-server adds no option,
marker, hook or fixture to another project's test run.

- ``provider_context``: a factory of ``ProviderContext`` objects with a real shared
  ``aiohttp.ClientSession``, for calling a plugin's hooks directly.
- ``start_gateway``: starts the whole gateway on 127.0.0.1 with the plugins you give it
  (installed entry points are not loaded) and returns its base URL.
- ``openai_client`` / ``anthropic_client``: the official async SDKs (no retries) pointed
  at the gateway of a ``gateway_url`` fixture your tests define; skipped when the SDK is
  not installed.
- ``--g4f-live``: tests marked ``live`` (real upstreams over the internet) are skipped
  unless pytest runs with ``--g4f-live``.
- async tests and fixtures run without an ``asyncio_mode`` setting: the kit sets
  pytest-asyncio's ``auto`` mode unless the project chose a mode itself.
- ``png_bytes()`` and ``wav_bytes()``: valid media made with the stdlib, for emulators.
- ``wait_until(condition)``: poll instead of sleeping a fixed time.
- ``chat_events(plugin.chat(...))``: the events of a ``chat`` hook one by one.
- ``g4f_server.testing.upstream``: the emulator toolkit (SSE/NDJSON writers, faults, a
  hang-up detector); ``g4f_server.testing.conformance``: the contract, checked end to end.
"""

from __future__ import annotations

from g4f_server.testing.media import png_bytes, wav_bytes
from g4f_server.testing.waits import chat_events, wait_until

__all__ = ["chat_events", "png_bytes", "wait_until", "wav_bytes"]

# Read by pytest when the kit is turned on (-p g4f_server.testing): the fixtures live in a
# module of their own so that importing the helpers never imports pytest.
pytest_plugins = ["g4f_server.testing.fixtures"]
