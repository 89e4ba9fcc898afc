# syntax=docker/dockerfile:1
# The `desktop` template's image (ghcr.io/envhub/desktop): Xvfb, openbox, an xterm, x11vnc and
# websockify serving noVNC on PORT, supervised by `envhub workload desktop` as on one machine.
# It takes the envhub binary from the hub image, so build that first (hub.Dockerfile), then:
#
#   docker build -f deploy/docker/desktop.Dockerfile --build-arg ENVHUB_IMAGE=ghcr.io/envhub/hub:dev \
#       -t ghcr.io/envhub/desktop:dev .
#
# The template gives no args, so the image's command runs. Nothing listens without a password
# except on loopback (x11vnc) and PORT (noVNC), which only the hub can reach on Kubernetes.

ARG ENVHUB_IMAGE=ghcr.io/envhub/hub:latest
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${ENVHUB_IMAGE} AS envhub

FROM ${RUNTIME_IMAGE}
# The programs the workload starts, fonts for the X server and xterm, noVNC's files in
# /usr/share/novnc, and the libraries envhub links dynamically (hub.Dockerfile). Debian's archive moves on within a release, so versions are not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        xvfb openbox xterm x11vnc websockify novnc \
        xfonts-base fonts-dejavu-core libstdc++6 zlib1g ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/*
# A numeric, non-root user (runAsNonRoot can only verify a number); its home is the working
# directory, where the desktop keeps HOME and noVNC's served files. X servers need /tmp/.X11-unix.
RUN groupadd --gid 65532 desktop \
    && useradd --uid 65532 --gid 65532 --no-log-init --create-home --home-dir /home/desktop --shell /bin/bash desktop \
    && install -d -m 1777 /tmp/.X11-unix
COPY --from=envhub /opt/envhub /opt/envhub
ENV PATH=/opt/envhub:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LANG=C.UTF-8 \
    HOST=0.0.0.0 \
    PORT=6080 \
    NOVNC_DIR=/usr/share/novnc \
    SWIFT_BACKTRACE=enable=yes,sanitize=yes,threads=all,images=all,interactive=no,swift-backtrace=/opt/envhub/swift-backtrace-static
USER 65532:65532
WORKDIR /home/desktop
EXPOSE 6080
ENTRYPOINT ["envhub"]
CMD ["workload", "desktop"]
