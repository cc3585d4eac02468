"""The chat page (``--gui``) and the API reference (``/docs``): static files shipped
inside the package, no build step.

``static/`` holds the page, its own scripts (``js/``) and the vendored third-party
scripts with their licences (``vendor/``, refreshed by ``scripts/refresh-gui-vendor.sh``).
``apidocs/`` holds the /docs page and its vendored OpenAPI viewer (RapiDoc, refreshed by
``scripts/refresh-docs-vendor.sh``). ``assets.py`` loads them once; ``web/routes/gui.py``
and ``web/routes/docs.py`` serve them.
"""
