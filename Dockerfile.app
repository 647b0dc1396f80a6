# syntax=docker/dockerfile:1.12
#
# taskstack app image: carries cmd/app (web page + API, the default
# entrypoint) and cmd/monitor (asynqmon dashboard and queue metrics; compose
# runs it with `entrypoint: ["/monitor"]`). Neither binary runs task code.
#
#   docker build -f Dockerfile.app --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse HEAD) .
#
# Checked by deploy/checks/compose (dockerfile_test.go): distroless nonroot
# final stage, numeric USER, static flags, exec-form ENTRYPOINT/HEALTHCHECK.

FROM --platform=$BUILDPLATFORM golang:1.26.8-trixie AS build
WORKDIR /src
# Modules first, so that a code change does not re-download them.
COPY go.mod go.sum ./
# The patched asynq go.mod replaces (third_party/asynq/README.md).
COPY third_party/asynq/ third_party/asynq/
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY cmd/ cmd/
COPY internal/ internal/
# The OpenAPI document the app serves (embedded).
COPY docs/openapi.go docs/openapi.yaml docs/
ARG TARGETOS TARGETARCH
ARG VERSION=dev
ARG COMMIT=unknown
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/app ./cmd/app && \
    CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" \
      -o /out/monitor ./cmd/monitor

# Static binaries on distroless: CA certificates, tzdata, /etc/passwd, no shell.
FROM gcr.io/distroless/static-debian13:nonroot
ARG VERSION=dev
ARG COMMIT=unknown
LABEL org.opencontainers.image.title="taskstack-app" \
      org.opencontainers.image.description="taskstack web app and API (/app) and queue monitor (/monitor)" \
      org.opencontainers.image.source="https://github.com/taskstack/taskstack" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}" \
      org.opencontainers.image.base.name="gcr.io/distroless/static-debian13:nonroot"
COPY --from=build /out/app /app
COPY --from=build /out/monitor /monitor
# 65532 is distroless' nonroot user; numeric so runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/app"]
# The binary checks its own /healthz: no shell or curl in this image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["/app", "healthcheck"]
