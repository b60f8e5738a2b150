#!/usr/bin/env bash
# Load benchmark of the example service (release build) on loopback, with wrk.
#
#   bash scripts/load-bench.sh [SECONDS] [ROUNDS]   # default 2 s per run, 9 rounds;
#                                                   # writes target/load-bench.md
#
# A loopback issuer (bench-issuer: discovery and JWKS, scopegate's test keys) signs
# TOKENS distinct RS256 access tokens beforehand. The servers run on core 0, wrk on core 1
# (one thread, 32 connections), so the server and the load never compete for a core; each
# server is measured with one Tokio worker and with the default multi-thread runtime (as
# many workers as the CPUs the process may use: pinned to core 0, that is one; the table
# gives the count read from /proc). Runs:
#   open        GET /health on the example service                       (no token)
#   one token   GET /api/me with one repeated token                      (verified-token cache hits)
#   distinct    GET /api/me with distinct tokens, TOKEN_CACHE=off        (a signature check per request)
#   floor       the same tokens against floor-api: the RS256 signature check alone with a
#               pre-parsed aws-lc-rs key, answering the same JSON    (bench/src/bin/floor-api.rs)
#   naive       the same tokens against naive-api: a hand-written jsonwebtoken::decode
#               extractor                                            (bench/src/bin/naive-api.rs)
# The runs alternate, ROUNDS times, each bounded by SECONDS: a virtual machine's speed
# drifts by tens of percent within a minute, so a ratio is taken within each round and the
# table gives the median over the rounds, with its range. Within a round the runs go
# forth and back (open, one token, one token, open; floor, distinct, naive, naive,
# distinct, floor) and a ratio is that of the sums of the two runs of each: every run of a
# pair has the same mean position in the round, so a drift that is steady over the round
# cancels, whichever way it goes, instead of favouring the run that comes first. With one
# worker, each round also runs the open route against itself the same way: a ratio with
# nothing to find, whose range is the machine's own noise. The
# open and one-token runs send a fixed request (no wrk script), so the load generator does
# the same work for both.
# Then both cores: the example with two workers, unpinned, and wrk with two threads on the
# same machine (open and one token), as a scaling ratio to one worker on one core; and the
# start-up time: from the process's start to its first accepted request (5 starts).
# It stops every process it started, whatever happens.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_PER_RUN="${1:-2}"
ROUNDS="${2:-9}"
LOAD_AT_START="$(cut -d' ' -f1-3 /proc/loadavg)"
TOKENS="${TOKENS:-20000}"
OUT="target/load-bench.md"
# shellcheck source=scripts/lib.sh
source scripts/lib.sh load
need wrk
need curl
if [ "$(nproc)" -lt 2 ]; then echo "needs 2 cores (server and load on different cores)" >&2; exit 1; fi
build_release

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

echo "signing $TOKENS distinct RS256 tokens ..." >&2
start_issuer "$TOKENS"
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

# run_wrk NAME URL -|TOKEN_FILE|@TOKEN [THREADS CONNECTIONS CPUS] → "req/s p99 non2xx"
# (-: no token; a file: each request the next token of it; @TOKEN: that one token, fixed)
run_wrk() {
  local out="$WORK/$1.wrk" threads=${4:-1} conns=${5:-32} cpus=${6:-1}
  local args=(-t"$threads" -c"$conns" -d"${SECONDS_PER_RUN}s" --latency)
  case "$3" in
    -) taskset -c "$cpus" wrk "${args[@]}" "$2" >"$out" ;;
    @*) taskset -c "$cpus" wrk "${args[@]}" -H "Authorization: Bearer ${3#@}" "$2" >"$out" ;;
    *) TOKEN_FILE="$3" taskset -c "$cpus" wrk "${args[@]}" -s "$WORK/tokens.lua" "$2" >"$out" ;;
  esac
  local rps p99 non2xx
  rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
  p99=$(awk '$1 == "99%" {print $2}' "$out")
  non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $5}' "$out")
  echo "$rps $p99 ${non2xx:-0}"
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
declare -A SUM P99 BAD RUNS RATIOS URL WORKERS
# record KEY "rps p99 bad": one run of KEY; its req/s also adds to KEY's sum in this round.
record() {
  local rps p99 bad
  read -r rps p99 bad <<<"$2"
  RUNS[$1]+="$rps "
  P99[$1]+="$p99 "
  BAD[$1]=$(( ${BAD[$1]:-0} + bad ))
  SUM[$1]=$(awk -v a="${SUM[$1]:-0}" -v b="$rps" 'BEGIN { printf "%.2f", a + b }')
  echo "  $1: $rps req/s, p99 $p99, non-2xx $bad" >&2
}
# round_ratio KEY BASE: this round's ratio of KEY to BASE, from the sums of their runs.
round_ratio() {
  local r
  r=$(ratio "${SUM[$1]}" "${SUM[$2]}")
  RATIOS[$1]+="$r "
  echo "  $1 / $2 this round: $r" >&2
}
TOKEN=$(cat "$WORK/one-token.txt")
# What each run sends: the server (a key of URL), the path and run_wrk's token argument.
declare -A TARGET=(
  [open]="api /health -" [one]="api /api/me @$TOKEN" [same-a]="api /health -" [same-b]="api /health -"
  [floor]="floor /api/me $WORK/tokens.txt" [distinct]="nocache /api/me $WORK/tokens.txt"
  [naive]="naive /api/me $WORK/tokens.txt"
)
# mirrored MODE KEY...: one run of each KEY in turn (the caller lists them forth and back).
mirrored() {
  local mode=$1 key server path load
  shift
  for key in "$@"; do
    read -r server path load <<<"${TARGET[$key]}"
    record "$key-$mode" "$(run_wrk "$key-$mode" "${URL[$server]}$path" "$load")"
  done
}
workers() { grep -c '^tokio-rt-worker' /proc/"$1"/task/*/comm 2>/dev/null | awk -F: '{ n += $2 } END { print n }'; }

for mode in 1 default; do
  echo "runtime: workers=$mode, servers on core 0" >&2
  start_server "api-$mode" 0 "$mode" ISSUER="$ISSUER" -- "$BIN/appointments-api"
  URL[api]=$SERVER_URL
  WORKERS[$mode]=$(workers "$SERVER_PID")
  start_server "nocache-$mode" 0 "$mode" ISSUER="$ISSUER" TOKEN_CACHE=off -- "$BIN/appointments-api"
  URL[nocache]=$SERVER_URL
  start_server "floor-$mode" 0 "$mode" PUBLIC_KEY_PEM="$WORK/key.pem" -- "$BIN/floor-api"
  URL[floor]=$SERVER_URL
  start_server "naive-$mode" 0 "$mode" ISSUER="$ISSUER" -- "$BIN/naive-api"
  URL[naive]=$SERVER_URL
  for round in $(seq "$ROUNDS"); do
    echo " round $round" >&2
    SUM=()
    mirrored "$mode" open one one open
    round_ratio "one-$mode" "open-$mode"
    if [ "$mode" = 1 ]; then
      # The open route against itself, in the same order: no difference to find, so its
      # ratios show how far the machine alone moves a ratio.
      mirrored "$mode" same-a same-b same-b same-a
      round_ratio "same-b-$mode" "same-a-$mode"
    fi
    mirrored "$mode" floor distinct naive naive distinct floor
    round_ratio "distinct-$mode" "floor-$mode"
    round_ratio "naive-$mode" "floor-$mode"
  done
  for pid in "${PIDS[@]:1}"; do stop "$pid"; done
  PIDS=("${PIDS[0]}")
done

echo "both cores: two workers, wrk with two threads, unpinned" >&2
start_server "api-2cores" 0,1 2 ISSUER="$ISSUER" -- "$BIN/appointments-api"
for round in $(seq "$ROUNDS"); do
  record "open-2cores" "$(run_wrk "open-2cores" "$SERVER_URL/health" - 2 64 0,1)"
  record "one-2cores" "$(run_wrk "one-2cores" "$SERVER_URL/api/me" "@$TOKEN" 2 64 0,1)"
done
stop "$SERVER_PID"

echo "start-up: process start to first accepted request" >&2
STARTUPS=()
for i in 1 2 3 4 5; do
  # Port 0: the system picks a free port (a random one may be taken); the service prints
  # the address it bound, and the clock runs from before the process starts.
  t0=$(date +%s%N)
  ISSUER="$ISSUER" BIND="127.0.0.1:0" RUST_LOG=warn "$BIN/appointments-api" >"$WORK/startup.out" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  deadline=$((SECONDS + 30))
  url=""
  until [ -n "$url" ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "the service did not start within 30 s" >&2; cat "$WORK/startup.out" >&2; exit 1; }
    url=$(sed -nE 's|^listening on (http://[^ ]+)$|\1|p' "$WORK/startup.out" | head -1)
    [ -n "$url" ] || sleep 0.002
  done
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$url/api/me" 2>/dev/null)" = 200 ]; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "no accepted request within 30 s" >&2; cat "$WORK/startup.out" >&2; exit 1; }
    sleep 0.002
  done
  t1=$(date +%s%N)
  STARTUPS+=($(( (t1 - t0) / 1000000 )))
  stop "$pid"
done
STARTUP_MEDIAN=$(printf '%s\n' "${STARTUPS[@]}" | sort -n | sed -n 3p)

mkdir -p target
# row LABEL KEY [BASE]: median req/s over the rounds; with BASE, the median of the rounds'
# ratios KEY/BASE and their range.
row() {
  local ratio="1.000" range=""
  if [ -n "${3:-}" ]; then
    read -r -a r <<<"${RATIOS[$2]}"
    ratio=$(median "${r[@]}")
    range=" ($(printf '%s\n' "${r[@]}" | sort -g | head -1)–$(printf '%s\n' "${r[@]}" | sort -g | tail -1))"
  fi
  read -r -a runs <<<"${RUNS[$2]}"
  read -r -a p99s <<<"${P99[$2]}"
  echo "| $1 | $(median "${runs[@]}") | ${p99s[*]: -1} | ${BAD[$2]} | ${ratio}${range} |"
}
# scaling LABEL KEY BASE: the median of KEY's rounds over the median of BASE's.
scaling() {
  read -r -a a <<<"${RUNS[$2]}"
  read -r -a b <<<"${RUNS[$3]}"
  read -r -a p <<<"${P99[$2]}"
  echo "| $1 | $(median "${a[@]}") | ${p[*]: -1} | ${BAD[$2]} | $(ratio "$(median "${a[@]}")" "$(median "${b[@]}")") |"
}
{
  for mode in 1 default; do
    if [ "$mode" = 1 ]; then
      echo "### One Tokio worker, servers on core 0"
    else
      echo "### Default multi-thread runtime, servers on core 0 (tokio started ${WORKERS[$mode]} worker thread(s): one per CPU the process may use)"
    fi
    echo
    echo "| run | req/s (median) | p99 (last round) | non-2xx | ratio (median of ${ROUNDS} rounds, range) |"
    echo "|---|---|---|---|---|"
    row "open route \`GET /health\`" "open-$mode"
    row "\`GET /api/me\`, one repeated token (ratio to the open route; target ≥ 0.9)" "one-$mode" "open-$mode"
    if [ "$mode" = 1 ]; then
      row "the open route against itself (the same runs again: the machine's noise, no difference to find)" "same-b-$mode" "same-a-$mode"
    fi
    row "signature floor (\`floor-api\`), distinct tokens" "floor-$mode"
    row "\`GET /api/me\`, distinct tokens, \`TOKEN_CACHE=off\` (ratio to the floor; target ≥ 0.85)" "distinct-$mode" "floor-$mode"
    row "hand-written \`jsonwebtoken::decode\` extractor (\`naive-api\`), distinct tokens (ratio to the floor)" "naive-$mode" "floor-$mode"
    echo
  done
  echo "### Both cores"
  echo
  echo "| run | req/s (median) | p99 (last round) | non-2xx | scaling (to one worker on one core) |"
  echo "|---|---|---|---|---|"
  scaling "open route, two workers on two cores" "open-2cores" "open-1"
  scaling "\`GET /api/me\`, one repeated token, two workers on two cores" "one-2cores" "one-1"
  echo
  echo "wrk -t2 -c64 on the same two cores as the server: the load generator takes a share of the cores, so the ratio is what one machine running both shows, not the server's ceiling."
  echo
  echo "### Start-up"
  echo
  echo "Process start to the first accepted \`GET /api/me\` (discovery and JWKS from the loopback issuer, then a signature check), median of 5: **${STARTUP_MEDIAN} ms** (all: ${STARTUPS[*]} ms; polled every 2 ms with curl)."
  echo
  echo "wrk -t1 -c32 -d${SECONDS_PER_RUN}s on core 1 unless said otherwise, ${ROUNDS} rounds, each run on one core twice a round in mirrored order (on both cores, once a round); RS256 tokens of ${TOKEN_BYTES} bytes from the loopback issuer, ${TOKENS} distinct; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average at the start ${LOAD_AT_START}, at the end $(cut -d' ' -f1-3 /proc/loadavg)."
} | tee "$OUT"
