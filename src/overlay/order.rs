//! Output order: kustomize's default "legacy" order (namespaces and other prerequisites first,
//! webhooks last, then by group/version/kind, namespace and name), or input order (`fifo`).

use std::cmp::Ordering;

use rustc_hash::FxHashMap;

use super::kustomization::SortOptions;
use super::resid::{Gvk, ResId, or_placeholder};
use super::resource::Resource;

const ORDER_FIRST: &[&str] = &[
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];

const ORDER_LAST: &[&str] = &[
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Sorts `resources` as the kustomization's `sortOptions` (legacy order by default) ask.
pub fn sort(resources: &mut Vec<Resource>, options: Option<&SortOptions>) {
    if options.is_some_and(|o| o.fifo) {
        return;
    }
    let first = kinds(options.and_then(|o| o.order_first.as_ref()), ORDER_FIRST);
    let last = kinds(options.and_then(|o| o.order_last.as_ref()), ORDER_LAST);
    let mut rank: FxHashMap<&str, i64> = FxHashMap::default();
    let count = first.len() as i64;
    for (i, kind) in first.into_iter().enumerate() {
        rank.insert(kind, i as i64 - count);
    }
    for (i, kind) in last.into_iter().enumerate() {
        rank.insert(kind, 1 + i as i64);
    }
    let mut keyed: Vec<(ResId, Resource)> = resources.drain(..).map(|r| (r.cur_id(), r)).collect();
    keyed.sort_by(|(a, _), (b, _)| compare(a, b, &rank));
    resources.extend(keyed.into_iter().map(|(_, resource)| resource));
}

/// The configured list of kinds, or the default one.
fn kinds<'a>(configured: Option<&'a Vec<String>>, default: &[&'static str]) -> Vec<&'a str> {
    match configured {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => default.to_vec(),
    }
}

fn compare(a: &ResId, b: &ResId, rank: &FxHashMap<&str, i64>) -> Ordering {
    if a.gvk != b.gvk {
        return compare_gvk(&a.gvk, &b.gvk, rank);
    }
    id_key(a).cmp(&id_key(b))
}

fn compare_gvk(a: &Gvk, b: &Gvk, rank: &FxHashMap<&str, i64>) -> Ordering {
    let (ra, rb) = (
        rank.get(&*a.kind).copied().unwrap_or(0),
        rank.get(&*b.kind).copied().unwrap_or(0),
    );
    if ra != rb {
        return ra.cmp(&rb);
    }
    let order = gvk_key(a).cmp(&gvk_key(b));
    if a.kind == "Namespace" && b.kind == "Namespace" && (a.group.is_empty() || b.group.is_empty())
    {
        return order.reverse();
    }
    order
}

fn gvk_key(gvk: &Gvk) -> String {
    format!(
        "{}_{}_{}",
        or_placeholder(&gvk.group, "~G"),
        or_placeholder(&gvk.version, "~V"),
        or_placeholder(&gvk.kind, "~K")
    )
}

fn id_key(id: &ResId) -> String {
    let ns = if id.namespace.is_empty() {
        "~X"
    } else {
        &id.namespace
    };
    let name = if id.name.is_empty() { "~N" } else { &id.name };
    format!("{}|{ns}|{name}", id.gvk.id_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn res(api_version: &str, kind: &str, name: &str) -> Resource {
        Resource::new(json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": name}}))
    }

    #[test]
    fn sorts_in_legacy_order() {
        let mut list = vec![
            res(
                "admissionregistration.k8s.io/v1",
                "ValidatingWebhookConfiguration",
                "w",
            ),
            res("apps/v1", "Deployment", "b"),
            res("example.com/v1", "Widget", "a"),
            res("apps/v1", "Deployment", "a"),
            res("v1", "ConfigMap", "z"),
            res("v1", "Namespace", "ns"),
        ];
        sort(&mut list, None);
        let names: Vec<String> = list
            .iter()
            .map(|r| format!("{}/{}", r.kind(), r.name()))
            .collect();
        assert_eq!(
            names,
            [
                "Namespace/ns",
                "ConfigMap/z",
                "Deployment/a",
                "Deployment/b",
                "Widget/a",
                "ValidatingWebhookConfiguration/w"
            ]
        );
    }
}
