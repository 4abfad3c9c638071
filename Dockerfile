# iocflow container image: a multi-stage build, a slim non-root runtime.
# (Docker images cannot be pulled on the development machines, so this file is not built in CI.)

# ---- build ---------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
# librdkafka is compiled from source by the rdkafka crate (make, a C/C++ compiler, OpenSSL).
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libssl-dev zlib1g-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# dev/dist: the release build the tests run, without its debug info (about 130 MB, not 650).
ENV CARGO_TARGET_DIR=/src/target
RUN dev/dist /src/dist

# ---- runtime -------------------------------------------------------------------------------
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3 zlib1g \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin iocflow
COPY --from=build /src/dist/iocflow /usr/local/bin/iocflow
COPY --from=build /src/config/asean.toml /etc/iocflow/iocflow.toml
COPY --from=build /src/config/constituency.toml /etc/iocflow/constituency.toml
COPY --from=build /src/data/warninglists /etc/data/warninglists
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/iocflow"]
CMD ["run", "--config", "/etc/iocflow/iocflow.toml"]
