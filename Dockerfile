# syntax=docker/dockerfile:1
# Multi-stage build: a static, pure-Go binary (CGO off: SQLite is modernc.org/sqlite)
# on Debian slim with ffmpeg and a font (the composite video, composition/composite),
# running as a non-root user.
#
#   docker build -t recorder .
#   docker run -p 8080:8080 -p 40000-40099:40000-40099/udp -v recorder-data:/data recorder
#
# WebRTC media arrives over UDP: publish the port range of webrtc.udpPortRange (a socket
# per connection) and set publicURL and webrtc.natIPs for your host. One socket for every
# connection (webrtc.udpMux: ":40000", one port to publish) costs less CPU per stream, but
# this non-root container cannot force that socket's receive buffer past the host's
# net.core.rmem_max (often 208 KiB: a stall of a few ms then drops packets): raise it on
# the host (sysctl -w net.core.rmem_max=33554432) before you switch to udpMux.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/recorder ./cmd/recorder \
 && mkdir -p /out/data

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg fonts-dejavu-core ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd -g 65532 nonroot && useradd -u 65532 -g 65532 -d /data -s /usr/sbin/nologin nonroot
COPY --from=build /out/recorder /usr/local/bin/recorder
COPY --from=build --chown=65532:65532 /out/data /data
COPY --chown=65532:65532 <<'YAML' /etc/recorder/recorder.yaml
listen: 0.0.0.0:8080
dataDir: /data
publicURL: ${RECORDER_PUBLIC_URL}
webrtc:
  udpPortRange: "40000-40099"
  natIPs: []
YAML
USER 65532:65532
VOLUME ["/data"]
EXPOSE 8080 40000-40099/udp
ENTRYPOINT ["/usr/local/bin/recorder"]
CMD ["serve", "--config", "/etc/recorder/recorder.yaml"]
