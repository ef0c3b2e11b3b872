#!/usr/bin/env bash
# Compares the layer's cost at two commits: builds harness.rs against each
# (a standalone release build, as a service would compile the crate), runs
# the two alternately, and prints each build's medians and the ratios.
#
#   benches/against_commit/run.sh [BASE [HEAD [PROCESSES]]]
#
# BASE defaults to 8da30c9 (the tree #18 and #22 were filed against), HEAD
# to the work tree as it is (uncommitted changes included), PROCESSES
# (per build) to 10. Builds go to target/against-commit/.
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
base=${1:-8da30c9}
head=${2:-WORKTREE}
processes=${3:-10}
out=$repo/target/against-commit
mkdir -p "$out"

build() { # name commit
    local name=$1 commit=$2 src=$out/$1/crate
    rm -rf "$out/$name"
    mkdir -p "$src" "$out/$name/harness/src"
    if [ "$commit" = WORKTREE ]; then
        (cd "$repo" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$src" 2>/dev/null || true)
    else
        git -C "$repo" archive "$commit" | tar -x -C "$src"
    fi
    cp "$repo/benches/against_commit/harness.rs" "$out/$name/harness/src/main.rs"
    cat > "$out/$name/harness/Cargo.toml" <<TOML
[package]
name = "against-commit-$name"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
tracing-osprofiler = { path = "../crate" }
tracing = "0.1"
tracing-subscriber = "0.3"
libc = "0.2"
tempfile = "3"

[workspace]
TOML
    # The base's own lock file, so both builds use the dependency versions
    # each commit was tested with.
    cp "$src/Cargo.lock" "$out/$name/harness/Cargo.lock" 2>/dev/null || true
    (cd "$out/$name/harness" && cargo build --release --quiet)
}

build base "$base"
build head "$head"
results=$out/results.txt
: > "$results"
for _ in $(seq "$processes"); do
    for name in base head; do
        echo "$name $("$out/$name/harness/target/release/against-commit-$name")" >> "$results"
    done
done
python3 - "$results" "$base" "$head" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, *values = line.split()
    rows.setdefault(name, []).append([float(v) for v in values])
med = {n: [statistics.median(r[i] for r in rs) for i in range(6)] for n, rs in rows.items()}
labels = ["floor", "unprofiled", "signed"]
print(f"medians of {len(rows['base'])} processes per build, ns per span")
print(f"{'':<12}{'app cpu: base':>15}{'head':>9}{'head/base':>11}   {'all cpu: base':>15}{'head':>9}{'head/base':>11}")
for i, label in enumerate(labels):
    b, h = med['base'], med['head']
    print(f"{label:<12}{b[i]:>15.1f}{h[i]:>9.1f}{h[i]/b[i]:>11.3f}   {b[i+3]:>15.1f}{h[i+3]:>9.1f}{h[i+3]/b[i+3]:>11.3f}")
for n in ("base", "head"):
    m = med[n]
    print(f"{n} ({sys.argv[2] if n == 'base' else sys.argv[3]}): unprofiled / floor, app cpu {m[1]/m[0]:.3f}")
PY
