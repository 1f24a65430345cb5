# gemini-key-rotator on the official Deno image (https://github.com/denoland/deno_docker).
#
#   docker build -t gemini-key-rotator .
#   docker run -d --name rotator -p 8000:8000 --env-file rotator.env \
#     -v rotator-data:/app/data gemini-key-rotator
#
# rotator.env holds API_KEYS and ACCESS_TOKEN (see the README's configuration table). The
# image's Deno is the version package.json pins; a test checks that the command below and the
# start task in deno.json stay the same.
FROM denoland/deno:2.9.6

ENV DENO_NO_UPDATE_CHECK=1 \
    DENO_NO_PROMPT=1 \
    HOST=0.0.0.0 \
    PORT=8000

WORKDIR /app

# The rotator has no runtime npm dependency: deno.json, the core and the entries are all it
# needs (no node_modules, no tests).
COPY deno.json ./
COPY src/ ./src/
COPY entries/ ./entries/

# State (Deno KV, under ./data/) lives on a volume owned by the image's unprivileged user.
# KV_PATH, if set, must point into /app/data too, or the state is lost with the container.
RUN mkdir -p /app/data && chown deno:deno /app/data
VOLUME ["/app/data"]

# The image's `deno` user (uid 1993) owns DENO_DIR, so the module cache is written as that user.
USER deno
RUN deno cache entries/deno.ts

EXPOSE 8000

# Exec form: no shell needed. A non-2xx answer or no answer marks the container unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["deno", "eval", "const port = Deno.env.get('PORT') || '8000'; const r = await fetch('http://127.0.0.1:' + port + '/healthz').catch(() => undefined); Deno.exit(r?.ok ? 0 : 1);"]

CMD ["run", "--allow-net", "--allow-env", "--allow-read", "--allow-write", "entries/deno.ts"]
