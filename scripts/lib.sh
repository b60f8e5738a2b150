# Shared by the scripts that run the example service as a release build against the
# loopback issuer (scripts/load-bench.sh, scripts/profile-request.sh). Source it from the
# repository root after `set -euo pipefail`.

# A scratch directory ($WORK) and the processes started ($PIDS), both cleaned up on exit,
# whatever happens.
WORK="$(mktemp -d "/tmp/scopegate-$1-XXXXXX")"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# need COMMAND: installs the Debian package of that name when the command is missing.
need() {
  command -v "$1" >/dev/null && return
  echo "installing $1 (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq "$1" >/dev/null
}

# Two builds: the bench tools use scopegate's `testing` feature, which must not reach the
# example service's build.
build_release() {
  cargo build --release -q -p appointments-api
  cargo build --release -q -p scopegate-loadbench
  BIN=target/release
}

# start_issuer N: the loopback issuer (discovery and JWKS) with N distinct RS256 tokens
# signed beforehand in $WORK/tokens.txt (public key in $WORK/key.pem); sets $ISSUER.
start_issuer() {
  "$BIN/bench-issuer" "$1" "$WORK/tokens.txt" "$WORK/key.pem" 2>"$WORK/issuer.err" &
  PIDS+=($!)
  local deadline=$((SECONDS + 600))
  until grep -q "^issuer: " "$WORK/issuer.err" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "the loopback issuer did not start" >&2; cat "$WORK/issuer.err" >&2; exit 1; }
    sleep 0.05
  done
  ISSUER=$(sed -nE 's|^issuer: (http://[^ ]+)$|\1|p' "$WORK/issuer.err")
}
