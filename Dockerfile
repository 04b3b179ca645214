# syntax=docker/dockerfile:1.7
#
# One image for the whole fleet: ingest-worker (default), ingestctl and
# factory-sim. Build with `docker build -t ingest-fleet .`; compose and the
# Kubernetes manifests pick the binary through `command`.
#
# Stages:
#   chef     - the official Rust image plus cargo-chef, shared by the two below
#   planner  - reduces the workspace to a dependency "recipe"
#   builder  - builds dependencies from the recipe (a layer that only changes
#              when Cargo.toml/Cargo.lock change), then the workspace itself
#   runtime  - bookworm-slim with CA certificates and the three binaries

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS chef
# cargo-chef is pinned so that a new release cannot change the cache key
# format under us between two builds.
RUN cargo install cargo-chef --locked --version 0.1.78
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# The dependency layer: rebuilt only when the recipe (manifests and lock file)
# changes, not when a source file does.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo chef cook --release --locked --workspace --recipe-path recipe.json
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked --workspace --bins \
 && mkdir -p /out \
 && cp target/release/ingest-worker target/release/ingestctl \
       target/release/factory-sim /out/

FROM debian:${DEBIAN_RELEASE}-slim AS runtime
# ca-certificates: lapin and reqwest verify TLS peers (amqps://, https://)
# against the system store. Nothing else is installed: no compiler, no curl.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 ingest \
 && useradd --system --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin ingest

COPY --from=builder /out/ingest-worker /out/ingestctl /out/factory-sim \
     /usr/local/bin/
# A probe written in bash (/dev/tcp) so the image needs no HTTP client.
COPY --chmod=0755 deploy/docker/http-probe /usr/local/bin/http-probe

# Numeric so that Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001

ENV INGEST_HTTP_ADDR=0.0.0.0:9464 \
    INGEST_LOG_FORMAT=json \
    RUST_LOG=info

EXPOSE 9464

# Liveness of the default command (the worker). Compose and Kubernetes set
# their own checks per service; this one is for a plain `docker run`.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["http-probe", "9464", "/healthz"]

# SIGTERM starts the worker's drain; no init process is needed because the
# worker is PID 1 and handles the signal itself.
STOPSIGNAL SIGTERM
CMD ["ingest-worker"]
