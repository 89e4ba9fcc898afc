# syntax=docker/dockerfile:1
# The hub, and the image of the built-in workloads (the same binary), from the repository's root:
#
#   docker build -f deploy/docker/hub.Dockerfile -t ghcr.io/envhub/hub:dev .
#   docker build -f deploy/docker/hub.Dockerfile --target workloads -t ghcr.io/envhub/workloads:dev .
#
# The templates' `image: ghcr.io/envhub/workloads:latest` with `args: ["workload", "hello"]`
# run `envhub workload hello` in the second. The Swift standard library and Foundation are
# linked statically: the binary needs only glibc, libstdc++ and zlib from Debian (checked with
# ldd on a release build of Swift 6.3.1).

ARG SWIFT_IMAGE=swift:6.3-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${SWIFT_IMAGE} AS build
WORKDIR /src
# The dependencies first, so that a change to envhub's sources does not fetch them again.
# Package.resolved is not in git; when the context has one, the build uses exactly its versions.
COPY Package.* ./
RUN if [ -f Package.resolved ]; then swift package resolve --force-resolved-versions; else swift package resolve; fi
COPY Sources ./Sources
# The manifest declares the test targets, so their folders must exist to build anything.
COPY Tests ./Tests
# .build is a cache mount (kept between builds), so the results are copied out in the same step:
# the binary, every resource bundle SwiftPM puts beside it (Bundle.module looks there), and
# the backtracer that prints a readable stack when the process crashes. Only the debug
# information is stripped (207 MB to 126 MB): the symbols stay, so backtraces name functions.
RUN --mount=type=cache,target=/src/.build \
    swift build -c release --product envhub --static-swift-stdlib \
    && bin="$(swift build -c release --show-bin-path)" \
    && mkdir -p /staging \
    && cp "$bin/envhub" /staging/ \
    && strip --strip-debug /staging/envhub \
    && cp -R "$bin"/*.resources /staging/ \
    && cp /usr/libexec/swift/linux/swift-backtrace-static /staging/

FROM ${RUNTIME_IMAGE} AS runtime
# Debian's archive moves on within a release, so versions are not pinned: the base image's tag is.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libstdc++6 zlib1g ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
# A numeric, non-root user: Kubernetes' runAsNonRoot can only verify a number. 65532 is the
# user the Kubernetes runtime's fsGroup gives environment volumes to.
RUN groupadd --gid 65532 envhub \
    && useradd --uid 65532 --gid 65532 --no-log-init --create-home --home-dir /home/envhub --shell /usr/sbin/nologin envhub \
    && install -d -o 65532 -g 65532 /var/lib/envhub
COPY --from=build /staging /opt/envhub
ENV PATH=/opt/envhub:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/opt/envhub/swift-backtrace-static
USER 65532:65532
ENTRYPOINT ["envhub"]

# The built-in workloads: `docker run IMAGE workload athlete`. They listen on HOST:PORT;
# in a pod that is every address.
FROM runtime AS workloads
ENV HOST=0.0.0.0 \
    PORT=8080
WORKDIR /home/envhub
EXPOSE 8080
CMD ["workload", "hello"]

# The hub (the last stage, so the default target). No HEALTHCHECK: Kubernetes ignores it and
# probes /healthz and /readyz itself (deploy/hub/deployment.yaml), and the image has no curl.
FROM runtime AS hub
ENV ENVHUB_HOST=0.0.0.0 \
    ENVHUB_PORT=8080 \
    ENVHUB_DATA_DIR=/var/lib/envhub
WORKDIR /var/lib/envhub
EXPOSE 8080
CMD ["serve"]
