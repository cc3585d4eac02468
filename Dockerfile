# g4f-server with both built-in providers and the Redis client (--state-url).
#   docker build -t g4f-server . && docker run -p 1337:1337 -v g4f-data:/data g4f-server
# Several instances on shared state: deploy/docker-compose.yml (docs/deploy.md).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml uv.lock README.md LICENSE ./
COPY core core
COPY plugins plugins
RUN pip install --no-cache-dir ".[redis,pdf]" ./plugins/copilot ./plugins/pollinations uvloop
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
