//! Validated gate definitions: what a gate checks, with its timeout and interval.

use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::PipelineError;
use super::raw;
use super::yaml::at;

/// The gate timeout when none is given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The polling interval when none is given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);

/// The gate types ferry knows.
pub const GATE_TYPES: &[&str] = &[
    "kubernetes-rollout",
    "argocd",
    "flux",
    "http",
    "prometheus",
    "command",
];

/// One gate of a policy.
#[derive(Debug, Clone, PartialEq)]
pub struct GateSpec {
    pub name: String,
    pub timeout: Duration,
    pub interval: Duration,
    pub kind: GateKind,
}

/// What a gate checks.
#[derive(Debug, Clone, PartialEq)]
pub enum GateKind {
    /// Every workload in the rendered output has rolled out its applied generation.
    KubernetesRollout,
    /// An Argo CD Application is Synced to the output commit and Healthy.
    ArgoCd {
        application: String,
        namespace: String,
    },
    /// A Flux Kustomization is Ready with the output commit applied.
    Flux {
        kustomization: String,
        namespace: String,
    },
    Http(HttpGate),
    Prometheus(PrometheusGate),
    /// A command; exit 0 passes.
    Command {
        run: Vec<String>,
    },
}

/// An HTTP check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpGate {
    pub url: String,
    pub method: String,
    pub status: u16,
    pub body_contains: Option<String>,
    /// A JSON pointer into the response body and the value expected there.
    pub json: Option<(String, serde_json::Value)>,
    pub headers: Vec<(String, HeaderValue)>,
    pub insecure_skip_tls_verify: bool,
}

/// A header value: literal, or read from an environment variable when the gate runs.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    Literal(String),
    FromEnv(String),
}

/// A Prometheus instant query and the condition its value must meet.
#[derive(Debug, Clone, PartialEq)]
pub struct PrometheusGate {
    pub url: String,
    pub query: String,
    pub condition: Condition,
    /// How long the condition must hold.
    pub hold: Duration,
    /// Whether an empty result passes.
    pub empty_passes: bool,
    /// Request headers (for a Prometheus behind an authenticating proxy).
    pub headers: Vec<(String, HeaderValue)>,
    pub insecure_skip_tls_verify: bool,
}

/// A comparison against a threshold: `< 0.01`, `>= 1`, …
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub op: CompareOp,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Condition {
    /// Parses `OP NUMBER` with OP one of `<`, `<=`, `>`, `>=`, `==`, `!=`.
    pub fn parse(text: &str) -> Result<Condition, String> {
        let text = text.trim();
        let ops = [
            ("<=", CompareOp::Le),
            (">=", CompareOp::Ge),
            ("==", CompareOp::Eq),
            ("!=", CompareOp::Ne),
            ("<", CompareOp::Lt),
            (">", CompareOp::Gt),
        ];
        let bad = || {
            format!(
                "invalid condition `{text}`: expected an operator (<, <=, >, >=, ==, !=) and a number, like `< 0.01`"
            )
        };
        let (op, rest) = ops
            .iter()
            .find_map(|(sym, op)| text.strip_prefix(sym).map(|rest| (*op, rest)))
            .ok_or_else(bad)?;
        let threshold: f64 = rest.trim().parse().map_err(|_| bad())?;
        if !threshold.is_finite() {
            return Err(bad());
        }
        Ok(Condition { op, threshold })
    }

    /// Whether `value` meets the condition.
    pub fn holds(&self, value: f64) -> bool {
        match self.op {
            CompareOp::Lt => value < self.threshold,
            CompareOp::Le => value <= self.threshold,
            CompareOp::Gt => value > self.threshold,
            CompareOp::Ge => value >= self.threshold,
            CompareOp::Eq => value == self.threshold,
            CompareOp::Ne => value != self.threshold,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        };
        write!(f, "{op} {}", self.threshold)
    }
}

/// Validates every gate of a policy file; names must be unique.
pub(crate) fn validate_all(
    path: &str,
    gates: &[Spanned<raw::Gate>],
) -> Result<Vec<GateSpec>, PipelineError> {
    let mut out: Vec<GateSpec> = Vec::new();
    for (i, gate) in gates.iter().enumerate() {
        let field = format!("spec.gates[{i}]");
        let spec = validate(&gate.value)
            .map_err(|(f, m)| PipelineError::invalid(at(path, gate), format!("{field}{f}"), m))?;
        if out.iter().any(|g| g.name == spec.name) {
            return Err(PipelineError::invalid(
                at(path, gate),
                format!("{field}.name"),
                format!("duplicate gate name `{}`", spec.name),
            ));
        }
        out.push(spec);
    }
    Ok(out)
}

type GateResult<T> = Result<T, (String, String)>;

fn validate(g: &raw::Gate) -> GateResult<GateSpec> {
    let name = g.name.trim().to_string();
    if name.is_empty() {
        return Err((".name".into(), "a gate needs a name".into()));
    }
    check_fields(g)?;
    let kind = match g.kind.as_str() {
        "kubernetes-rollout" => GateKind::KubernetesRollout,
        "argocd" => GateKind::ArgoCd {
            application: required(&g.application, "application")?,
            namespace: g.namespace.clone().unwrap_or_else(|| "argocd".to_string()),
        },
        "flux" => GateKind::Flux {
            kustomization: required(&g.kustomization, "kustomization")?,
            namespace: g
                .namespace
                .clone()
                .unwrap_or_else(|| "flux-system".to_string()),
        },
        "http" => GateKind::Http(http(g)?),
        "prometheus" => GateKind::Prometheus(prometheus(g)?),
        "command" => GateKind::Command { run: command(g)? },
        other => {
            return Err((
                ".type".into(),
                format!(
                    "unknown gate type `{other}`, expected one of: {}",
                    GATE_TYPES.join(", ")
                ),
            ));
        }
    };
    let timeout = g.timeout.map(|t| t.get()).unwrap_or(DEFAULT_TIMEOUT);
    let interval = g.interval.map(|t| t.get()).unwrap_or(DEFAULT_INTERVAL);
    if timeout.is_zero() {
        return Err((".timeout".into(), "must be longer than 0s".into()));
    }
    if interval.is_zero() {
        return Err((".interval".into(), "must be longer than 0s".into()));
    }
    Ok(GateSpec {
        name,
        timeout,
        interval,
        kind,
    })
}

/// Rejects fields that do not belong to the gate's type.
fn check_fields(g: &raw::Gate) -> GateResult<()> {
    let present: [(&str, bool); 12] = [
        ("run", g.run.is_some()),
        ("url", g.url.is_some()),
        ("method", g.method.is_some()),
        ("expect", g.expect.is_some()),
        ("headers", g.headers.is_some()),
        (
            "insecureSkipTLSVerify",
            g.insecure_skip_tls_verify.is_some(),
        ),
        ("query", g.query.is_some()),
        ("condition", g.condition.is_some()),
        ("for", g.hold.is_some()),
        ("onEmpty", g.on_empty.is_some()),
        ("application", g.application.is_some()),
        ("kustomization", g.kustomization.is_some()),
    ];
    let allowed: &[&str] = match g.kind.as_str() {
        "command" => &["run"],
        "http" => &[
            "url",
            "method",
            "expect",
            "headers",
            "insecureSkipTLSVerify",
        ],
        "prometheus" => &[
            "url",
            "query",
            "condition",
            "for",
            "onEmpty",
            "headers",
            "insecureSkipTLSVerify",
        ],
        "argocd" => &["application"],
        "flux" => &["kustomization"],
        _ => &[],
    };
    if let Some((field, _)) = present.iter().find(|(f, set)| *set && !allowed.contains(f)) {
        return Err((
            format!(".{field}"),
            format!("not a field of a `{}` gate", g.kind),
        ));
    }
    if g.namespace.is_some() && !matches!(g.kind.as_str(), "argocd" | "flux") {
        return Err((
            ".namespace".into(),
            format!("not a field of a `{}` gate", g.kind),
        ));
    }
    Ok(())
}

fn required(value: &Option<String>, field: &str) -> GateResult<String> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_string()),
        _ => Err((
            format!(".{field}"),
            "missing: this gate type needs it".into(),
        )),
    }
}

fn url(g: &raw::Gate) -> GateResult<String> {
    let url = required(&g.url, "url")?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err((
            ".url".into(),
            format!("`{url}` must start with http:// or https://"),
        ));
    }
    Ok(url)
}

fn http(g: &raw::Gate) -> GateResult<HttpGate> {
    let url = url(g)?;
    let method = g
        .method
        .clone()
        .unwrap_or_else(|| "GET".to_string())
        .to_ascii_uppercase();
    if !["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"].contains(&method.as_str()) {
        return Err((".method".into(), format!("unknown HTTP method `{method}`")));
    }
    let expect = g.expect.as_ref();
    let status = expect.and_then(|e| e.status).unwrap_or(200);
    if !(100..=599).contains(&status) {
        return Err((
            ".expect.status".into(),
            format!("{status} is not an HTTP status"),
        ));
    }
    let json = match expect.and_then(|e| e.json.as_ref()) {
        Some(j) if !(j.pointer.is_empty() || j.pointer.starts_with('/')) => {
            return Err((
                ".expect.json.pointer".into(),
                format!("`{}` is not a JSON pointer (it starts with /)", j.pointer),
            ));
        }
        Some(j) => Some((j.pointer.clone(), j.equals.clone())),
        None => None,
    };
    Ok(HttpGate {
        url,
        method,
        status,
        body_contains: expect.and_then(|e| e.body_contains.clone()),
        json,
        headers: headers(g),
        insecure_skip_tls_verify: g.insecure_skip_tls_verify.unwrap_or(false),
    })
}

fn headers(g: &raw::Gate) -> Vec<(String, HeaderValue)> {
    g.headers
        .iter()
        .flatten()
        .map(|(name, value)| {
            let value = match value {
                raw::HeaderValue::Literal(v) => HeaderValue::Literal(v.clone()),
                raw::HeaderValue::FromEnv(e) => HeaderValue::FromEnv(e.from_env.clone()),
            };
            (name.clone(), value)
        })
        .collect()
}

fn prometheus(g: &raw::Gate) -> GateResult<PrometheusGate> {
    let url = url(g)?;
    let query = required(&g.query, "query")?;
    let condition = Condition::parse(&required(&g.condition, "condition")?)
        .map_err(|m| (".condition".to_string(), m))?;
    let empty_passes = match g.on_empty.as_deref() {
        None | Some("fail") => false,
        Some("pass") => true,
        Some(other) => {
            return Err((
                ".onEmpty".into(),
                format!("unknown value `{other}`, expected `fail` or `pass`"),
            ));
        }
    };
    Ok(PrometheusGate {
        url,
        query,
        condition,
        hold: g.hold.map(|h| h.get()).unwrap_or_default(),
        empty_passes,
        headers: headers(g),
        insecure_skip_tls_verify: g.insecure_skip_tls_verify.unwrap_or(false),
    })
}

fn command(g: &raw::Gate) -> GateResult<Vec<String>> {
    match &g.run {
        Some(run) if !run.is_empty() && !run[0].trim().is_empty() => Ok(run.clone()),
        _ => Err((
            ".run".into(),
            "missing: the command and its arguments, like [\"./scripts/e2e.sh\", \"{stage}\"]"
                .into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse_and_compare() {
        let c = Condition::parse("< 0.01").expect("valid");
        assert!(c.holds(0.005) && !c.holds(0.01));
        let c = Condition::parse(">=1").expect("valid");
        assert!(c.holds(1.0) && !c.holds(0.99));
        assert_eq!(Condition::parse("!= 0").expect("valid").op, CompareOp::Ne);
        for bad in ["0.01", "<", "~ 1", "< abc", "< inf"] {
            assert!(Condition::parse(bad).is_err(), "{bad}");
        }
    }
}
