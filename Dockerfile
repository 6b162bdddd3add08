# The walflow process: `walflow migrate` and `walflow start` from one image (see docker-compose.yml).
FROM node:20-bookworm-slim AS build
WORKDIR /walflow
RUN npm install -g pnpm@10.34.8
COPY . .
RUN pnpm install --frozen-lockfile && pnpm build && pnpm prune --prod

# The same image as the build's: V8 accepts the CLI's code cache, which `pnpm build` made, only from the Node that made it.
FROM node:20-bookworm-slim
WORKDIR /walflow
COPY --from=build /walflow /walflow
ENV NODE_ENV=production WALFLOW_HTTP_HOST=0.0.0.0 WALFLOW_HTTP_PORT=8787
EXPOSE 8787
ENTRYPOINT ["node", "packages/cli/dist/walflow.js"]
CMD ["start"]
