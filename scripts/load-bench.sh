#!/usr/bin/env bash
# Load benchmark of the example service (release build) on loopback, with wrk.
#
#   bash scripts/load-bench.sh [SECONDS]      # default 10 s per run; writes target/load-bench.md
#
# A loopback issuer (bench-issuer: discovery and JWKS, scopegate's test keys) signs
# TOKENS distinct RS256 access tokens beforehand. The server runs on core 0, wrk on core 1
# (one thread, 32 connections), so the two never compete for a core; each server is
# measured with one Tokio worker and with the default multi-thread runtime (as many
# workers as cores, here both on core 0). Runs, each bounded by SECONDS:
#   open        GET /health on the example service                       (no token)
#   one token   GET /api/me with one repeated token                      (verified-token cache hits)
#   distinct    GET /api/me with distinct tokens, TOKEN_CACHE=off        (a signature check per request)
#   floor       the same tokens against floor-api: the RS256 signature check alone with a
#               pre-parsed aws-lc-rs key, answering the same JSON    (bench/src/bin/floor-api.rs)
#   naive       the same tokens against naive-api: a hand-written jsonwebtoken::decode
#               extractor                                            (bench/src/bin/naive-api.rs)
# Then both cores: the example with two workers, unpinned, and wrk with two threads on the
# same machine (open and one token), as a scaling ratio to one worker on one core; and the
# start-up time: from the process's start to its first accepted request (5 starts).
# It stops every process it started, whatever happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_RUN="${1:-10}"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
TOKENS="${TOKENS:-20000}"
OUT="target/load-bench.md"
WORK="$(mktemp -d /tmp/scopegate-load-XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v curl >/dev/null || { echo "needs curl" >&2; exit 1; }
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 cores (server and load on different cores)" >&2; exit 1; fi

# Two builds: the bench tools use scopegate's `testing` feature, which must not reach the
# example service's build.
cargo build --release -q -p appointments-api
cargo build --release -q -p scopegate-loadbench
BIN=target/release

wait_for_line() { # file pattern timeout_s
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1; }
    sleep 0.05
  done
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "signing $TOKENS distinct RS256 tokens ..." >&2
"$BIN/bench-issuer" "$TOKENS" "$WORK/tokens.txt" "$WORK/key.pem" 2>"$WORK/issuer.err" &
PIDS+=($!)
wait_for_line "$WORK/issuer.err" "^issuer: " 600
ISSUER=$(sed -nE 's|^issuer: (http://[^ ]+)$|\1|p' "$WORK/issuer.err")
head -1 "$WORK/tokens.txt" >"$WORK/one-token.txt"
TOKEN_BYTES=$(head -1 "$WORK/tokens.txt" | tr -d '\n' | wc -c)

cat >"$WORK/tokens.lua" <<'LUA'
-- Each request takes the next token of the file (distinct subjects, distinct tokens).
local path = os.getenv("TOKEN_FILE")
tokens = {}
for line in io.lines(path) do tokens[#tokens + 1] = line end
local i = 0
request = function()
  i = i + 1
  if i > #tokens then i = 1 end
  return wrk.format("GET", "/api/me", { ["Authorization"] = "Bearer " .. tokens[i] })
end
LUA

SERVER_PID=""
SERVER_URL=""
# start_server NAME CPUS WORKERS ENV... -- BINARY: starts it, sets SERVER_PID and SERVER_URL.
start_server() {
  local name=$1 cpus=$2 workers=$3; shift 3
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  local workers_env=()
  [ "$workers" = default ] || workers_env=(TOKIO_WORKER_THREADS="$workers")
  env "${workers_env[@]}" "${envs[@]}" BIND=127.0.0.1:0 RUST_LOG=warn taskset -c "$cpus" "$@" \
    >"$WORK/$name.out" 2>"$WORK/$name.err" &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  local deadline=$((SECONDS + 60))
  until grep -q "listening on" "$WORK/$name.out" "$WORK/$name.err" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "$name did not start" >&2; cat "$WORK/$name.out" "$WORK/$name.err" >&2; exit 1; }
    sleep 0.05
  done
  SERVER_URL=$(cat "$WORK/$name.out" "$WORK/$name.err" | sed -nE 's|^listening on (http://[^ ]+)$|\1|p' | head -1)
  sleep 0.5
}

# run_wrk NAME URL TOKEN_FILE|- [THREADS CONNECTIONS CPUS] → "req/s p99 non2xx"
run_wrk() {
  local out="$WORK/$1.wrk" threads=${4:-1} conns=${5:-32} cpus=${6:-1}
  if [ "$3" = "-" ]; then
    taskset -c "$cpus" wrk -t"$threads" -c"$conns" -d"${SECONDS_PER_RUN}s" --latency "$2" >"$out"
  else
    TOKEN_FILE="$3" taskset -c "$cpus" wrk -t"$threads" -c"$conns" -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/tokens.lua" "$2" >"$out"
  fi
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
  echo "$rps $p99 ${non2xx:-0}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
declare -A RPS P99 BAD
record() { # key "rps p99 bad"
  read -r RPS[$1] P99[$1] BAD[$1] <<<"$2"
  echo "  $1: ${RPS[$1]} req/s, p99 ${P99[$1]}, non-2xx ${BAD[$1]}" >&2
}

for mode in 1 default; do
  echo "runtime: workers=$mode, server on core 0" >&2
  start_server "api-$mode" 0 "$mode" ISSUER="$ISSUER" -- "$BIN/appointments-api"
  record "open-$mode" "$(run_wrk "open-$mode" "$SERVER_URL/health" -)"
  record "one-$mode" "$(run_wrk "one-$mode" "$SERVER_URL/api/me" "$WORK/one-token.txt")"
  stop "$SERVER_PID"
  start_server "nocache-$mode" 0 "$mode" ISSUER="$ISSUER" TOKEN_CACHE=off -- "$BIN/appointments-api"
  record "distinct-$mode" "$(run_wrk "distinct-$mode" "$SERVER_URL/api/me" "$WORK/tokens.txt")"
  stop "$SERVER_PID"
  start_server "floor-$mode" 0 "$mode" PUBLIC_KEY_PEM="$WORK/key.pem" -- "$BIN/floor-api"
  record "floor-$mode" "$(run_wrk "floor-$mode" "$SERVER_URL/api/me" "$WORK/tokens.txt")"
  stop "$SERVER_PID"
  start_server "naive-$mode" 0 "$mode" ISSUER="$ISSUER" -- "$BIN/naive-api"
  record "naive-$mode" "$(run_wrk "naive-$mode" "$SERVER_URL/api/me" "$WORK/tokens.txt")"
  stop "$SERVER_PID"
done

echo "both cores: two workers, wrk with two threads, unpinned" >&2
start_server "api-2cores" 0,1 2 ISSUER="$ISSUER" -- "$BIN/appointments-api"
record "open-2cores" "$(run_wrk "open-2cores" "$SERVER_URL/health" - 2 64 0,1)"
record "one-2cores" "$(run_wrk "one-2cores" "$SERVER_URL/api/me" "$WORK/one-token.txt" 2 64 0,1)"
stop "$SERVER_PID"

echo "start-up: process start to first accepted request" >&2
TOKEN=$(cat "$WORK/one-token.txt")
STARTUPS=()
for i in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 20000))
  t0=$(date +%s%N)
  ISSUER="$ISSUER" BIND="127.0.0.1:$port" RUST_LOG=warn "$BIN/appointments-api" >"$WORK/startup.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  deadline=$((SECONDS + 30))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/api/me" 2>/dev/null)" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "no accepted request within 30 s" >&2; cat "$WORK/startup.out" >&2; exit 1; }
    sleep 0.002
  done
  t1=$(date +%s%N)
  STARTUPS+=($(( (t1 - t0) / 1000000 )))
  stop "$pid"
done
STARTUP_MEDIAN=$(printf '%s\n' "${STARTUPS[@]}" | sort -n | sed -n 3p)

mkdir -p target
row() { # label key base
  echo "| $1 | ${RPS[$2]} | ${P99[$2]} | ${BAD[$2]} | $(ratio "${RPS[$2]}" "${RPS[$3]}") |"
}
{
  for mode in 1 default; do
    if [ "$mode" = 1 ]; then echo "### One Tokio worker, server on core 0"; else echo "### Default multi-thread runtime ($(nproc) workers), server on core 0"; fi
    echo
    echo "| run | req/s | p99 | non-2xx | ratio |"
    echo "|---|---|---|---|---|"
    row "open route \`GET /health\`" "open-$mode" "open-$mode"
    row "\`GET /api/me\`, one repeated token (ratio to the open route; target ≥ 0.9)" "one-$mode" "open-$mode"
    row "signature floor (\`floor-api\`), distinct tokens" "floor-$mode" "floor-$mode"
    row "\`GET /api/me\`, distinct tokens, \`TOKEN_CACHE=off\` (ratio to the floor; target ≥ 0.85)" "distinct-$mode" "floor-$mode"
    row "hand-written \`jsonwebtoken::decode\` extractor (\`naive-api\`), distinct tokens (ratio to the floor)" "naive-$mode" "floor-$mode"
    echo
  done
  echo "### Both cores"
  echo
  echo "| run | req/s | p99 | non-2xx | scaling (to one worker on one core) |"
  echo "|---|---|---|---|---|"
  row "open route, two workers on two cores" "open-2cores" "open-1"
  row "\`GET /api/me\`, one repeated token, two workers on two cores" "one-2cores" "one-1"
  echo
  echo "wrk -t2 -c64 on the same two cores as the server: the load generator takes a share of the cores, so the ratio is what one machine running both shows, not the server's ceiling."
  echo
  echo "### Start-up"
  echo
  echo "Process start to the first accepted \`GET /api/me\` (discovery and JWKS from the loopback issuer, then a signature check), median of 5: **${STARTUP_MEDIAN} ms** (all: ${STARTUPS[*]} ms; polled every 2 ms with curl)."
  echo
  echo "wrk -t1 -c32 -d${SECONDS_PER_RUN}s on core 1 unless said otherwise; RS256 tokens of ${TOKEN_BYTES} bytes from the loopback issuer, ${TOKENS} distinct; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at the start ${LOAD_AT_START}, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT"
