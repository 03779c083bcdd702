# syntax=docker/dockerfile:1
# NEXUS: one image for every function. The function set is chosen at run time, as a per-route deploy does:
#   docker run -e NEXUS_SERVICE=cortex,ops -e PORT=8090 ... nexus        (service groups, comma list)
#   docker run -e NEXUS_FUNCTION=auth-login,health ... nexus            (functions by name)
#   docker run nexus --service gateway --function health                 (the same as arguments)
# Nothing set = every function on one port (8080). Targets: `runtime` (default, Node) and `workerd`
# (one function on workerd: docs/DEPLOYMENT_GUIDE.md). Build: docker build -t nexus:0.1.0 .
ARG NODE_IMAGE=node:20-bookworm-slim

# ---- Production dependencies (postinstall builds the dashboard's assets into dashboard/dist) ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
COPY dashboard ./dashboard
# The Node host never loads the workerd runtime, miniflare or sharp (test/deploy/image.test.ts runs it without them):
# removing them saves ~160 MB.
RUN npm ci --omit=dev \
  && npm cache clean --force \
  && rm -rf node_modules/@cloudflare node_modules/workerd node_modules/miniflare node_modules/sharp node_modules/@img

# ---- The Node runtime: non-root, read-only friendly (writes only /tmp), drains on SIGTERM ----
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=8080 NEXUS_DATA_DIR=/app/data
RUN groupadd --system --gid 10001 nexus \
  && useradd --system --uid 10001 --gid nexus --home-dir /app --no-create-home --shell /usr/sbin/nologin nexus \
  && mkdir -p /app/data && chown nexus:nexus /app/data
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/dashboard/dist ./dashboard/dist
COPY package.json tsconfig.json workers.config.ts ./
COPY lib ./lib
COPY functions ./functions
COPY local-runtime ./local-runtime
COPY dashboard/serve.ts ./dashboard/serve.ts
USER 10001:10001
EXPOSE 8080
# No curl in slim images: Node's fetch against the liveness route on $PORT.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node itself is PID 1 (no npm, no tsx CLI wrapper): SIGTERM reaches the host, which drains and exits 0.
ENTRYPOINT ["node", "--import", "tsx", "local-runtime/node/main.ts"]

# ---- workerd: every function bundled (npm run build:workerd), one served per container ----
FROM ${NODE_IMAGE} AS workerd-build
WORKDIR /app
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
COPY dashboard ./dashboard
RUN npm ci
COPY tsconfig.json workers.config.ts ./
COPY lib ./lib
COPY functions ./functions
COPY local-runtime ./local-runtime
RUN npm run build:workerd

FROM debian:bookworm-slim AS workerd
WORKDIR /app
RUN groupadd --system --gid 10001 nexus \
  && useradd --system --uid 10001 --gid nexus --home-dir /app --no-create-home --shell /usr/sbin/nologin nexus
COPY --from=workerd-build /app/node_modules/@cloudflare/workerd-linux-*/bin/workerd /usr/local/bin/workerd
COPY --from=workerd-build /app/.build/workerd ./.build/workerd
COPY deploy/workerd ./deploy/workerd
ENV PORT=8080 NEXUS_FUNCTION=health
USER 10001:10001
EXPOSE 8080
# A function alone may not serve /health/live: check that the socket accepts.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT}"]
# deploy/workerd/<function>.capnp reads every binding from the environment of the same name.
ENTRYPOINT ["bash", "-c", "exec workerd serve \"deploy/workerd/${NEXUS_FUNCTION}.capnp\" --socket-addr \"http=0.0.0.0:${PORT}\""]
