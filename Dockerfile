# scimflow production image: the worker (`worker`, the default) and the HTTP API (`api`) run from the same image.
# TypeScript runs directly through Node 24's type stripping, so there is no build step.
# The `node` npm package pinned in devDependencies is omitted here: the image's own Node 24 runs everything.

FROM node:24.21.0-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# isolated-vm loads its prebuilt linux-x64 binary (node-gyp-build): no compiler is needed.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24.21.0-bookworm-slim
ENV NODE_ENV=production
# Two malloc arenas bound a worker's resident memory (why: cli/node-flags.mjs).
ENV MALLOC_ARENA_MAX=2
WORKDIR /app
# Files stay owned by root: the service user can read the code but not change it.
COPY --from=deps /app/node_modules ./node_modules
COPY . .
USER node
# The flags of cli/node-flags.mjs (why each: there), which an exec-form ENTRYPOINT cannot import.
ENTRYPOINT ["node", "--no-node-snapshot", "--max-semi-space-size=16", "--heap-growing-percent=50", "cli/main.ts"]
CMD ["worker"]
