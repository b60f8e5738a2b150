#!/usr/bin/env bash
# Instructions per uncached verification, counted by callgrind: runtime/benches/profile.rs
# verifies one token N times with the verified-token cache off, and only that loop is
# counted (the set-up generates keys, whose cost varies from run to run). For each
# algorithm: scopegate's count, the signature floor's (a pre-parsed aws-lc-rs key, as in
# the `verify` bench), the difference and the ratio, and the functions of the difference.
# Instruction counts do not depend on other work on the machine, unlike criterion's times.
# Writes target/profile-verify.md and keeps the callgrind files in target/profile/
# (`callgrind_annotate --inclusive=yes target/profile/cg.scopegate.RS256`).
#
#   bash scripts/profile-verify.sh [N] [ALGORITHM...]     # default 200 RS256 PS256
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N="${1:-200}"
shift || true
ALGORITHMS=("$@")
[ "${#ALGORITHMS[@]}" -gt 0 ] || ALGORITHMS=(RS256 PS256)
OUT="target/profile-verify.md"
PROFILE="target/profile"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
BIN=$(cargo bench -q -p scopegate --bench profile --no-run --message-format=json 2>/dev/null \
  | sed -n 's/.*"executable":"\([^"]*\/profile-[^"]*\)".*/\1/p' | tail -1)
[ -x "$BIN" ] || { echo "the profile bench did not build" >&2; exit 1; }
mkdir -p "$PROFILE"

# count MODE ALGORITHM: instructions of N verifications (MODE scopegate) or signatures (floor).
count() {
  local fn=verify_many
  [ "$1" = floor ] && fn=floor_many
  PROFILE_MODE="$1" valgrind --tool=callgrind --toggle-collect="*$fn*" \
    --callgrind-out-file="$PROFILE/cg.$1.$2" "$BIN" "$2" "$N" >/dev/null 2>"$PROFILE/cg.$1.$2.err"
  sed -nE 's/^==[0-9]+== Collected : ([0-9]+)$/\1/p' "$PROFILE/cg.$1.$2.err" | tail -1
}

{
  echo "| algorithm | floor (signature only) | scopegate | difference | ratio |"
  echo "|---|---|---|---|---|"
  for alg in "${ALGORITHMS[@]}"; do
    floor=$(count floor "$alg")
    verify=$(count scopegate "$alg")
    awk -v a="$alg" -v f="$floor" -v s="$verify" -v n="$N" \
      'BEGIN { printf "| %s | %.0f | %.0f | %.0f | %.3f× |\n", a, f / n, s / n, (s - f) / n, s / f }'
  done
  echo
  echo "instructions per verification, $N verifications of the \`verify\` bench's token, callgrind ($(valgrind --version))."
  for alg in "${ALGORITHMS[@]}"; do
    echo
    echo "Where scopegate's $alg verification goes (inclusive instructions per verification; aws-lc's own functions omitted):"
    echo
    echo "| function | instructions per verification |"
    echo "|---|---|"
    callgrind_annotate --inclusive=yes "$PROFILE/cg.scopegate.$alg" 2>/dev/null \
      | grep -E '^ *[0-9,]+ ' | grep -vE 'aws_lc_0|verify_many|profile::main|std::rt::|core::ops::function|^ *[0-9,]+ .*\?\?\?:0x' | head -25 \
      | awk -v n="$N" '{ gsub(",", "", $1); fn = $0; sub(/^ *[0-9,]+ *(\([^)]*\))? */, "", fn); sub(/^[^:]*:/, "", fn); sub(/ \[.*$/, "", fn); printf "| `%s` | %.0f |\n", fn, $1 / n }'
  done
} | tee "$OUT"
