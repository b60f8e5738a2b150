#!/usr/bin/env bash
# Load benchmark of the example service (release build) on loopback, with wrk.
#
#   bash scripts/load-bench.sh [SECONDS]      # default 10 s per run; writes target/load-bench.md
#
# The server runs on core 0 with one Tokio worker, wrk on core 1 (one thread, 32
# connections), so the two never compete for a core. Runs, each bounded by SECONDS:
#   1. open route            GET /health                      (no token)
#   2. authenticated, one    GET /api/me with one repeated token (verified-token cache hits)
#   3. authenticated, many   GET /api/me with distinct tokens, each used once per pass
#   4. baseline, many        the same tokens against `naive-api`: a hand-written extractor
#                            calling jsonwebtoken::decode (bench/src/bin/naive-api.rs)
# It stops every process it started, whatever happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_RUN="${1:-10}"
TOKENS="${TOKENS:-40000}"
OUT="target/load-bench.md"
WORK="$(mktemp -d /tmp/scopegate-load-XXXXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

if ! command -v wrk >/dev/null; then
  echo "installing wrk (Debian package)" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 cores (server and load on different cores)" >&2; exit 1; fi

cargo build --release -q -p appointments-api -p scopegate-loadbench
BIN=target/release

wait_for_line() { # file pattern timeout_s
  local deadline=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; exit 1; }
    sleep 0.1
  done
}

# The example service with its development issuer, on core 0.
TOKIO_WORKER_THREADS=1 BIND=127.0.0.1:0 RUST_LOG=warn \
  taskset -c 0 "$BIN/appointments-api" >"$WORK/api.out" 2>"$WORK/api.err" &
PIDS+=($!)
wait_for_line "$WORK/api.out" "listening on" 30
API=$(sed -nE 's|^listening on (http://[^ ]+)$|\1|p' "$WORK/api.out" | head -1)
ISSUER=$(sed -nE 's|^ *issuer: +(http://[^ ]+).*|\1|p' "$WORK/api.out" | head -1)
CLIENT_ID=$(sed -nE 's|^ *client_id: +([^ ]+).*|\1|p' "$WORK/api.out" | head -1)
CLIENT_SECRET=$(sed -nE 's|^ *client_secret: +([^ ]+).*|\1|p' "$WORK/api.out" | head -1)
[ -n "$API" ] && [ -n "$ISSUER" ] && [ -n "$CLIENT_ID" ] || { echo "could not read the banner" >&2; cat "$WORK/api.out" >&2; exit 1; }

echo "minting $TOKENS distinct tokens from $ISSUER ..." >&2
taskset -c 1 "$BIN/mint-tokens" "$ISSUER/token" "$CLIENT_ID" "$CLIENT_SECRET" "$TOKENS" "$WORK/tokens.txt" read:appointments
head -1 "$WORK/tokens.txt" >"$WORK/one-token.txt"

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

run_wrk() { # name url token_file(or -)
  local out="$WORK/$1.wrk"
  if [ "$3" = "-" ]; then
    taskset -c 1 wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" --latency "$2" >"$out"
  else
    TOKEN_FILE="$3" taskset -c 1 wrk -t1 -c32 -d"${SECONDS_PER_RUN}s" --latency -s "$WORK/tokens.lua" "$2" >"$out"
  fi
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
  echo "$1 $rps $p99 ${non2xx:-0}"
}

sleep 1
OPEN=$(run_wrk open "$API/health" -)
ONE=$(run_wrk one-token "$API/api/me" "$WORK/one-token.txt")
MANY=$(run_wrk many-tokens "$API/api/me" "$WORK/tokens.txt")

# The baseline on the same core, against the same issuer and tokens.
TOKIO_WORKER_THREADS=1 ISSUER="$ISSUER" BIND=127.0.0.1:0 \
  taskset -c 0 "$BIN/naive-api" >"$WORK/naive.out" 2>"$WORK/naive.err" &
PIDS+=($!)
wait_for_line "$WORK/naive.err" "listening on" 30
NAIVE=$(sed -nE 's|^listening on (http://[^ ]+)$|\1|p' "$WORK/naive.err" | head -1)
sleep 1
NAIVE_MANY=$(run_wrk naive-many-tokens "$NAIVE/api/me" "$WORK/tokens.txt")

read -r _ open_rps open_p99 open_bad <<<"$OPEN"
read -r _ one_rps one_p99 one_bad <<<"$ONE"
read -r _ many_rps many_p99 many_bad <<<"$MANY"
read -r _ naive_rps naive_p99 naive_bad <<<"$NAIVE_MANY"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }

mkdir -p target
{
  echo "| run | req/s | p99 | non-2xx | ratio to the open route |"
  echo "|---|---|---|---|---|"
  echo "| open route \`GET /health\` | $open_rps | $open_p99 | $open_bad | 1.000 |"
  echo "| \`GET /api/me\`, one repeated token | $one_rps | $one_p99 | $one_bad | $(ratio "$one_rps" "$open_rps") |"
  echo "| \`GET /api/me\`, $TOKENS distinct tokens | $many_rps | $many_p99 | $many_bad | $(ratio "$many_rps" "$open_rps") |"
  echo "| baseline: hand-written \`jsonwebtoken::decode\` extractor, same tokens | $naive_rps | $naive_p99 | $naive_bad | $(ratio "$naive_rps" "$open_rps") |"
  echo
  echo "wrk -t1 -c32 -d${SECONDS_PER_RUN}s on core 1; server with one Tokio worker on core 0; ES256 tokens from the development issuer; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')."
} | tee "$OUT"
