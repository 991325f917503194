# syntax=docker/dockerfile:1
# binge in a container: one node per container, its config mounted at $BINGE_CONFIG,
# its queue, identity key and file outputs on the /data volume; docker-compose.yml runs
# the example mesh with it. Three stages: build (type-check, then bundle the CLI into
# dist/binge.mjs, the package's bin), deps (production dependencies only; the bundle
# leaves level's native binding outside) and the runtime, which gets the bundle and
# the production node_modules and runs as the unprivileged `node` user.
ARG NODE_VERSION=20

FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# level's native binding comes prebuilt for glibc, so no compiler is needed here.
RUN npm ci --omit=dev && npm cache clean --force

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production \
    BINGE_CONFIG=/etc/binge/binge.yaml \
    BINGE_HTTP_LISTEN=0.0.0.0:8080 \
    BINGE_MESH_LISTEN=/ip4/0.0.0.0/tcp/7000 \
    BINGE_DATA_DIR=/data \
    BINGE_OUT_DIR=/data/out
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist/binge.mjs ./dist/binge.mjs
COPY package.json ./
COPY scripts/webhook-receiver.mjs ./scripts/webhook-receiver.mjs
COPY mesh-configs ./mesh-configs
# `binge` on the PATH for `docker compose exec node-a binge status`; /data owned by the
# runtime user so a new named volume starts writable.
RUN chmod +x dist/binge.mjs \
 && ln -s /app/dist/binge.mjs /usr/local/bin/binge \
 && mkdir -p /data /etc/binge \
 && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 7000
# No curl in the slim image: Node's fetch, on the port of $BINGE_HTTP_LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const l = process.env.BINGE_HTTP_LISTEN || '0.0.0.0:8080'; fetch('http://127.0.0.1:' + l.slice(l.lastIndexOf(':') + 1) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# A shell only to read $BINGE_CONFIG; `exec` makes the node PID 1, so `docker stop`'s
# SIGTERM reaches it and it stops cleanly (503, finish in-flight work, flush, exit 0).
ENTRYPOINT ["/bin/sh", "-c", "exec node /app/dist/binge.mjs start --config \"$BINGE_CONFIG\"", "binge"]
