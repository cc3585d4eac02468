"""The chat page (``--gui``): static files shipped inside the package, no build step.

``static/`` holds the page, its own scripts (``js/``) and the vendored third-party
scripts with their licences (``vendor/``, refreshed by ``scripts/refresh-gui-vendor.sh``).
``assets.py`` loads them once; ``routes/gui.py`` serves them.
"""
