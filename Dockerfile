# syntax=docker/dockerfile:1
# binge in a container: one node per container, its config mounted at $BINGE_CONFIG,
# its queue, identity key and file outputs on the /data volume; docker-compose.yml runs
# the example mesh with it (the webhook receiver too: `binge webhook-receiver`). Two
# stages: build (npm ci, which brings the Node 24 that package.json pins, then
# `npm run build:binary`: type-check, bundle, and make dist/binge, one executable file
# with Node and LevelDB's addon inside) and the runtime, a minimal Debian with that one
# file and no Node, no node_modules, run as the unprivileged `binge` user.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
# binutils: `strip` takes Node's symbol table out of the binary (18 MiB; build-binary.mjs).
RUN apt-get update \
 && apt-get install -y --no-install-recommends binutils \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build:binary

FROM debian:bookworm-slim
ENV BINGE_CONFIG=/etc/binge/binge.yaml \
    BINGE_HTTP_LISTEN=0.0.0.0:8080 \
    BINGE_MESH_LISTEN=/ip4/0.0.0.0/tcp/7000 \
    BINGE_DATA_DIR=/data \
    BINGE_OUT_DIR=/data/out \
    XDG_CACHE_HOME=/home/binge/.cache
# The user's home holds the cache the binary extracts LevelDB's addon to (once, checked
# by its SHA-256); /data is owned by the user so a new named volume starts writable.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/binge binge \
 && mkdir -p /data /etc/binge \
 && chown binge:binge /data
COPY --from=build /app/dist/binge /usr/local/bin/binge
COPY mesh-configs /app/mesh-configs
WORKDIR /app
USER binge
VOLUME ["/data"]
EXPOSE 8080 7000
# No curl and no Node in the image: the binary probes /healthz on the port of $BINGE_HTTP_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["binge", "healthcheck"]
# A shell only to read $BINGE_CONFIG; `exec` makes the node PID 1, so `docker stop`'s
# SIGTERM reaches it and it stops cleanly (503, finish in-flight work, flush, exit 0).
ENTRYPOINT ["/bin/sh", "-c", "exec binge start --config \"$BINGE_CONFIG\"", "binge"]
