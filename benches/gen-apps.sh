#!/bin/sh
# Generates a config repository with N applications, each with a base and dev/qa/prod
# overlays, and a pipeline with one stage per application and environment (N x 3 stages).
#
#   benches/gen-apps.sh N DIR
#
# Each base holds a Deployment (with an init container), a Service, a ServiceAccount, a
# HorizontalPodAutoscaler and a ConfigMap generator; each overlay sets a namespace, a name
# prefix, labels and annotations, pins an image, scales the Deployment, merges into the
# generated ConfigMap, adds a Secret generator and patches the Deployment (strategic merge)
# and the Service (JSON 6902) — the features real overlays use most. The result is a git
# repository, so `ferry render --all` and `ferry build` work in it directly. See
# docs/rendering.md ("Performance") for how the benchmark uses it.
set -eu

n=${1:?usage: gen-apps.sh N DIR}
dir=${2:?usage: gen-apps.sh N DIR}

mkdir -p "$dir/environments" "$dir/policies"
cd "$dir"

write_base() {
    app=$1
    base=environments/$app/base
    mkdir -p "$base"
    cat > "$base/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deployment.yaml
- service.yaml
- serviceaccount.yaml
- hpa.yaml
labels:
- pairs:
    app.kubernetes.io/name: $app
  includeSelectors: true
configMapGenerator:
- name: $app-config
  literals:
  - LOG_LEVEL=info
  - GREETING=Hello from $app
EOF
    cat > "$base/deployment.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $app
spec:
  replicas: 1
  selector:
    matchLabels:
      app: $app
  template:
    metadata:
      labels:
        app: $app
    spec:
      serviceAccountName: $app
      initContainers:
      - name: migrate
        image: acme/$app-migrations:1.0.0
        envFrom:
        - configMapRef:
            name: $app-config
      containers:
      - name: $app
        image: acme/$app:1.0.0
        ports:
        - containerPort: 8080
          name: http
        env:
        - name: PORT
          value: "8080"
        envFrom:
        - configMapRef:
            name: $app-config
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
EOF
    cat > "$base/service.yaml" <<EOF
apiVersion: v1
kind: Service
metadata:
  name: $app
spec:
  selector:
    app: $app
  ports:
  - name: http
    port: 80
    targetPort: http
EOF
    cat > "$base/serviceaccount.yaml" <<EOF
apiVersion: v1
kind: ServiceAccount
metadata:
  name: $app
EOF
    cat > "$base/hpa.yaml" <<EOF
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: $app
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: $app
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 80
EOF
}

write_overlay() {
    app=$1 env=$2 replicas=$3 tag=$4
    overlay=environments/$app/$env
    mkdir -p "$overlay"
    cat > "$overlay/kustomization.yaml" <<EOF
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $app-$env
namePrefix: $env-
resources:
- ../base
labels:
- pairs:
    environment: $env
  includeTemplates: true
commonAnnotations:
  example.com/owner: team-$app
images:
- name: acme/$app
  newTag: "$tag"
replicas:
- name: $app
  count: $replicas
configMapGenerator:
- name: $app-config
  behavior: merge
  literals:
  - LOG_LEVEL=$env
secretGenerator:
- name: $app-credentials
  literals:
  - token=$app-$env-token
patches:
- path: deployment-patch.yaml
- target:
    kind: Service
    name: $app
  patch: |-
    - op: add
      path: /metadata/annotations/example.com~1tier
      value: $env
EOF
    cat > "$overlay/deployment-patch.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $app
spec:
  template:
    spec:
      containers:
      - name: $app
        envFrom:
        - secretRef:
            name: $app-credentials
        resources:
          limits:
            memory: 256Mi
EOF
}

{
    echo "apiVersion: ferry/v1"
    echo "kind: Pipeline"
    echo "metadata: {name: bench}"
    echo "spec:"
    echo "  images: [acme/app]"
    echo "  stages:"
} > environments/pipeline.yaml

i=1
while [ "$i" -le "$n" ]; do
    app=app$i
    write_base "$app"
    write_overlay "$app" dev 1 "1.1.0-dev"
    write_overlay "$app" qa 2 "1.1.0"
    write_overlay "$app" prod 4 "1.0.0"
    {
        echo "  - {name: $app-dev, overlay: environments/$app/dev}"
        echo "  - {name: $app-qa, overlay: environments/$app/qa, upstream: [$app-dev]}"
        echo "  - {name: $app-prod, overlay: environments/$app/prod, upstream: [$app-qa]}"
    } >> environments/pipeline.yaml
    i=$((i + 1))
done

if [ ! -d .git ]; then
    git init -q .
fi
