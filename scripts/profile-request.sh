#!/usr/bin/env bash
# Instructions per request of the example service (release build), counted by callgrind:
# `GET /health` against `GET /api/me` with one repeated token (a verified-token cache
# hit), both over one keep-alive connection, each minus a run that serves one request
# (start-up and shutdown). Instruction counts do not depend on what else the machine is
# doing, unlike req/s; they count user-space work only (not the kernel's socket work,
# which both routes share). Writes target/profile-request.md and keeps the callgrind
# files in target/profile/ (`callgrind_annotate --inclusive=yes target/profile/cg.me`).
#
#   bash scripts/profile-request.sh [REQUESTS]     # default 3000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

REQUESTS="${1:-3000}"
OUT="target/profile-request.md"
PROFILE="target/profile"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh profile
need valgrind
need curl
build_release
mkdir -p "$PROFILE"

start_issuer 1
TOKEN=$(head -1 "$WORK/tokens.txt")
PORT=$((20000 + RANDOM % 20000))

# count NAME PATH N: the instructions of a run that serves N requests over one connection.
count() {
  ISSUER="$ISSUER" TOKIO_WORKER_THREADS=1 BIND="127.0.0.1:$PORT" RUST_LOG=warn \
    valgrind --tool=callgrind --callgrind-out-file="$PROFILE/cg.$1" "$BIN/appointments-api" \
    >"$WORK/$1.out" 2>"$WORK/$1.err" &
  local pid=$!
  PIDS+=("$pid")
  local deadline=$((SECONDS + 120))
  until grep -q "listening on" "$WORK/$1.out" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "the service did not start" >&2; cat "$WORK/$1.err" >&2; exit 1; }
    sleep 0.2
  done
  local urls=()
  for _ in $(seq "$3"); do urls+=("http://127.0.0.1:$PORT$2"); done
  curl -sf -H "Authorization: Bearer $TOKEN" "${urls[@]}" >/dev/null
  kill -INT "$pid"
  wait "$pid" || true
  sed -nE 's/^==[0-9]+== Collected : ([0-9]+)$/\1/p' "$WORK/$1.err" | tail -1
}

BASE=$(count base /health 1)
HEALTH=$(count health /health $((REQUESTS + 1)))
ME=$(count me /api/me $((REQUESTS + 1)))
per() { awk -v a="$1" -v b="$BASE" -v n="$REQUESTS" 'BEGIN { printf "%.0f", (a - b) / n }'; }
HEALTH_PER=$(per "$HEALTH")
ME_PER=$(per "$ME")
TOP=$(callgrind_annotate --inclusive=yes "$PROFILE/cg.me" 2>/dev/null \
  | grep -E 'scopegate::|appointments_api::routes' | grep -v '^ *[0-9,]* *([^)]*) *[^ ]*core::ptr::drop_in_place' | grep -v 'AuthorityBuilder\|remote_keys\|IssuerClient::new\|self_test' | head -8 \
  | awk -v n="$REQUESTS" '{ gsub(",", "", $1); fn = $0; sub(/^[^?]*\?\?\?:/, "", fn); sub(/ \[.*$/, "", fn); printf "| `%s` | %.0f |\n", fn, $1 / n }')
{
  echo "| route | instructions per request |"
  echo "|---|---|"
  echo "| open route \`GET /health\` | $HEALTH_PER |"
  echo "| \`GET /api/me\`, one repeated token | $ME_PER |"
  echo "| difference | $((ME_PER - HEALTH_PER)) |"
  echo
  echo "Where the authenticated route's own work goes (inclusive instructions per request, $REQUESTS requests; the first one also checks the token's signature):"
  echo
  echo "| function | instructions per request |"
  echo "|---|---|"
  echo "$TOP"
  echo
  echo "callgrind ($(valgrind --version)), one Tokio worker, $REQUESTS requests over one keep-alive connection (curl), RS256 token of $(printf %s "$TOKEN" | wc -c) bytes."
} | tee "$OUT"
