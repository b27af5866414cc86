//! Whether a live workload carries the rendered pod template: the proof that the cluster
//! runs *this* commit's spec and not the previous one (whose rollout may well be complete).
//!
//! The rendered template must be contained in the live one: every field it sets has the same
//! value live (the API server adds defaults, which are ignored). Lists of named entries
//! (containers, env, volumes, ports) are matched by name, other lists by position. Zero values
//! (`""`, `0`, `false`, `[]`, `{}`, `null`) match an absent field, as the API server drops
//! them; numbers compare by value, and resource quantities by amount (`500m` = `0.5`).

use std::fmt;

use serde_json::{Map, Value};

/// The first field where the live template differs from the rendered one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Difference {
    pub path: String,
    pub rendered: String,
    /// `None` when the field is absent live.
    pub live: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.live {
            Some(live) => write!(
                f,
                "{} is {live} in the cluster, {} in the commit",
                self.path, self.rendered
            ),
            None => write!(
                f,
                "{} is missing in the cluster ({} in the commit)",
                self.path, self.rendered
            ),
        }
    }
}

/// The first difference between the pod templates (`spec.template`) of a rendered and a
/// live workload, or `None` when the live one carries everything rendered.
pub(crate) fn first_difference(rendered: &Value, live: &Value) -> Option<Difference> {
    let want = rendered.pointer("/spec/template")?;
    compare("spec.template", want, live.pointer("/spec/template"), false)
}

fn compare(path: &str, want: &Value, have: Option<&Value>, quantities: bool) -> Option<Difference> {
    if is_zero(want) && have.is_none_or(is_zero) {
        return None;
    }
    match want {
        Value::Object(fields) => match have.and_then(Value::as_object) {
            Some(live) => compare_objects(path, fields, live, quantities),
            None => Some(difference(path, want, have)),
        },
        Value::Array(items) => match have.and_then(Value::as_array) {
            Some(live) => compare_lists(path, items, live, quantities),
            None => Some(difference(path, want, have)),
        },
        _ => match have {
            Some(live) if same_scalar(want, live, quantities) => None,
            _ => Some(difference(path, want, have)),
        },
    }
}

fn compare_objects(
    path: &str,
    want: &Map<String, Value>,
    have: &Map<String, Value>,
    quantities: bool,
) -> Option<Difference> {
    want.iter().find_map(|(key, value)| {
        let quantities = quantities || key == "resources";
        compare(&format!("{path}.{key}"), value, have.get(key), quantities)
    })
}

fn compare_lists(
    path: &str,
    want: &[Value],
    have: &[Value],
    quantities: bool,
) -> Option<Difference> {
    want.iter().enumerate().find_map(|(index, item)| {
        match item.get("name").and_then(Value::as_str) {
            Some(name) => {
                let live = have
                    .iter()
                    .find(|h| h.get("name").and_then(Value::as_str) == Some(name));
                compare(&format!("{path}[{name}]"), item, live, quantities)
            }
            None => compare(
                &format!("{path}[{index}]"),
                item,
                have.get(index),
                quantities,
            ),
        }
    })
}

fn is_zero(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(fields) => fields.is_empty(),
    }
}

fn same_scalar(want: &Value, have: &Value, quantities: bool) -> bool {
    if want == have {
        return true;
    }
    let number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if quantities => quantity(s),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    match (number(want), number(have)) {
        (Some(a), Some(b)) => a == b || (a - b).abs() <= f64::EPSILON * a.abs().max(b.abs()) * 4.0,
        _ => false,
    }
}

/// The amount of a Kubernetes quantity: `500m`, `2`, `1.5Gi`, `1e3`, `10M`.
fn quantity(text: &str) -> Option<f64> {
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1_048_576.0),
        ("Gi", 1_073_741_824.0),
        ("Ti", 1_099_511_627_776.0),
        ("Pi", 1_125_899_906_842_624.0),
        ("Ei", 1_152_921_504_606_846_976.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    let text = text.trim();
    SUFFIXES
        .iter()
        .find_map(|(suffix, factor)| {
            text.strip_suffix(suffix)
                .and_then(|n| n.parse::<f64>().ok())
                .map(|n| n * factor)
        })
        .or_else(|| text.parse().ok())
}

fn difference(path: &str, want: &Value, have: Option<&Value>) -> Difference {
    let show = |v: &Value| match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    Difference {
        path: path.to_string(),
        rendered: show(want),
        live: have.map(show),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn workload(containers: Value) -> Value {
        json!({"spec": {"template": {"metadata": {"labels": {"app": "web"}, "creationTimestamp": null}, "spec": {"containers": containers}}}})
    }

    #[test]
    fn defaults_added_by_the_api_server_are_ignored() {
        let rendered = workload(
            json!([{"name": "web", "image": "acme/web:1.4.2", "ports": [{"containerPort": 8080}], "resources": {"limits": {"cpu": "0.5", "memory": "1Gi"}}, "env": []}]),
        );
        let live = json!({"spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "x"}},
            "spec": {"containers": [{"name": "sidecar", "image": "envoy"}, {"name": "web", "image": "acme/web:1.4.2", "imagePullPolicy": "IfNotPresent",
                "ports": [{"containerPort": 8080, "protocol": "TCP"}], "resources": {"limits": {"cpu": "500m", "memory": "1073741824"}}}],
                "restartPolicy": "Always", "dnsPolicy": "ClusterFirst"}}}});
        assert_eq!(first_difference(&rendered, &live), None);
    }

    #[test]
    fn an_older_image_is_a_difference() {
        let rendered = workload(json!([{"name": "web", "image": "acme/web:1.4.2"}]));
        let live = workload(json!([{"name": "web", "image": "acme/web:1.4.1"}]));
        let found = first_difference(&rendered, &live).expect("differs");
        assert_eq!(
            found.to_string(),
            "spec.template.spec.containers[web].image is acme/web:1.4.1 in the cluster, acme/web:1.4.2 in the commit"
        );
    }

    #[test]
    fn a_missing_field_or_container_is_a_difference() {
        let rendered = workload(json!([{"name": "web", "image": "a", "args": ["--fast"]}]));
        let live = workload(json!([{"name": "web", "image": "a"}]));
        assert_eq!(
            first_difference(&rendered, &live).map(|d| d.path),
            Some("spec.template.spec.containers[web].args".into())
        );
        let other = workload(json!([{"name": "api", "image": "a"}]));
        assert_eq!(
            first_difference(&rendered, &other).map(|d| d.live),
            Some(None)
        );
    }

    #[test]
    fn quantities_compare_by_amount_only_under_resources() {
        assert_eq!(quantity("500m"), Some(0.5));
        assert_eq!(quantity("2Ki"), Some(2048.0));
        assert_eq!(quantity("1e3"), Some(1000.0));
        assert!(same_scalar(&json!("0.5"), &json!("500m"), true));
        assert!(!same_scalar(&json!("0.5"), &json!("500m"), false));
        assert!(same_scalar(&json!(1), &json!(1.0), false));
    }
}
