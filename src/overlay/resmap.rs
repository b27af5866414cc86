//! The ordered set of resources a kustomization accumulates: adding with id-conflict checks,
//! merging generated objects into earlier ones (`behavior: merge|replace`), and selecting
//! patch targets by kind, name, namespace, labels and annotations.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Map, Value};

use super::build_metadata::ORIGIN;
use super::kustomization::{Behavior, Selector};
use super::pattern::Anchored;
use super::resid::{Gvk, ResId, split_api_version};
use super::resource::{BUILD_ANNOTATIONS, NEEDS_HASH, Resource, object_mut, scalar_text};

/// Resources in the order they were added.
pub type ResMap = Vec<Resource>;

/// Adds `incoming` after `resources`, refusing a second object with the same identity.
pub fn append_all(resources: &mut ResMap, incoming: ResMap) -> Result<(), String> {
    let mut ids = Ids::of(resources);
    append_indexed(resources, incoming, &mut ids)
}

/// The identities of a set of resources, so that appending to it many times (one resource
/// file after another) costs time linear in the number of resources.
#[derive(Debug, Default)]
pub struct Ids(HashSet<(Gvk, String, String)>);

impl Ids {
    /// The identities of `resources`.
    pub fn of(resources: &ResMap) -> Ids {
        let mut ids = Ids::default();
        for resource in resources {
            ids.insert(resource.cur_id());
        }
        ids
    }

    /// Adds `id`; false when an equal one was there already (see [`ResId::equals`]).
    fn insert(&mut self, id: ResId) -> bool {
        self.0.insert(id.into_key())
    }
}

/// [`append_all`] with the identities of `resources` already known: `ids` must hold exactly
/// those of `resources`, and is kept so.
pub fn append_indexed(
    resources: &mut ResMap,
    incoming: ResMap,
    ids: &mut Ids,
) -> Result<(), String> {
    for resource in incoming {
        if !ids.insert(resource.cur_id()) {
            return Err(format!(
                "may not add resource with an already registered id: {}",
                resource.cur_id()
            ));
        }
        resources.push(resource);
    }
    Ok(())
}

/// Indexes of the resources that have, or once had, an identity equal to `id`.
pub fn matching_any_id(resources: &ResMap, id: &ResId) -> Vec<usize> {
    resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.has_id(id))
        .map(|(i, _)| i)
        .collect()
}

/// Adds a generated object, or merges it into / replaces the one it names.
pub fn absorb(
    resources: &mut ResMap,
    generated: Resource,
    behavior: Behavior,
) -> Result<(), String> {
    let id = generated.cur_id();
    let matches = matching_any_id(resources, &id);
    match (matches.as_slice(), behavior) {
        ([], Behavior::Create) => {
            resources.push(generated);
            Ok(())
        }
        ([], _) => Err(format!("id {id} does not exist; cannot merge or replace")),
        ([_], Behavior::Create) => {
            Err(format!("id {id} exists; behavior must be merge or replace"))
        }
        ([index], behavior) => {
            let old = &resources[*index];
            let mut new = generated;
            copy_merge_metadata(&mut new, old);
            new.ref_vars = old.ref_vars.clone();
            if behavior == Behavior::Merge {
                merge_string_map(&mut new, old, "data");
                merge_string_map(&mut new, old, "binaryData");
                // A merge keeps the origin of the object merged into.
                if let Some(origin) = old.annotation(ORIGIN) {
                    new.set_annotation(ORIGIN, origin);
                }
            }
            resources[*index] = new;
            Ok(())
        }
        (_, _) => Err(format!(
            "found multiple objects that could accept merge of {id}"
        )),
    }
}

/// Takes labels, annotations, name and namespace from `old` where the new object has none,
/// keeping the old object's build bookkeeping.
fn copy_merge_metadata(new: &mut Resource, old: &Resource) {
    let mut labels = string_map(old.labels());
    labels.extend(string_map(new.labels()));
    set_string_map(new, "labels", &labels);
    let needs_hash = new.annotation(NEEDS_HASH).is_some();
    let old_annotations = string_map(old.annotations());
    let mut annotations = old_annotations.clone();
    annotations.extend(string_map(new.annotations()));
    for key in BUILD_ANNOTATIONS {
        match old_annotations.get(*key) {
            Some(value) => annotations.insert(key.to_string(), value.clone()),
            None => annotations.remove(*key),
        };
    }
    if !needs_hash {
        annotations.remove(NEEDS_HASH);
    }
    set_string_map(new, "annotations", &annotations);
    new.set_name(old.name());
    new.set_namespace(old.namespace().unwrap_or(""));
}

fn merge_string_map(new: &mut Resource, old: &Resource, field: &str) {
    let mut merged = string_map(old.value.get(field).and_then(Value::as_object));
    merged.extend(string_map(new.value.get(field).and_then(Value::as_object)));
    let object = object_mut(&mut new.value);
    object.remove(field);
    if !merged.is_empty() {
        let map: Map<String, Value> = merged
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        object.insert(field.to_string(), Value::Object(map));
    }
}

/// The map as strings, the way kustomize reads labels and annotations.
pub fn string_map(map: Option<&Map<String, Value>>) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .map(|(k, v)| (k.clone(), scalar_text(Some(v))))
        .collect()
}

/// Replaces `metadata.<field>` with `map`, removing the field when `map` is empty.
pub fn set_string_map(resource: &mut Resource, field: &str, map: &BTreeMap<String, String>) {
    let metadata = resource.metadata_mut();
    metadata.remove(field);
    if !map.is_empty() {
        let map: Map<String, Value> = map
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        metadata.insert(field.to_string(), Value::Object(map));
    }
}

/// A compiled patch target.
pub struct Matcher {
    group: Option<Anchored>,
    version: Option<Anchored>,
    kind: Option<Anchored>,
    name: Option<Anchored>,
    namespace: Option<Anchored>,
    labels: LabelSelector,
    annotations: LabelSelector,
}

impl Matcher {
    /// Compiles `selector`; every part is an anchored regular expression.
    pub fn new(selector: &Selector) -> Result<Matcher, String> {
        let anchored = |pattern: &str| -> Result<Option<Anchored>, String> {
            if pattern.is_empty() {
                return Ok(None);
            }
            Anchored::new(pattern)
                .map(Some)
                .map_err(|err| err.to_string())
        };
        Ok(Matcher {
            group: anchored(&selector.gvk.group)?,
            version: anchored(&selector.gvk.version)?,
            kind: anchored(&selector.gvk.kind)?,
            name: anchored(&selector.name)?,
            namespace: anchored(&selector.namespace)?,
            labels: LabelSelector::parse(&selector.label_selector)?,
            annotations: LabelSelector::parse(&selector.annotation_selector)?,
        })
    }

    /// Whether `resource` is selected. The cheap tests come first: most targets name a kind,
    /// which rules out most resources before their identities are looked at.
    pub fn matches(&self, resource: &Resource) -> bool {
        let is = |pattern: &Option<Anchored>, text: &str| {
            pattern.as_ref().is_none_or(|p| p.is_match(text))
        };
        let (group, version) = split_api_version(resource.api_version());
        if !(is(&self.kind, resource.kind())
            && is(&self.group, group)
            && is(&self.version, version))
        {
            return false;
        }
        if self.namespace.is_some() || self.name.is_some() {
            let (org, cur) = (resource.org_id(), resource.cur_id());
            if !((is(&self.namespace, org.effective_namespace())
                || is(&self.namespace, cur.effective_namespace()))
                && (is(&self.name, &org.name) || is(&self.name, &cur.name)))
            {
                return false;
            }
        }
        (self.labels.is_empty() || self.labels.matches(&string_map(resource.labels())))
            && (self.annotations.is_empty()
                || self
                    .annotations
                    .matches(&string_map(resource.annotations())))
    }
}

/// A Kubernetes label selector (`a=b,c!=d,e in (f,g),!h`).
#[derive(Debug, Default)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

#[derive(Debug)]
enum Requirement {
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

impl LabelSelector {
    /// Parses the selector syntax of `kubectl -l`.
    pub fn parse(text: &str) -> Result<LabelSelector, String> {
        let mut requirements = Vec::new();
        for part in split_top_level(text) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            requirements.push(Requirement::parse(part)?);
        }
        Ok(LabelSelector { requirements })
    }

    /// Whether the selector selects everything.
    pub(crate) fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    pub(crate) fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::In(k, vs) => labels.get(k).is_some_and(|v| vs.contains(v)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|v| !vs.contains(v)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

impl Requirement {
    fn parse(part: &str) -> Result<Requirement, String> {
        if let Some(key) = part.strip_prefix('!') {
            return Ok(Requirement::NotExists(key.trim().to_string()));
        }
        for (op, negate) in [("!=", true), ("==", false), ("=", false)] {
            if let Some((k, v)) = part.split_once(op) {
                let (k, v) = (k.trim().to_string(), vec![v.trim().to_string()]);
                return Ok(if negate {
                    Requirement::NotIn(k, v)
                } else {
                    Requirement::In(k, v)
                });
            }
        }
        let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
        if let [key, rest] = words.as_slice() {
            let rest = rest.trim();
            let (negate, list) = if let Some(list) = rest.strip_prefix("notin") {
                (true, list)
            } else if let Some(list) = rest.strip_prefix("in") {
                (false, list)
            } else {
                return Err(format!("unable to parse requirement: {part:?}"));
            };
            let list = list
                .trim()
                .strip_prefix('(')
                .and_then(|l| l.strip_suffix(')'));
            let Some(list) = list else {
                return Err(format!("unable to parse requirement: {part:?}"));
            };
            let values = list.split(',').map(|v| v.trim().to_string()).collect();
            let key = key.to_string();
            return Ok(if negate {
                Requirement::NotIn(key, values)
            } else {
                Requirement::In(key, values)
            });
        }
        Ok(Requirement::Exists(part.to_string()))
    }
}

/// Splits on commas outside parentheses.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config_map(name: &str, data: Value) -> Resource {
        Resource::new(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}),
        )
    }

    #[test]
    fn generated_objects_merge_replace_or_refuse_by_behavior() {
        let mut resources = vec![config_map("app", json!({"a": "1", "b": "2"}))];
        absorb(
            &mut resources,
            config_map("app", json!({"b": "3"})),
            Behavior::Merge,
        )
        .expect("merges");
        assert_eq!(resources[0].value["data"], json!({"a": "1", "b": "3"}));
        absorb(
            &mut resources,
            config_map("app", json!({"c": "4"})),
            Behavior::Replace,
        )
        .expect("replaces");
        assert_eq!(resources[0].value["data"], json!({"c": "4"}));
        let err = absorb(
            &mut resources,
            config_map("app", json!({})),
            Behavior::Create,
        )
        .expect_err("exists");
        assert!(err.contains("behavior must be merge or replace"), "{err}");
        let err = absorb(
            &mut resources,
            config_map("other", json!({})),
            Behavior::Merge,
        )
        .expect_err("missing");
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn appending_refuses_a_second_object_with_the_same_identity() {
        let mut resources = vec![config_map("app", json!({}))];
        let err = append_all(&mut resources, vec![config_map("app", json!({"x": "y"}))])
            .expect_err("conflict");
        assert!(
            err.contains("already registered id: ConfigMap \"app\""),
            "{err}"
        );
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_follow_kubectl_syntax() {
        let s = LabelSelector::parse("app=web, tier in (a, b),!legacy,env!=prod").expect("valid");
        assert!(s.matches(&labels(&[("app", "web"), ("tier", "a")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "c")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "a"), ("legacy", "")])));
        assert!(!s.matches(&labels(&[("app", "web"), ("tier", "b"), ("env", "prod")])));
    }
}
