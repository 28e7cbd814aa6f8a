# Portico in a container: small (Debian slim + the runtime dependencies), runs as the unprivileged
# "node" user, with a HEALTHCHECK on the admin listener. Build and run:
#   docker build -t portico .
#   docker run -p 3128:3128 -p 8080:8080 -v "$PWD/portico.yaml:/etc/portico/portico.yaml:ro" portico
# SIGHUP reloads the config (docker kill -s HUP …); docker stop sends SIGTERM, which drains first.

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY src ./src
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /opt/portico
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
COPY src/admin/static ./src/admin/static
COPY packaging/portico.yaml /etc/portico/portico.yaml
RUN mkdir -p /var/cache/portico && chown node:node /var/cache/portico
USER node
EXPOSE 3128 8080 9090
# The admin listener (127.0.0.1:9090 in the shipped config) answers its dashboard page without a token.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9090/').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--enable-source-maps", "bin/portico.js"]
CMD ["--config", "/etc/portico/portico.yaml"]
