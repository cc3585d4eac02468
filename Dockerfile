# g4f-server with both built-in providers.
#   docker build -t g4f-server . && docker run -p 1337:1337 -v g4f-data:/data g4f-server
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
COPY core core
COPY plugins plugins
RUN pip install --no-cache-dir . ./plugins/copilot ./plugins/pollinations uvloop
ENV G4F_HOST=0.0.0.0 G4F_PORT=1337 G4F_DATA_DIR=/data G4F_JSON_LOGS=true
RUN mkdir -p /data && chown nobody /data
VOLUME /data
EXPOSE 1337
USER nobody
CMD ["g4f-server", "api"]
