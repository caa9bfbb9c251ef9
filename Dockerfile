# Lifeboat's image for `docker build -t lifeboat-backup/lifeboat .` where
# golang and scratch can be pulled. scripts/build-image makes the same
# image without pulling anything (what the tests use): the static binary,
# minimal passwd/group, /tmp and CA certificates on an empty base.
#
# Run it with the engine socket, the Docker data root at the same path
# inside as outside, and lifeboat's state: see deploy/compose.yaml.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# Static, with the C zstd encoder linked in (cgo; netgo and osusergo keep
# glibc's NSS out): the image is built FROM scratch.
RUN CGO_ENABLED=1 go build -trimpath -tags netgo,osusergo \
      -ldflags "-s -w -linkmode external -extldflags -static -X main.version=${VERSION}" -o /out/lifeboat ./cmd/lifeboat \
 && mkdir -p /out/etc/ssl/certs /out/tmp /out/root /out/var/lib/lifeboat /out/var/cache/lifeboat \
 && chmod 1777 /out/tmp && chmod 700 /out/root /out/var/lib/lifeboat /out/var/cache/lifeboat \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && echo 'root:x:0:0:root:/root:/sbin/nologin' > /out/etc/passwd \
 && echo 'root:x:0:' > /out/etc/group

FROM scratch
COPY --from=build /out/ /
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# Lifeboat leaves its own container out in any case; the label says so
# to a lifeboat running elsewhere too.
LABEL lifeboat.enable=false
EXPOSE 8420
ENTRYPOINT ["/lifeboat"]
CMD ["serve", "--listen", ":8420"]
