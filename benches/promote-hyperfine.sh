#!/bin/sh
# Whole `ferry promote --wait` processes, timed with hyperfine, on a generated repository with
# the dev → qa → prod pipeline of benches/promotion.rs (one command gate that exits 0).
#
#   benches/promote-hyperfine.sh [FERRY] [WORKDIR]
#
# FERRY defaults to target/release/ferry (build it with `cargo build --release` first);
# WORKDIR (default: a new temporary directory) receives the repository. Needs `hyperfine` and
# `jq`. Before each timed run, `--prepare` creates a new release, so every run promotes a new
# revision into dev. Then `ferry --version` and `ferry history --limit 1` are timed to compare.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
ferry=${1:-$here/../target/release/ferry}
ferry=$(cd "$(dirname "$ferry")" && pwd)/$(basename "$ferry")
work=${2:-$(mktemp -d)}
repo=$work/repo
mkdir -p "$repo/policies"
export FERRY_USER=bench GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1

for stage in dev qa prod; do
  mkdir -p "$repo/environments/$stage"
  printf 'resources: [deployment.yaml]\nnamespace: web-%s\n' "$stage" \
    > "$repo/environments/$stage/kustomization.yaml"
  cat > "$repo/environments/$stage/deployment.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: acme/web:latest
YAML
done
cat > "$repo/environments/pipeline.yaml" <<'YAML'
apiVersion: ferry/v1
kind: Pipeline
metadata: {name: bench}
spec:
  images: [acme/web]
  stages:
  - {name: dev, overlay: environments/dev, policy: fast}
  - {name: qa, overlay: environments/qa, policy: fast, upstream: [dev]}
  - {name: prod, overlay: environments/prod, policy: fast, upstream: [qa]}
YAML
cat > "$repo/policies/fast.yaml" <<'YAML'
apiVersion: ferry/v1
kind: Policy
metadata: {name: fast}
spec:
  gates:
  - {name: ok, type: command, run: ["true"], timeout: 1m}
YAML
git -C "$repo" init -q -b main
git -C "$repo" add -A
git -C "$repo" -c user.name=bench -c user.email=bench@example.com commit -q -m init

cat > "$work/new-release.sh" <<EOF2
#!/bin/sh
set -eu
n=\$(cat "$work/counter" 2>/dev/null || echo 0)
n=\$((n + 1))
echo "\$n" > "$work/counter"
"$ferry" --repo "$repo" release create --image "acme/web=1.0.\$n" -o json | jq -r .id > "$work/next-rev"
EOF2
chmod +x "$work/new-release.sh"

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
hyperfine -w 3 -r 30 --prepare "$work/new-release.sh" \
  "'$ferry' --repo '$repo' promote \$(cat '$work/next-rev') --to dev --wait"
hyperfine -N -w 5 -r 50 "$ferry --version" "$ferry --repo $repo history --limit 1"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
