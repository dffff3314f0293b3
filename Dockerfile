# The Writeback executables on Debian 12. Build: docker build -t writeback .
ARG SWIFT_VERSION=6.3.1
FROM swift:${SWIFT_VERSION}-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        librdkafka-dev libpq-dev libcurl4-openssl-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Shared Shared
COPY Services Services
COPY Tests Tests
COPY Tools Tools
RUN swift build -c release --static-swift-stdlib \
    && mkdir /out \
    && cp "$(swift build -c release --show-bin-path)"/writeback-* "$(swift build -c release --show-bin-path)"/writeback /out/

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
        librdkafka1 libpq5 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 writeback
COPY --from=build /out/ /usr/local/bin/
COPY examples /usr/local/share/writeback/examples
COPY scripts/demo-setup /usr/local/share/writeback/scripts/demo-setup
USER writeback
# Each service is one of: writeback-api, writeback-writer, writeback-cache-invalidator,
# writeback-operations, writeback-notifier, writeback-sandbox, writeback-dev; `writeback` is the command-line tool.
CMD ["writeback-api"]
