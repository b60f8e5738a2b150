#!/usr/bin/env bash
# Measures what the link-time inventory of `#[requires_scope]` declarations costs: two
# generated crates of N guarded handlers (default 200), each written out as the attribute
# expands it and all routed, one with and one without the `inventory::submit!` block;
# each crate's rebuild time (CPU and wall, two runs each), 300 process starts of each, and
# the time to iterate and search the declarations. Numbers go to stdout; ARCHITECTURE.md
# ("What the inventory costs") records a run. The crates live in target/inventory-cost.
#
#   bash scripts/inventory-cost.sh [N]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
N="${1:-200}"
OUT="$ROOT/target/inventory-cost"
export CARGO_TARGET_DIR="$ROOT/target"

for variant in with without; do
  dir="$OUT/$variant"
  mkdir -p "$dir/src"
  cp "$ROOT/Cargo.lock" "$dir/"
  cat >"$dir/Cargo.toml" <<TOML
[package]
name = "inventory-cost-$variant"
version = "0.0.0"
edition = "2024"
publish = false

[dependencies]
scopegate = { path = "$ROOT/runtime" }
axum = { version = "0.8.9", default-features = false, features = ["json", "tokio", "http1"] }

[workspace]
TOML
  {
    echo "#![allow(dead_code)]"
    echo "use axum::{Router, routing::get};"
    for i in $(seq 0 $((N - 1))); do
      cat <<RS
pub struct __scopegate_requirement_h$i;
impl ::scopegate::__private::Requirement for __scopegate_requirement_h$i {
    const AUDIENCE: ::core::option::Option<&'static str> = ::core::option::Option::None;
    const SCOPES: ::scopegate::__private::ScopeExpr =
        ::scopegate::__private::ScopeExpr::All(&[::scopegate::__private::ScopeExpr::Scope("scope:$i")]);
    const CHALLENGE: &'static str = "scope:$i";
}
RS
      if [[ $variant == with ]]; then
        cat <<RS
::scopegate::__private::inventory::submit! {
    ::scopegate::__private::Declaration {
        handler: ::core::concat!(::core::module_path!(), "::", "h$i"),
        name: "h$i",
        scopes: <__scopegate_requirement_h$i as ::scopegate::__private::Requirement>::SCOPES,
        audience: <__scopegate_requirement_h$i as ::scopegate::__private::Requirement>::AUDIENCE,
        dpop_required: <__scopegate_requirement_h$i as ::scopegate::__private::Requirement>::DPOP_REQUIRED,
        file: ::core::file!(),
        line: ::core::line!(),
        issuer: ::core::option::Option::None,
        introspect: false,
        requirement_type: ::core::any::type_name::<__scopegate_requirement_h$i>,
    }
}
RS
      fi
      echo "async fn h$i(_: ::scopegate::__private::Guard<__scopegate_requirement_h$i>) -> &'static str { \"h$i\" }"
    done
    echo "fn app(authority: scopegate::Authority) -> Router {"
    echo "    Router::new()"
    for i in $(seq 0 $((N - 1))); do echo "        .route(\"/h$i\", get(h$i))"; done
    echo "        .with_state(authority)"
    echo "}"
    cat <<'RS'
fn main() {
    let _ = app;
    if std::env::args().nth(1).as_deref() == Some("--quiet") {
        return;
    }
    let started = std::time::Instant::now();
    let count = scopegate::policy::declarations().count();
    let first = started.elapsed();
    let started = std::time::Instant::now();
    let _ = scopegate::policy::declarations().count();
    let second = started.elapsed();
    let started = std::time::Instant::now();
    let found = scopegate::policy::declaration_of(&h0).is_some();
    let lookup = started.elapsed();
    println!("  declarations={count} first_iteration={first:?} second_iteration={second:?} declaration_of_h0={lookup:?} found={found}");
}
RS
  } >"$dir/src/main.rs"
  # The hand-written expansion must match the attribute's (macros/src/expand.rs): a build
  # error here means it drifted, and is shown.
  (cd "$dir" && cargo build -q)
done

echo "rebuild of a crate with $N guarded handlers (debug; CPU user/sys and wall seconds):"
for run in 1 2; do
  for variant in with without; do
    touch "$OUT/$variant/src/main.rs"
    (cd "$OUT/$variant" && /usr/bin/time -f "  $variant run $run: user=%U sys=%S wall=%e" cargo build -q 2>&1 | grep ' run ')
  done
done
echo "300 process starts:"
for variant in with without; do
  /usr/bin/time -f "  $variant: wall=%e s" bash -c "for i in \$(seq 300); do '$CARGO_TARGET_DIR/debug/inventory-cost-$variant' --quiet; done"
done
echo "iterating the declarations:"
for variant in with without; do
  echo " $variant:"; "$CARGO_TARGET_DIR/debug/inventory-cost-$variant"
done
