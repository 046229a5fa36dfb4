# syntax=docker/dockerfile:1
# git-controller image: build in the official Rust image (Debian bookworm, same glibc as the
# runtime), run on distroless cc-debian12 (glibc, libgcc, libssl3, CA certificates; no shell, no
# package manager) as the unprivileged user 65532.
#
#   docker build -t git-controller .
#   docker run --rm git-controller --help

ARG RUST_VERSION=1.95

FROM docker.io/library/rust:${RUST_VERSION}-bookworm AS builder
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends pkg-config libssl-dev cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# libgit2 and libssh2 are built from the vendored sources by their -sys crates, and zlib-ng
# (with cmake) and linked statically, since the runtime image has no libz. OpenSSL stays dynamic
# (libssl3 is in the runtime image and gets its security updates).
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p git-controller --bin git-controller \
 && install -D -m 0755 target/release/git-controller /out/git-controller \
 && /out/git-controller --version

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="git-controller" \
      org.opencontainers.image.description="Two-way, per-field sync between Kubernetes objects and a Git repository" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/git-controller /usr/local/bin/git-controller
# The build leaves out mimalloc's request for transparent huge pages (`no_thp` in Cargo.toml); on
# nodes whose THP setting is `always` the kernel would still back its arenas with them, and a
# 2 MiB page that holds one live block stays resident whole: this turns THP off for the process.
ENV MIMALLOC_ALLOW_THP=0
# The numeric id (distroless' "nonroot"), so runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# /metrics, /healthz, /readyz on 8080; Git webhooks on 9292 (see the Helm chart).
EXPOSE 8080 9292
ENTRYPOINT ["/usr/local/bin/git-controller"]
CMD ["run", "--metrics-addr", "0.0.0.0:8080"]
