#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what is missing (Mosquitto
# from Debian, influxd v1.8.10 and staticcheck through the Go module proxy,
# Debian's docker-compose to validate docker-compose.yml and python3-mne to open
# the EDF+ exports), checks formatting,
# vet and staticcheck, then runs every test. Integration tests start the real
# Mosquitto and InfluxDB themselves on free loopback ports in temporary
# directories (internal/testenv) and stop them afterwards; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '==> %s\n' "$*" >&2; }
gobin="$(go env GOPATH)/bin"
export PATH="$PATH:$gobin:/usr/sbin"

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
command -v mosquitto >/dev/null || missing+=(mosquitto mosquitto-clients)
command -v docker-compose >/dev/null || missing+=(docker-compose)
# Debian's MNE validates the EDF+ exports (it lives under /usr/bin/python3, not a pyenv python).
/usr/bin/python3 -c 'import mne' 2>/dev/null || missing+=(python3-mne)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing ${missing[*]} from Debian"
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! command -v influxd >/dev/null; then
	log "building influxd v1.8.10 (about a minute)"
	GOFLAGS= go install github.com/influxdata/influxdb/cmd/influxd@v1.8.10
fi
if ! command -v staticcheck >/dev/null; then
	log "installing staticcheck v0.8.2"
	GOFLAGS= go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
fi

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
log "go vet"
go vet ./...
log "staticcheck"
staticcheck ./...

log "go test (unit and integration, real Mosquitto $(mosquitto -h 2>/dev/null | head -1 | awk '{print $3}') and influxd at $(command -v influxd))"
go test -count=1 -timeout 20m "$@" ./...
