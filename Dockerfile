# syntax=docker/dockerfile:1
# Multi-stage build of the chronicler binary: static, trimmed paths, version
# stamped; the final image is distroless (CA certificates and tzdata included),
# non-root. ./test/run.sh builds the binary with the same flags (no Docker
# engine on CI machines). Multi-platform: the build stage runs on the build
# machine's platform and cross-compiles for the target's
# (docker buildx build --platform linux/amd64,linux/arm64 ...).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Set by BuildKit from --platform (empty without it: the build machine's).
ARG TARGETOS
ARG TARGETARCH
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -tags release -ldflags "-s -w -X main.version=${VERSION}" -o /out/chronicler ./cmd/chronicler

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/chronicler /usr/local/bin/chronicler
USER nonroot:nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/chronicler"]
CMD ["run", "--config", "/etc/chronicler/chronicler.yaml"]
