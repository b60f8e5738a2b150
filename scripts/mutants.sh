#!/usr/bin/env bash
# Mutation testing of the modules that decide (see .cargo/mutants.toml): every mutant of a
# check must be caught by a test, or be listed there with the reason it is equivalent.
#
#   bash scripts/mutants.sh                        # every deciding module (hours on 2 cores)
#   bash scripts/mutants.sh runtime/src/scope.rs   # only these files
#   bash scripts/mutants.sh --in-diff [BASE]       # only code the change since BASE touched
#                                                  #   (default: main)
#
# Bounded in time: the whole run stops after MUTANTS_BUDGET seconds (default 3600); one
# mutant's tests after MUTANTS_TEST_TIMEOUT (default 120) and its build after 600. The
# report is in target/mutants.out/ (missed.txt, caught.txt, timeout.txt,
# unviable.txt). Exits non-zero when a mutant was missed or the budget ran out.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v cargo-mutants >/dev/null; then
  echo "cargo-mutants is not installed: cargo install --locked cargo-mutants" >&2
  exit 2
fi

BUDGET="${MUTANTS_BUDGET:-3600}"
TEST_TIMEOUT="${MUTANTS_TEST_TIMEOUT:-120}"
# No `-p scopegate`: it would also narrow the test packages to the runtime alone (the
# files examined are all in runtime/src anyway).
args=(--timeout "$TEST_TIMEOUT" --minimum-test-timeout 60 --build-timeout 600)

if [[ "${1:-}" == "--in-diff" ]]; then
  base="${2:-main}"
  mkdir -p target
  git diff "$base" -- runtime/src >target/mutants.diff
  if [[ ! -s target/mutants.diff ]]; then
    echo "no change to runtime/src since $base: nothing to mutate"
    exit 0
  fi
  args+=(--in-diff "$PWD/target/mutants.diff")
else
  # The modules that decide whether a request is let through.
  files=("$@")
  if [[ ${#files[@]} -eq 0 ]]; then
    files=(b64 credentials jws json keys claims scope cache verify extract layer config http jwks introspection dpop dpop/nonce dpop/replay)
    files=("${files[@]/#/runtime/src/}")
    files=("${files[@]/%/.rs}")
  fi
  for file in "${files[@]}"; do
    args+=(--file "$file")
  done
fi

# More cargo-mutants arguments, split on spaces (write a space inside a regex as `.`):
#   MUTANTS_ARGS="--iterate"                 only the mutants the last run did not catch
#   MUTANTS_ARGS="-F in.validate$"           only the mutants of one function
#   MUTANTS_ARGS="--config F --baseline skip" judged by other tests: a quicker first pass,
#     e.g. F with `test_package = ["scopegate-tests"]` and `additional_cargo_args =
#     ["--test", "spec"]` (the spec suite alone; `additional_cargo_test_args` would narrow
#     the test run but not the build of every test target). The baseline must be skipped
#     then: cargo-mutants tests the unmutated tree with the mutated package's tests only.
#     A mutant such a pass misses is judged again with this file's selection.
if [[ -n "${MUTANTS_ARGS:-}" ]]; then
  read -ra extra <<<"$MUTANTS_ARGS"
  args+=("${extra[@]}")
fi

# cargo-mutants' own copy of the tree does not keep file times, and cargo then rebuilds
# every dependency (minutes on two cores). So the tree, target/ included, is copied here
# with `cp -a` (times kept: only the runtime is rebuilt) and mutated in place in the copy,
# which needs free space for the whole tree, target/ included (checked first).
root="$PWD"
tmp="${TMPDIR:-/tmp}"
need_kb=$(( $(du -sk . | cut -f1) + 2 * 1024 * 1024 ))
free_kb=$(df -Pk "$tmp" | awk 'NR == 2 { print $4 }')
if (( free_kb < need_kb )); then
  echo "scripts/mutants.sh: the copy needs $(( need_kb / 1024 )) MiB free in $tmp, which has $(( free_kb / 1024 )) MiB" >&2
  exit 2
fi
work="$(mktemp -d "$tmp/scopegate-mutants.XXXXXX")"
trap 'rm -rf "$work"' EXIT
cp -a . "$work/"
rm -rf "$work/target/mutants.out"
args+=(--in-place --output "$root/target")

# Which tests judge a mutant (and the trybuild suite left out) is in .cargo/mutants.toml.
# cargo-mutants runs as a child this script waits for, so that an interrupt stops it
# before the copy it works in is removed.
cd "$work"
status=0
timeout --signal=INT --kill-after=30 "$BUDGET" cargo mutants "${args[@]}" &
child=$!
trap 'kill -TERM "$child" 2>/dev/null' INT TERM
wait "$child" || status=$?
while kill -0 "$child" 2>/dev/null; do
  wait "$child" || status=$?
done
if [[ $status -eq 124 ]]; then
  echo "scripts/mutants.sh: stopped after the budget of ${BUDGET}s; the report covers the mutants tested" >&2
fi
exit "$status"
