# syntax=docker/dockerfile:1
# meeting-archiver container image. Build and run: see README, "Running in Docker".

# --- build -----------------------------------------------------------------
# The slim Rust image has gcc and libc6-dev, which is all the bundled SQLite and
# aws-lc-sys (rustls' crypto, built with cc: no cmake) need.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# Dependencies first: this layer stays cached until the manifest, the lock
# file or the bench the manifest names change (cargo refuses a manifest whose
# declared bench is missing).
COPY Cargo.toml Cargo.lock ./
COPY benches ./benches
RUN cargo fetch --locked
COPY migrations ./migrations
# docs/meeting.schema.json is compiled in: each archive gets a copy.
COPY docs ./docs
COPY src ./src
# The target folder is a build cache, so a source change recompiles only the crate.
RUN --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin meeting-archiver \
 && install -m 0755 target/release/meeting-archiver /usr/local/bin/meeting-archiver

# --- run -------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: the system roots that rustls trusts for the meeting API.
# The user owns the one volume, which holds the ledger and the archive.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home \
        --home-dir /var/lib/meeting-archiver --shell /usr/sbin/nologin meeting-archiver \
 && install -d -o meeting-archiver -g meeting-archiver -m 0750 /var/lib/meeting-archiver \
 && install -d -m 0755 /etc/meeting-archiver
COPY --from=build /usr/local/bin/meeting-archiver /usr/local/bin/meeting-archiver

# Mount the config here (listen on 0.0.0.0, see config/docker.toml); the App Key
# comes from a secret file (app_key_file) or MEETING_ARCHIVER_APP_KEY.
ENV MEETING_ARCHIVER_CONFIG=/etc/meeting-archiver/config.toml
VOLUME ["/var/lib/meeting-archiver"]
USER 10001:10001
EXPOSE 9187
# SIGTERM: transfers stop at a chunk boundary within download.shutdown_timeout
# (10s by default); give `docker stop` more than that (--time / stop_grace_period).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["meeting-archiver", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/meeting-archiver"]
CMD ["run"]
