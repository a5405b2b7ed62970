# Multi-stage build of codegen-orchestrator: the same `cargo build --release --locked` that
# CI compiles, then a small runtime image running as an unprivileged user.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin codegen-orchestrator

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin orchestrator \
 && mkdir -p /app/data \
 && chown -R orchestrator /app
COPY --from=build /src/target/release/codegen-orchestrator /usr/local/bin/codegen-orchestrator
COPY config.example.yaml app-manifest.yml /app/
WORKDIR /app
USER orchestrator
# State (the SQLite file, data/github-app.yaml from /setup) lives in /app/data: mount a
# volume there.
VOLUME ["/app/data"]
ENV PORT=8080 LOG_FORMAT=json
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["codegen-orchestrator"]
CMD ["serve"]
