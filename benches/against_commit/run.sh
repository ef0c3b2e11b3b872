#!/usr/bin/env bash
# Compares the layer's cost at two commits: builds harness.rs against each
# (a standalone release build, as a service would compile the crate), runs
# the two alternately, and prints each build's medians and the ratios.
#
#   benches/against_commit/run.sh [BASE [HEAD [PROCESSES]]]
#
# BASE defaults to 8da30c9 (the tree #18 and #22 were filed against), HEAD
# to the work tree as it is (uncommitted changes included), PROCESSES
# (per build) to 10. Sources and builds go to target/against-commit/ (each
# build with its own --target-dir there, whatever CARGO_TARGET_DIR says).
# The two builds run in turns, base first in even processes and head first
# in odd ones, so that neither always runs right after the other.
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
        # Tracked and untracked (not ignored) files; a tracked file deleted
        # in the work tree is listed but absent, and so is skipped.
        (cd "$repo" && git ls-files -co --exclude-standard -z |
            while IFS= read -r -d '' f; do
                if [ -e "$f" ] || [ -L "$f" ]; then printf '%s\0' "$f"; fi
            done | xargs -0 -r cp --parents -t "$src")
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
    if [ -f "$src/Cargo.lock" ]; then
        cp "$src/Cargo.lock" "$out/$name/harness/Cargo.lock"
    fi
    (cd "$out/$name/harness" && cargo build --release --quiet --target-dir "$out/$name/target")
}

build base "$base"
build head "$head"
head_label=$head
if [ "$head" = WORKTREE ]; then
    head_label=$(git -C "$repo" describe --always --dirty)
fi
results=$out/results.txt
: > "$results"
for p in $(seq 0 $((processes - 1))); do
    if [ $((p % 2)) -eq 0 ]; then order="base head"; else order="head base"; fi
    for name in $order; do
        # On a line of its own, so that a failing harness stops the script.
        row=$("$out/$name/target/release/against-commit-$name")
        echo "$name $row" >> "$results"
    done
done
python3 - "$results" "$base" "$head_label" <<'PY'
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
