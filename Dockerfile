# syntax=docker/dockerfile:1
# crampwatch service image: a static Go binary on a slim Debian base.
# Build: docker build -t crampwatch .   (docker-compose.yml does this)

FROM golang:1.26.8-bookworm AS build
WORKDIR /src
# Modules first, so code changes do not re-download them.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/crampwatch ./cmd/crampwatch

# Debian rather than distroless: the health check needs a shell (bash's
# /dev/tcp) to ask /readyz, and the image then has no extra packages.
FROM debian:12.11-slim
RUN mkdir -p /var/lib/crampwatch && chown 65532:65532 /var/lib/crampwatch
COPY --from=build /out/crampwatch /usr/local/bin/crampwatch
USER 65532:65532
WORKDIR /var/lib/crampwatch
VOLUME /var/lib/crampwatch
EXPOSE 9090
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
	CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9090 && printf 'GET /readyz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["crampwatch"]
CMD ["serve"]
