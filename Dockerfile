# syntax=docker/dockerfile:1
# Plexica on Node 24 as the non-root user `node`, data (embedded database, keys, files) in /data:
#   docker build -t plexica .
#   docker run -p 8080:8080 -v plexica-data:/data plexica
# compose.yaml runs it with PostgreSQL, Redis and MinIO. Not built in CI (the CI machines
# have no Docker engine); deploy-files.test.ts checks that every PLEXICA_* name here is a setting.

FROM node:24-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so that a source change reuses this layer. --ignore-scripts skips the
# prepare build (no sources yet) and the node devDependency's download of a second Node 24;
# the rebuild then runs the install scripts of the native addons (N-API prebuilds, no compiler).
COPY package.json package-lock.json ./
COPY packages/server/package.json packages/server/
COPY packages/sdk/package.json packages/sdk/
RUN npm ci --ignore-scripts --no-audit --no-fund && npm rebuild argon2 msgpackr-extract
COPY tsconfig.base.json ./
COPY packages/server packages/server
RUN node node_modules/typescript/bin/tsc -p packages/server/tsconfig.json \
 && node packages/server/scripts/pglite-template.mjs \
 && npm prune --omit=dev --ignore-scripts --no-audit --no-fund

FROM node:24-bookworm-slim
ENV NODE_ENV=production \
    PLEXICA_DATA_DIR=/data \
    PLEXICA_PORT=8080
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/packages/server packages/server
COPY LICENSE README.md ./
RUN mkdir /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 8080
# /ready answers 200 once the database answers; the first start on an empty
# embedded data dir creates the database (seconds), hence the start period.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PLEXICA_PORT || 8080) + '/ready').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# node as PID 1 is fine here: the program handles SIGTERM (drains, then exits) and starts no child processes
CMD ["node", "packages/server/bin/plexica.js", "start"]
