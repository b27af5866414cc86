//! Gate definitions that cannot run are rejected when the policy is loaded, naming the file,
//! the line and the field.

use ferry::overlay::DirSource;
use ferry::pipeline::{Config, GateKind, HeaderValue};

/// A config repository with one stage `prod` whose policy has `gates` (YAML lines).
fn load_with_gates(gates: &str) -> Result<Config, String> {
    let repo = tempfile::tempdir().expect("temp dir");
    let write = |path: &str, text: &str| {
        let path = repo.path().join(path);
        std::fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write");
    };
    write(
        "environments/pipeline.yaml",
        "apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {name: shop}\nspec:\n  stages:\n  - {name: prod, overlay: environments/prod, policy: prod}\n",
    );
    write("environments/prod/kustomization.yaml", "resources: []\n");
    write(
        "policies/prod.yaml",
        &format!(
            "apiVersion: ferry/v1\nkind: Policy\nmetadata: {{name: prod}}\nspec:\n  gates:\n{gates}"
        ),
    );
    Config::load(&DirSource::new(repo.path())).map_err(|e| e.to_string())
}

#[test]
fn every_gate_type_loads() {
    let config = load_with_gates(
        "  - {name: rollout, type: kubernetes-rollout, timeout: 10m}
  - {name: app, type: argocd, application: shop}
  - {name: ks, type: flux, kustomization: shop, namespace: gitops}
  - name: smoke
    type: http
    url: https://shop.example.com/healthz
    headers: {Authorization: {fromEnv: SMOKE_TOKEN}}
    expect: {status: 200, json: {pointer: /status, equals: ok}}
  - {name: errors, type: prometheus, url: 'http://127.0.0.1:9090', query: 'sum(rate(x[5m]))', condition: '< 0.01', for: 2m, headers: {X-Org: shop}}
  - {name: e2e, type: command, run: [./scripts/e2e.sh, '{stage}']}
",
    )
    .expect("valid policy");
    let gates = &config.policies["prod"].gates;
    assert_eq!(gates.len(), 6);
    assert!(matches!(&gates[1].kind, GateKind::ArgoCd { namespace, .. } if namespace == "argocd"));
    assert!(matches!(&gates[2].kind, GateKind::Flux { namespace, .. } if namespace == "gitops"));
    let GateKind::Prometheus(prometheus) = &gates[4].kind else {
        panic!("a prometheus gate")
    };
    assert_eq!(
        prometheus.headers,
        [("X-Org".to_string(), HeaderValue::Literal("shop".into()))]
    );
}

#[test]
fn an_unknown_gate_type_names_the_file_line_and_field() {
    let err = load_with_gates(
        "  - {name: rollout, type: kubernetes-rollout}\n  - {name: chart, type: helm}\n",
    )
    .expect_err("unknown type");
    assert_eq!(
        err,
        "policies/prod.yaml:7:5: spec.gates[1].type: unknown gate type `helm`, expected one of: kubernetes-rollout, argocd, flux, http, prometheus, command"
    );
}

#[test]
fn a_missing_field_names_it() {
    let err = load_with_gates("  - {name: smoke, type: http}\n").expect_err("no url");
    assert_eq!(
        err,
        "policies/prod.yaml:6:5: spec.gates[0].url: missing: this gate type needs it"
    );
    let err = load_with_gates("  - {name: app, type: argocd}\n").expect_err("no application");
    assert_eq!(
        err,
        "policies/prod.yaml:6:5: spec.gates[0].application: missing: this gate type needs it"
    );
}

#[test]
fn a_field_of_another_gate_type_or_an_unknown_field_is_rejected() {
    let err = load_with_gates("  - {name: smoke, type: http, url: 'http://x', query: up}\n")
        .expect_err("query on http");
    assert_eq!(
        err,
        "policies/prod.yaml:6:5: spec.gates[0].query: not a field of a `http` gate"
    );
    let err = load_with_gates("  - {name: smoke, type: http, url: 'http://x', retries: 3}\n")
        .expect_err("unknown field");
    assert!(err.starts_with("policies/prod.yaml:6:"), "{err}");
    assert!(err.contains("unknown field `retries`"), "{err}");
}
