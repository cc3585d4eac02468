# g4f-server with every provider plugin of the repository and the Redis client (--state-url).
#   docker build -t g4f-server . && docker run -p 1337:1337 -v g4f-data:/data g4f-server
# Several instances on shared state: deploy/docker-compose.yml (docs/deploy.md).
FROM python:3.11-slim
WORKDIR /app
# uv installs from uv.lock, so the image gets the very versions the tests ran against
# (a pip install would resolve afresh on every build). The same uv as ./dev.
RUN pip install --no-cache-dir "uv>=0.6.10"
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY core core
COPY plugins plugins
# The sync of `./dev serve` (the kernel, every plugin, every extra but the plugin authors'
# [testing]: redis, uvloop, pdf; no dev
# tools), refusing a lock that does not match pyproject.toml (--locked); not editable, so
# the environment does not lean on the source folder; the image's own Python.
ENV UV_PYTHON_DOWNLOADS=never UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN uv sync --locked --no-dev --no-editable --all-packages --all-extras --no-extra testing --no-cache
ENV PATH=/app/.venv/bin:$PATH
# An unprivileged user of its own: the server needs no rights beyond its data folder.
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin g4f \
    && mkdir -p /data && chown g4f:g4f /data && chmod 700 /data
ENV G4F_HOST=0.0.0.0 G4F_PORT=1337 G4F_DATA_DIR=/data G4F_JSON_LOGS=true
VOLUME /data
EXPOSE 1337
USER g4f
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('G4F_PORT', '1337') + '/health', timeout=3)"]
CMD ["g4f-server", "api"]
