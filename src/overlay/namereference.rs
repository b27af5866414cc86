//! Name references: after prefixes, suffixes and hash suffixes renamed objects, every field that
//! refers to one of them by its old name (a pod's ConfigMap volume, a RoleBinding's roleRef or
//! ServiceAccount subject, an Ingress backend, …) is updated to the new name, choosing the
//! referral the way kustomize does when several objects once had that name.

use std::cell::OnceCell;
use std::sync::LazyLock;

use rustc_hash::FxHashMap;
use serde_json::Value;

use super::config::{self, NameReference};
use super::fieldspec::{Create, FieldSpec, apply_selected};
use super::lookup;
use super::resid::{Gvk, ResId};
use super::resmap::ResMap;
use super::resource::{PREFIXES, Resource, SUFFIXES, scalar_text};

/// What the referral search needs to know about each object.
struct Snapshot {
    cur: ResId,
    prev: Vec<ResId>,
    /// The kind the object was first read or generated as, which selects its referrer specs.
    org_gvk: Gvk,
    org_namespace: String,
    kind: String,
    name: String,
    namespace: String,
    prefixes: Vec<String>,
    suffixes: Vec<String>,
    binding_namespaces: Result<Vec<String>, ()>,
}

impl Snapshot {
    fn of(r: &Resource) -> Snapshot {
        let own = |list: Vec<&str>| list.into_iter().map(str::to_string).collect();
        let cur = r.cur_id();
        let prev = r.prev_ids();
        // The original identity is the first previous one, as `Resource::org_id` has it.
        let org = prev.first().unwrap_or(&cur);
        Snapshot {
            org_gvk: org.gvk.clone(),
            org_namespace: org.effective_namespace().to_string(),
            kind: cur.gvk.kind.to_string(),
            cur,
            prev,
            name: r.name().to_string(),
            namespace: r.namespace().unwrap_or("").to_string(),
            prefixes: own(r.csv_annotation(PREFIXES)),
            suffixes: own(r.csv_annotation(SUFFIXES)),
            binding_namespaces: service_account_namespaces(r),
        }
    }
}

/// Namespaces of ServiceAccount subjects of a RoleBinding; `Err` when a subject has a
/// `namespace:` that is not a string (blank), which kustomize refuses.
fn service_account_namespaces(r: &Resource) -> Result<Vec<String>, ()> {
    if r.kind() != "RoleBinding" {
        return Ok(Vec::new());
    }
    let subjects = r
        .value
        .get("subjects")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    subjects
        .filter(|s| s.get("kind").and_then(Value::as_str) == Some("ServiceAccount"))
        .filter_map(|s| s.get("namespace"))
        .map(|ns| ns.as_str().map(str::to_string).ok_or(()))
        .collect()
}

/// Rewrites every name reference in `resources` to the referred object's current name.
pub fn fix(resources: &mut ResMap, references: &[NameReference]) -> Result<(), String> {
    let snapshots: Vec<Snapshot> = resources.iter().map(Snapshot::of).collect();
    let by_name = names_index(&snapshots);
    // The default configuration's referrers are indexed once per process.
    static DEFAULTS: LazyLock<Referrers<'static>> =
        LazyLock::new(|| Referrers::of(&config::defaults().name_references));
    let built;
    let referrers = if std::ptr::eq(references, config::defaults().name_references.as_slice()) {
        &*DEFAULTS
    } else {
        built = Referrers::of(references);
        &built
    };
    for (i, resource) in resources.iter_mut().enumerate() {
        let specs = referrers.selecting(&snapshots[i].org_gvk);
        if specs.is_empty() {
            continue;
        }
        if snapshots[i].binding_namespaces.is_err() {
            return Err(format!(
                "invalid input: namespace is blank for a ServiceAccount subject of {}",
                snapshots[i].cur
            ));
        }
        let candidates = OnceCell::new();
        let mut value = std::mem::take(&mut resource.value);
        let role_ref = role_ref_gvk(&value);
        for (spec, reference) in specs {
            let search = Search {
                all: &snapshots,
                by_name: &by_name,
                candidates: &candidates,
                referrer: i,
                spec,
                target: &reference.referral,
                role_ref: role_ref.as_ref(),
            };
            // The spec selects by the original kind (checked above), not the current one.
            apply_selected(&mut value, spec, Create::Nothing, &mut |node| {
                search.set(node)
            })
            .map_err(|err| {
                format!(
                    "updating name reference in '{}' field of '{}': {err}",
                    spec.path, snapshots[i].cur
                )
            })?;
        }
        resource.value = value;
    }
    Ok(())
}

/// Every referrer spec with its reference, in order, and which of them can select each kind.
struct Referrers<'a> {
    all: Vec<(&'a FieldSpec, &'a NameReference)>,
    /// The positions in `all` of the specs for each kind, in order.
    by_kind: FxHashMap<&'a str, Vec<usize>>,
    /// The positions of the specs that name no kind (they select every kind), in order.
    any_kind: Vec<usize>,
}

impl<'a> Referrers<'a> {
    fn of(references: &'a [NameReference]) -> Referrers<'a> {
        let all: Vec<_> = references
            .iter()
            .flat_map(|r| r.referrers.iter().map(move |spec| (spec, r)))
            .collect();
        let mut by_kind: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
        let mut any_kind = Vec::new();
        for (at, (spec, _)) in all.iter().enumerate() {
            match &*spec.gvk.kind {
                "" => any_kind.push(at),
                kind => by_kind.entry(kind).or_default().push(at),
            }
        }
        Referrers {
            all,
            by_kind,
            any_kind,
        }
    }

    /// The specs that select `gvk`, in order.
    fn selecting(&self, gvk: &Gvk) -> Vec<(&'a FieldSpec, &'a NameReference)> {
        let of_kind = self.by_kind.get(&*gvk.kind).map_or(&[][..], Vec::as_slice);
        let (mut kinded, mut kindless) =
            (of_kind.iter().peekable(), self.any_kind.iter().peekable());
        let mut selected = Vec::new();
        // The two lists merged back into the order of `all`.
        loop {
            let at = match (kinded.peek(), kindless.peek()) {
                (Some(&&a), Some(&&b)) if a < b => kinded.next(),
                (Some(_), Some(_)) | (None, Some(_)) => kindless.next(),
                (Some(_), None) => kinded.next(),
                (None, None) => break,
            };
            let (spec, reference) = self.all[*at.expect("peeked")];
            if gvk.is_selected_by(&spec.gvk) {
                selected.push((spec, reference));
            }
        }
        selected
    }
}

/// For each name an object has had, the objects that had it, in order: the referral search
/// starts from these instead of from every object, so fixing references costs time linear
/// in the number of objects.
fn names_index(all: &[Snapshot]) -> FxHashMap<&str, Vec<usize>> {
    let mut index: FxHashMap<&str, Vec<usize>> = FxHashMap::default();
    for (i, snapshot) in all.iter().enumerate() {
        for id in &snapshot.prev {
            let holders = index.entry(id.name.as_str()).or_default();
            if holders.last() != Some(&i) {
                holders.push(i);
            }
        }
    }
    index
}

/// Whether the referrer may refer to the object `candidate`: one in its namespace, a
/// cluster-scoped one, or one in a namespace of a RoleBinding's ServiceAccount subjects.
fn could_be_referenced(all: &[Snapshot], referrer: usize, candidate: usize) -> bool {
    let (r, c) = (&all[referrer], &all[candidate]);
    r.cur.gvk.is_cluster_scoped()
        || c.cur.gvk.is_cluster_scoped()
        || c.cur.same_namespace(&r.cur)
        || r.binding_namespaces
            .as_ref()
            .is_ok_and(|namespaces| namespaces.contains(&c.namespace))
}

fn role_ref_gvk(value: &Value) -> Option<Gvk> {
    let role_ref = value.get("roleRef")?;
    let group = role_ref.get("apiGroup")?;
    let kind = role_ref.get("kind")?;
    Some(Gvk {
        group: scalar_text(Some(group)).into(),
        version: String::new().into(),
        kind: scalar_text(Some(kind)).into(),
    })
}

struct Search<'a> {
    all: &'a [Snapshot],
    by_name: &'a FxHashMap<&'a str, Vec<usize>>,
    /// Every object the referrer may refer to, computed when first needed.
    candidates: &'a OnceCell<Vec<usize>>,
    referrer: usize,
    spec: &'a FieldSpec,
    target: &'a Gvk,
    role_ref: Option<&'a Gvk>,
}

impl Search<'_> {
    fn set(&self, node: &mut Value) -> Result<(), String> {
        match node {
            Value::Null => Ok(()),
            Value::Object(_) => self.set_mapping(node),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(_) => self.set_mapping(item)?,
                        Value::Array(_) => {
                            return Err("expected a string or a map of string".into());
                        }
                        _ => self.set_scalar(item)?,
                    }
                }
                Ok(())
            }
            _ => self.set_scalar(node),
        }
    }

    fn set_scalar(&self, node: &mut Value) -> Result<(), String> {
        let old = scalar_text(Some(node));
        let Some(referral) = self.select(&old, self.named(&old), false)? else {
            return Ok(());
        };
        let name = &self.all[referral].name;
        if *name != old {
            *node = Value::String(name.clone());
        }
        Ok(())
    }

    fn set_mapping(&self, node: &mut Value) -> Result<(), String> {
        let Value::Object(map) = node else {
            return Err("expect a mapping node".into());
        };
        let Some(old) = lookup::get(map, "name").map(|n| scalar_text(Some(n))) else {
            return Err("path config error; no 'name' field in node".into());
        };
        let candidates = match lookup::get(map, "namespace") {
            Some(ns) => self.in_namespace(&scalar_text(Some(ns))),
            None => self.named(&old),
        };
        let Some(referral) = self.select(&old, candidates, true)? else {
            return Ok(());
        };
        let referral = &self.all[referral];
        if referral.name == old && referral.namespace.is_empty() {
            return Ok(());
        }
        map.insert("name".into(), Value::String(referral.name.clone()));
        if !referral.namespace.is_empty() {
            map.insert(
                "namespace".into(),
                Value::String(referral.namespace.clone()),
            );
        }
        Ok(())
    }

    /// The objects the referrer may refer to that once had the name `old`.
    fn named(&self, old: &str) -> Vec<usize> {
        let holders = self.by_name.get(old).map_or(&[][..], Vec::as_slice);
        holders
            .iter()
            .copied()
            .filter(|&i| could_be_referenced(self.all, self.referrer, i))
            .collect()
    }

    /// Every object the referrer may refer to.
    fn candidates(&self) -> &[usize] {
        self.candidates.get_or_init(|| {
            (0..self.all.len())
                .filter(|&i| could_be_referenced(self.all, self.referrer, i))
                .collect()
        })
    }

    /// Candidates whose original namespace is `namespace`, else whose current one is.
    fn in_namespace(&self, namespace: &str) -> Vec<usize> {
        let namespaced = |i: &&usize| !self.all[**i].cur.gvk.is_cluster_scoped();
        let original: Vec<usize> = self
            .candidates()
            .iter()
            .filter(namespaced)
            .filter(|&&i| self.all[i].org_namespace == namespace)
            .copied()
            .collect();
        if !original.is_empty() {
            return original;
        }
        self.candidates()
            .iter()
            .filter(namespaced)
            .filter(|&&i| self.all[i].cur.effective_namespace() == namespace)
            .copied()
            .collect()
    }

    /// The one object `old` refers to among `candidates`, narrowed down as kustomize does.
    fn select(
        &self,
        old: &str,
        mut c: Vec<usize>,
        with_namespace: bool,
    ) -> Result<Option<usize>, String> {
        let all = self.all;
        self.sieve(old, &mut c);
        if c.len() == 1 {
            return Ok(Some(c[0]));
        }
        let referrer = &all[self.referrer];
        c.retain(|&i| affixes_match(&all[i], referrer, true));
        if c.len() > 1 {
            c.retain(|&i| affixes_match(&all[i], referrer, false));
        }
        match c.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            [first, rest @ ..] => {
                let same = |&i: &usize| {
                    all[i].name == all[*first].name
                        && (!with_namespace || all[i].namespace == all[*first].namespace)
                };
                if rest.iter().all(same) {
                    return Ok(Some(*first));
                }
                let ids: Vec<String> = c.iter().map(|&i| all[i].cur.to_string()).collect();
                Err(format!(
                    "found multiple possible referrals: {}",
                    ids.join(", ")
                ))
            }
        }
    }

    /// Keeps the candidates that once had the name `old` and the referred kind (the role kind
    /// a roleRef names), in a namespace the referrer can see.
    fn sieve(&self, old: &str, c: &mut Vec<usize>) {
        let all = self.all;
        let once = |i: usize, test: &dyn Fn(&ResId) -> bool| all[i].prev.iter().any(test);
        c.retain(|&i| once(i, &|id| id.name == old));
        c.retain(|&i| once(i, &|id| id.gvk.is_selected_by(self.target)));
        let role_ref = self
            .role_ref
            .filter(|_| self.spec.path.ends_with("roleRef/name"));
        if let Some(role_ref) = role_ref {
            c.retain(|&i| once(i, &|id| id.gvk.is_selected_by(role_ref)));
        }
        let referrer = &all[self.referrer];
        if !referrer.cur.gvk.is_cluster_scoped() {
            c.retain(|&i| {
                let r = &all[i];
                r.cur.gvk.is_cluster_scoped()
                    || r.kind == "ServiceAccount"
                    || referrer.cur.same_namespace(&r.cur)
            });
        }
    }
}

fn affixes_match(candidate: &Snapshot, referrer: &Snapshot, allow_empty: bool) -> bool {
    let check = |a: &[String], b: &[String]| {
        (allow_empty && (a.is_empty() || b.is_empty())) || same_ending(a, b)
    };
    check(&candidate.prefixes, &referrer.prefixes) && check(&candidate.suffixes, &referrer.suffixes)
}

/// Whether the shorter list is the tail of the longer one (two empty lists match).
fn same_ending(a: &[String], b: &[String]) -> bool {
    let (short, long) = if a.len() > b.len() { (b, a) } else { (a, b) };
    if short.is_empty() {
        return long.is_empty();
    }
    long.ends_with(short)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::overlay::transform::name_affix_with;

    fn resource(value: Value) -> Resource {
        Resource::new(value)
    }

    #[test]
    fn referrers_by_kind_select_what_every_spec_tested_in_order_selects() {
        let mut references = config::defaults().name_references.clone();
        // A spec for every kind, between ones for particular kinds.
        references[0]
            .referrers
            .insert(1, FieldSpec::new("", "", "", "spec/anyName", false));
        let referrers = Referrers::of(&references);
        let linear = |gvk: &Gvk| -> Vec<(&FieldSpec, &NameReference)> {
            references
                .iter()
                .flat_map(|r| r.referrers.iter().map(move |spec| (spec, r)))
                .filter(|(spec, _)| gvk.is_selected_by(&spec.gvk))
                .collect()
        };
        for (api_version, kind) in [
            ("apps/v1", "Deployment"),
            ("v1", "Pod"),
            ("batch/v1", "CronJob"),
            ("networking.k8s.io/v1", "Ingress"),
            ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            ("example.com/v1", "Widget"),
        ] {
            let gvk = Gvk::new(api_version, kind);
            let expected = linear(&gvk);
            let got = referrers.selecting(&gvk);
            assert_eq!(got.len(), expected.len(), "{kind}");
            for ((a, ra), (b, rb)) in got.iter().zip(&expected) {
                assert!(std::ptr::eq(*a, *b) && std::ptr::eq(*ra, *rb), "{kind}");
            }
            assert!(got.iter().any(|(spec, _)| spec.path == "spec/anyName"));
        }
    }

    #[test]
    fn references_follow_renamed_objects() {
        let mut resources = vec![
            resource(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}),
            ),
            resource(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
                "spec": {"containers": [{"name": "c", "envFrom": [
                    {"configMapRef": {"name": "settings"}},
                    {"configMapRef": {"name": "elsewhere"}}]}]}}),
            ),
        ];
        let name = crate::overlay::fieldspec::FieldSpec::new("", "", "", "metadata/name", false);
        name_affix_with(&mut resources, "dev-", false, &[name]).expect("prefixes");
        fix(
            &mut resources,
            &crate::overlay::config::defaults().name_references,
        )
        .expect("fixes references");
        let refs = &resources[1].value["spec"]["containers"][0]["envFrom"];
        assert_eq!(refs[0]["configMapRef"]["name"], "dev-settings");
        assert_eq!(refs[1]["configMapRef"]["name"], "elsewhere");
    }

    #[test]
    fn service_account_subjects_get_the_namespace_of_their_account() {
        let mut resources = vec![
            resource(json!({"apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": {"name": "runner", "namespace": "ci"}})),
            resource(
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": {"name": "b"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
                "subjects": [{"kind": "ServiceAccount", "name": "runner"}]}),
            ),
        ];
        resources[0].store_previous_id();
        fix(
            &mut resources,
            &crate::overlay::config::defaults().name_references,
        )
        .expect("fixes references");
        assert_eq!(
            resources[1].value["subjects"][0],
            json!({"kind": "ServiceAccount", "name": "runner", "namespace": "ci"})
        );
    }

    #[test]
    fn affix_lists_match_by_their_common_tail() {
        let list = |items: &[&str]| items.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(same_ending(&list(&["a", "b"]), &list(&["b"])));
        assert!(!same_ending(&list(&["a", "b"]), &list(&["a"])));
        assert!(same_ending(&list(&[]), &list(&[])));
        assert!(!same_ending(&list(&[]), &list(&["a"])));
    }
}
