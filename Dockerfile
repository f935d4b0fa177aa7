# syntax=docker/dockerfile:1
#
# mde-partner-proxy container image.
#
#   docker build -t mde-partner-proxy .
#   docker run --rm -p 127.0.0.1:3128:3128 -p 127.0.0.1:9464:9464 \
#     -v "$PWD/config/container.yaml:/etc/mde-partner-proxy/config/config.yaml:ro" \
#     -v "$PWD/ca:/etc/mde-partner-proxy/ca:ro" \
#     mde-partner-proxy --config /etc/mde-partner-proxy/config/config.yaml
#
# where ./ca holds tls.crt and tls.key (e.g. from `mde-partner-proxy ca init --state-dir ca`,
# renamed), and config/container.yaml admits the Docker bridge network in access.allowedClients:
# published ports reach the proxy from the bridge gateway, not from loopback.
#
# The interception CA is never part of the image. Mount it (in Kubernetes: a Secret of type
# kubernetes.io/tls) at /etc/mde-partner-proxy/ca and point the config at it:
#   ca:
#     cert: /etc/mde-partner-proxy/ca/tls.crt
#     key: /etc/mde-partner-proxy/ca/tls.key
# Without a ca section the proxy creates a throwaway CA in the state directory at each start of a
# fresh container, which clients would have to trust anew every time.

ARG NODE_IMAGE=node:24-bookworm-slim

# ---- build: bundle src/ and its dependencies into dist/ (scripts/build.mjs) -------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# ---- runtime: dist/ only (the bundle carries its dependencies), as a non-root user --------------
FROM ${NODE_IMAGE} AS runtime

# ca-certificates: the system roots upstream TLS is verified against (on top of Node's own), also
# copied into the ca-bundle.pem the proxy writes for clients.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 mdeproxy \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mde-partner-proxy \
      --no-create-home --shell /usr/sbin/nologin mdeproxy \
 && install -d -o 10001 -g 10001 -m 0700 /var/lib/mde-partner-proxy \
 && install -d -m 0755 /etc/mde-partner-proxy

WORKDIR /app
COPY package.json ./
COPY --from=build /src/dist ./dist
# The embedded usage store's SQLite driver is a native module esbuild cannot bundle: it ships
# beside dist/ with the two small packages it loads its binary through.
COPY --from=build /src/node_modules/better-sqlite3 ./node_modules/better-sqlite3
COPY --from=build /src/node_modules/bindings ./node_modules/bindings
COPY --from=build /src/node_modules/file-uri-to-path ./node_modules/file-uri-to-path

# Listen on every interface inside the container; access.allowedClients (default: loopback only)
# still decides who may use the proxy, so a shared deployment must set it in its config.
# The admin listener has no allow-list: expose it to the cluster network only.
ENV NODE_ENV=production \
    MDE_PARTNER_PROXY_LISTEN=0.0.0.0:3128 \
    MDE_PARTNER_PROXY_ADMIN=0.0.0.0:9464 \
    MDE_PARTNER_PROXY_STATE_DIR=/var/lib/mde-partner-proxy

# The state directory holds ca-bundle.pem (written at every start) and, only when no CA is
# configured, a generated CA. With a read-only root file system, mount an emptyDir on it.
# MDE_PARTNER_PROXY_STATE_DIR wins over a stateDir key in the config file.

USER 10001:10001
EXPOSE 3128 9464

# Node is PID 1, started directly with the V8 flag of cli.ts' shebang (no `env -S`: BusyBox and
# distroless images have none): the proxy handles SIGTERM itself (drain, then exit 0) and SIGHUP
# (reload). test/integration/package.test.ts keeps these flags equal to the shebang's.
# No HEALTHCHECK: orchestrators probe /livez and /readyz on the admin port.
ENTRYPOINT ["node", "--initial-old-space-size=128", "/app/dist/cli.js"]
CMD ["start"]
