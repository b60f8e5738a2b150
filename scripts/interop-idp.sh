#!/usr/bin/env bash
# Prepares the OpenID provider of the interoperability suite: copies the IdP directory
# (default: ../shared/idp next to the repository; shared/ may be read-only) into a fresh
# temporary directory, installs its dependencies there from the lock file, and prints the
# directory as the last line of stdout. It starts no process; `npm ci` output goes to
# stderr.
#
#   export SCOPEGATE_IDP_DIR=$(bash scripts/interop-idp.sh | tail -1)
#   cargo test -p appointments-api --test interop
#
# Usage: bash scripts/interop-idp.sh [IDP_SOURCE_DIR]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_dir=${1:-"${repo}/../shared/idp"}

for tool in node npm; do
  command -v "$tool" >/dev/null || { echo "interop-idp: $tool not found (Node 20 or newer is needed)" >&2; exit 1; }
done
for file in idp.mjs package.json package-lock.json; do
  [[ -f "${source_dir}/${file}" ]] || { echo "interop-idp: ${source_dir}/${file} not found" >&2; exit 1; }
done

target=$(mktemp -d "${TMPDIR:-/tmp}/scopegate-idp.XXXXXX")
# Remove the half-made copy if anything below fails.
trap 'rm -rf -- "$target"' ERR

# The fixture's files only: never a node_modules or keys directory from a previous run.
for file in idp.mjs package.json package-lock.json README.md; do
  if [[ -f "${source_dir}/${file}" ]]; then
    cp -- "${source_dir}/${file}" "${target}/${file}"
    chmod u+w -- "${target}/${file}"
  fi
done

# Reproducible install from the lock file; a hung registry cannot stall CI forever.
(cd "$target" && timeout 600 npm ci --no-audit --no-fund --loglevel=error 1>&2)
(cd "$target" && node -e 'import("oidc-provider").then(() => {}, (e) => { console.error(e); process.exit(1); })' 1>&2)

trap - ERR
echo "$target"
