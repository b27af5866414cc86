#!/bin/sh
# Whole-process comparison of ferry's renderer with kustomize, on generated repositories.
#
#   benches/compare-kustomize.sh [FERRY] [WORKDIR]
#
# FERRY defaults to target/release/ferry (build it with `cargo build --release` first);
# WORKDIR (default: a new temporary directory) receives the generated repositories. Needs
# `kubectl` (with its built-in kustomize) and `hyperfine`. The load average is printed before
# each measurement: on a shared machine the figures are upper bounds. Measurements:
#
#   0. start-up: `ferry --version`;
#   1. one overlay, one process each: `ferry build` vs `kubectl kustomize`;
#   2. 50 apps x dev/qa/prod = 150 overlays: one `ferry render --all` vs 150 `kubectl
#      kustomize` processes;
#   3. 1,000 apps x dev/qa/prod = 3,000 overlays: one `ferry render --all`, and its peak
#      memory (maximum resident set size, from GNU time when installed);
#   4. when valgrind is installed, the instructions each of `ferry build` (one overlay) and
#      `ferry render --all` (150 overlays, on one CPU) executes: unlike times, these do not
#      depend on what else the machine is doing, so they compare two builds of ferry on a
#      busy machine.
#
# Before timing, every overlay of the 50-app repository is checked to render byte for byte as
# kustomize renders it.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ferry=${1:-$here/../target/release/ferry}
ferry=$(cd "$(dirname "$ferry")" && pwd)/$(basename "$ferry")
work=${2:-$(mktemp -d)}
mkdir -p "$work"

"$here/gen-apps.sh" 50 "$work/apps50"
"$here/gen-apps.sh" 1000 "$work/apps1000"

cd "$work/apps50"
mismatches=0
for app in $(seq 1 50); do
    for env in dev qa prod; do
        overlay=environments/app$app/$env
        kubectl kustomize "$overlay" > "$work/expected.yaml"
        "$ferry" build "$overlay" > "$work/actual.yaml"
        if ! cmp -s "$work/expected.yaml" "$work/actual.yaml"; then
            echo "differs from kustomize: $overlay" >&2
            mismatches=$((mismatches + 1))
        fi
    done
done
echo "checked 150 overlays against kustomize: $mismatches differ"

# The 150 kustomize processes of measurement 2.
cat > "$work/kustomize-all.sh" <<'EOF'
#!/bin/sh
for app in $(seq 1 50); do
    for env in dev qa prod; do
        kubectl kustomize "environments/app$app/$env" > /dev/null
    done
done
EOF
chmod +x "$work/kustomize-all.sh"

load() { echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"; }

load
hyperfine -N --warmup 3 --min-runs 20 \
    --command-name "ferry --version" "$ferry --version"

load
hyperfine -N --warmup 3 --min-runs 20 \
    --command-name "ferry build (1 overlay)" "$ferry build environments/app1/prod" \
    --command-name "kubectl kustomize (1 overlay)" "kubectl kustomize environments/app1/prod"

load
hyperfine -N --warmup 1 --min-runs 5 \
    --command-name "ferry render --all (150 overlays)" "$ferry render --all" \
    --command-name "kubectl kustomize x 150" "$work/kustomize-all.sh"

cd "$work/apps1000"
load
hyperfine -N --warmup 1 --min-runs 5 \
    --command-name "ferry render --all (3000 overlays)" "$ferry render --all"
if [ -x /usr/bin/time ]; then
    /usr/bin/time -f "ferry render --all (3000 overlays): max RSS %M KiB, %e s" \
        "$ferry" render --all > /dev/null
fi

if command -v valgrind > /dev/null; then
    # Pinned to one CPU when taskset is there, so that `render --all` runs one worker and
    # builds every shared base exactly once: with two, how often two workers build the
    # same base at once depends on timing, and the count varies by a few percent.
    pin=""
    command -v taskset > /dev/null && pin="taskset -c 0"
    instructions() {
        $pin valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 > /dev/null |
            sed -n 's/.*Collected : *\([0-9]*\).*/\1/p'
    }
    cd "$work/apps50"
    echo "instructions, ferry build (1 overlay): $(instructions "$ferry" build environments/app1/prod)"
    echo "instructions, ferry render --all (150 overlays): $(instructions "$ferry" render --all)"
fi
