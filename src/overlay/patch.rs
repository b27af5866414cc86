//! The patch transformers: `patches` (strategic merge or JSON 6902, inline or from a file, with
//! or without a target selector) and the legacy `patchesStrategicMerge` and `patchesJson6902`.
//! json-patch is used only here.

use serde_json::Value;

use super::bounds::Growth;
use super::error::{PatchFailure, RenderError};
use super::kustomization::{PatchSpec, Selector};
use super::resmap::{Matcher, ResMap, append_all, matching_any_id, set_string_map, string_map};
use super::resource::{ALLOW_KIND_CHANGE, ALLOW_NAME_CHANGE, Resource};
use super::smp;
use super::yaml::{Schema, parse_documents, parse_patch_documents};

const INTERNAL_PREFIX: &str = "internal.config.kubernetes.io/";

/// A loaded patch: where it came from (for messages) and what it holds.
pub struct Patch {
    pub source: String,
    pub body: Body,
}

/// The two kinds of patch.
pub enum Body {
    StrategicMerge(Vec<PatchDoc>),
    Json(json_patch::Patch, Vec<Op>),
}

/// One strategic-merge patch document.
#[derive(Debug, Clone)]
pub struct PatchDoc {
    pub resource: Resource,
    /// Annotations the patch sets to null, with the text the null was written as.
    pub null_annotations: Vec<(String, String)>,
}

/// An operation's name and path, kept for error messages.
pub struct Op {
    pub op: String,
    pub path: String,
}

/// Reads `text` as strategic-merge documents or as a JSON 6902 operation list.
///
/// kustomize tries both readings. One rules the other out when the first document decides
/// it: a list is never a strategic-merge patch, and a mapping that reads as one is never a
/// list of operations. The text is parsed a second time only when the first reading tried
/// leaves the question open; which reading is tried first is only a guess from the text.
pub fn parse(source: &str, text: &str) -> Result<Body, RenderError> {
    let invalid = |message: String| RenderError::InvalidResource {
        path: source.to_string(),
        message,
    };
    let (strategic, json) = if looks_like_a_list(text) {
        let json = operations(text);
        if let Ok((patch, ops, true)) = json {
            return Ok(Body::Json(patch, ops));
        }
        (strategic_documents(source, text), json)
    } else {
        let strategic = strategic_documents(source, text);
        if let Ok((docs, true)) = strategic {
            return Ok(Body::StrategicMerge(docs));
        }
        (strategic, operations(text))
    };
    match (strategic, json) {
        (Ok(_), Ok(_)) => Err(invalid(
            "qualifies as both a strategic-merge and a JSON patch".into(),
        )),
        (Ok((docs, _)), Err(_)) => Ok(Body::StrategicMerge(docs)),
        (Err(_), Ok((patch, ops, _))) => Ok(Body::Json(patch, ops)),
        (Err(sm), Err(json)) => Err(invalid(format!(
            "neither a strategic-merge patch ({sm}) nor a JSON 6902 patch ({json})"
        ))),
    }
}

/// Whether the first line with content opens a list (`- …` or `[…`).
fn looks_like_a_list(text: &str) -> bool {
    let first = text
        .lines()
        .map(str::trim_start)
        .find(|line| !line.is_empty() && !line.starts_with('#') && !line.starts_with("---"));
    first.is_some_and(|line| {
        line.starts_with('[') || line == "-" || line.starts_with("- ") || line.starts_with("-\t")
    })
}

/// Reads `text` as a JSON 6902 operation list (JSON, or YAML read with YAML 1.1 rules).
pub fn json_ops(text: &str) -> Result<(json_patch::Patch, Vec<Op>), String> {
    operations(text).map(|(patch, ops, _)| (patch, ops))
}

/// [`json_ops`], and whether the text held a list (rather than nothing).
fn operations(text: &str) -> Result<(json_patch::Patch, Vec<Op>, bool), String> {
    if text.trim().is_empty() {
        return Err("empty json patch operations".to_string());
    }
    let value: Value = if text.starts_with('[') {
        serde_json::from_str(text).map_err(|err| err.to_string())?
    } else {
        let docs = parse_documents(text, Schema::Yaml11)
            .map_err(|e| format!("line {}: {}", e.line, e.message))?;
        docs.into_iter()
            .map(|d| d.value)
            .next()
            .unwrap_or(Value::Null)
    };
    // Like kustomize, a document of comments alone is an empty list of operations.
    let (value, listed) = if value.is_null() {
        (Value::Array(Vec::new()), false)
    } else {
        (value, true)
    };
    let Value::Array(items) = &value else {
        return Err("a JSON patch must be a list of operations".to_string());
    };
    let ops = items
        .iter()
        .map(|item| Op {
            op: item
                .get("op")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            path: item
                .get("path")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        })
        .collect();
    let patch = serde_json::from_value(value).map_err(|err| err.to_string())?;
    Ok((patch, ops, listed))
}

/// Reads `text` as strategic-merge patch documents (none for an empty or comments-only text).
pub fn strategic_merge(source: &str, text: &str) -> Result<Vec<PatchDoc>, String> {
    strategic_documents(source, text).map(|(docs, _)| docs)
}

/// [`strategic_merge`], and whether the first document is a mapping with fields.
fn strategic_documents(source: &str, text: &str) -> Result<(Vec<PatchDoc>, bool), String> {
    let docs =
        parse_patch_documents(text).map_err(|e| format!("line {}: {}", e.line, e.message))?;
    let opens_with_mapping = docs
        .first()
        .is_some_and(|doc| doc.value.as_object().is_some_and(|map| !map.is_empty()));
    let mut patches = Vec::new();
    for doc in docs {
        match doc.value {
            Value::Null => {}
            Value::Object(map) if map.is_empty() => {}
            Value::Object(map) => {
                let resource = Resource::new(Value::Object(map));
                if resource.kind().is_empty() {
                    return Err(format!("missing kind in object in {source}"));
                }
                if resource.name().is_empty() && !resource.kind().ends_with("List") {
                    return Err(format!("missing metadata.name in object in {source}"));
                }
                patches.push(PatchDoc {
                    resource,
                    null_annotations: doc.null_annotations,
                });
            }
            _ => return Err("not a mapping".to_string()),
        }
    }
    Ok((patches, opens_with_mapping))
}

/// Applies one `patches:` entry.
pub fn apply(
    resources: &mut ResMap,
    spec: &PatchSpec,
    patch: Patch,
    at: &str,
) -> Result<(), RenderError> {
    let Patch { source, body } = patch;
    let error = |message: String| RenderError::transform(at, format!("{source}: {message}"));
    match body {
        // An empty text is no strategic-merge patch to kustomize: it is an empty JSON patch.
        Body::StrategicMerge(docs) if docs.is_empty() => match &spec.target {
            Some(_) => Ok(()),
            None => Err(error("a JSON patch needs a target".into())),
        },
        Body::StrategicMerge(docs) => {
            let docs: Vec<PatchDoc> = docs.into_iter().map(|d| allow_changes(d, spec)).collect();
            match &spec.target {
                Some(target) => {
                    if docs.len() > 1 {
                        return Err(error(
                            "a strategic-merge patch with a target must hold one document".into(),
                        ));
                    }
                    let selected = select(resources, target).map_err(&error)?;
                    if let Some(doc) = docs.first() {
                        apply_to_selected(resources, &selected, doc).map_err(&error)?;
                    }
                }
                None => {
                    for doc in &docs {
                        let index = unique_target(resources, &doc.resource).map_err(&error)?;
                        apply_to_resource(&mut resources[index], &doc.resource).map_err(&error)?;
                    }
                }
            }
            resources.retain(|r| !r.is_empty());
            Ok(())
        }
        Body::Json(ops, names) => {
            let Some(target) = &spec.target else {
                return Err(error("a JSON patch needs a target".into()));
            };
            apply_json(resources, target, &ops, &names, &source, true)
        }
    }
}

fn allow_changes(mut doc: PatchDoc, spec: &PatchSpec) -> PatchDoc {
    if spec.allow_name_change {
        doc.resource.set_annotation(ALLOW_NAME_CHANGE, "enabled");
    }
    if spec.allow_kind_change {
        doc.resource.set_annotation(ALLOW_KIND_CHANGE, "enabled");
    }
    doc
}

/// Applies `patchesStrategicMerge` documents: each to the one object it names.
pub fn legacy_strategic_merge(
    resources: &mut ResMap,
    patch: &Patch,
    at: &str,
) -> Result<(), RenderError> {
    let error =
        |message: String| RenderError::transform(at, format!("{}: {message}", patch.source));
    let Body::StrategicMerge(docs) = &patch.body else {
        return Err(error("not a strategic-merge patch".into()));
    };
    for doc in docs {
        let index = unique_target(resources, &doc.resource).map_err(&error)?;
        let id = resources[index].cur_id();
        apply_to_selected(resources, &[id], doc).map_err(&error)?;
    }
    Ok(())
}

/// Applies a `patchesJson6902` entry.
pub fn legacy_json(
    resources: &mut ResMap,
    target: &Selector,
    patch: &Patch,
    at: &str,
) -> Result<(), RenderError> {
    let Body::Json(ops, names) = &patch.body else {
        return Err(RenderError::transform(
            at,
            format!("{}: not a JSON 6902 patch", patch.source),
        ));
    };
    apply_json(resources, target, ops, names, &patch.source, false)
}

/// The index of the one object whose current or earlier identity is the patch's.
fn unique_target(resources: &ResMap, doc: &Resource) -> Result<usize, String> {
    let id = doc.org_id();
    match matching_any_id(resources, &id).as_slice() {
        [index] => Ok(*index),
        [] => Err(format!("no resource matches strategic merge patch {id}")),
        _ => Err(format!(
            "multiple resources match strategic merge patch {id}"
        )),
    }
}

fn select(resources: &ResMap, target: &Selector) -> Result<Vec<super::resid::ResId>, String> {
    let matcher = Matcher::new(target)?;
    Ok(resources
        .iter()
        .filter(|r| matcher.matches(r))
        .map(Resource::cur_id)
        .collect())
}

/// Applies `doc` to each selected object as a copy adjusted to the object's apiVersion.
fn apply_to_selected(
    resources: &mut ResMap,
    selected: &[super::resid::ResId],
    doc: &PatchDoc,
) -> Result<(), String> {
    let mut kept = ResMap::new();
    for mut resource in std::mem::take(resources) {
        if selected.contains(&resource.cur_id()) {
            let mut copy = doc.resource.clone();
            // kustomize rewrites the patch's labels and annotations as strings first, so an
            // annotation set to null becomes the text it was written as.
            let labels = string_map(copy.labels());
            set_string_map(&mut copy, "labels", &labels);
            let mut annotations = string_map(copy.annotations());
            annotations.extend(doc.null_annotations.iter().cloned());
            set_string_map(&mut copy, "annotations", &annotations);
            copy.set_name(doc.resource.name());
            copy.set_namespace(doc.resource.namespace().unwrap_or(""));
            copy.set_api_version(resource.api_version());
            apply_to_resource(&mut resource, &copy)?;
        }
        if !resource.is_empty() {
            kept.push(resource);
        }
    }
    append_all(resources, kept)
}

/// Merges `doc` into one object, keeping its name, kind and namespace unless allowed.
fn apply_to_resource(resource: &mut Resource, doc: &Resource) -> Result<(), String> {
    let (name, namespace, kind) = (
        resource.name().to_string(),
        resource.namespace().unwrap_or("").to_string(),
        resource.kind().to_string(),
    );
    let allow_name = doc.is_enabled(ALLOW_NAME_CHANGE);
    let allow_kind = doc.is_enabled(ALLOW_KIND_CHANGE);
    if allow_name || allow_kind {
        resource.store_previous_id();
    }
    let value = std::mem::take(&mut resource.value);
    match smp::merge(value, &doc.value)? {
        None => resource.value = Value::Object(Default::default()),
        Some(merged) => {
            resource.value = merged;
            if !allow_kind {
                resource.set_kind(&kind);
            }
            if !allow_name {
                resource.set_name(&name);
            }
            resource.set_namespace(&namespace);
        }
    }
    Ok(())
}

fn apply_json(
    resources: &mut ResMap,
    target: &Selector,
    patch: &json_patch::Patch,
    ops: &[Op],
    source: &str,
    track_rename: bool,
) -> Result<(), RenderError> {
    let matcher = Matcher::new(target).map_err(|err| RenderError::transform(source, err))?;
    for resource in resources.iter_mut().filter(|r| matcher.matches(r)) {
        if track_rename {
            resource.store_previous_id();
        }
        let internal: Vec<(String, Value)> = resource
            .annotations()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(INTERNAL_PREFIX))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let target_id = resource.cur_id().to_string();
        let failure = |index: usize, path: String, message: String| {
            let op = ops.get(index);
            RenderError::JsonPatch(Box::new(PatchFailure {
                patch: source.to_string(),
                index: index + 1,
                op: op.map_or_else(String::new, |o| o.op.clone()),
                path: op.map_or(path, |o| o.path.clone()),
                target: target_id.clone(),
                message,
            }))
        };
        let mut growth = Growth::of(&resource.value);
        for (index, operation) in patch.0.iter().enumerate() {
            check_growth(&mut growth, &resource.value, operation)
                .map_err(|message| failure(index, String::new(), message))?;
            json_patch::patch_unsafe(&mut resource.value, std::slice::from_ref(operation))
                .map_err(|err| failure(index, err.path.to_string(), describe(&err.kind)))?;
        }
        let mut annotations = string_map(resource.annotations());
        for (key, value) in internal {
            annotations.insert(key, super::resource::scalar_text(Some(&value)));
        }
        set_string_map(resource, "annotations", &annotations);
    }
    Ok(())
}

/// Refuses an operation that could make the object larger or deeper than any input may be.
fn check_growth(
    growth: &mut Growth,
    doc: &Value,
    operation: &json_patch::PatchOperation,
) -> Result<(), String> {
    use json_patch::PatchOperation as Operation;
    match operation {
        Operation::Add(op) => growth.add(op.path.as_str(), &op.value),
        Operation::Replace(op) => growth.add(op.path.as_str(), &op.value),
        Operation::Copy(op) => match doc.pointer(op.from.as_str()) {
            Some(copied) => growth.add(op.path.as_str(), copied),
            None => Ok(()),
        },
        Operation::Move(op) => match doc.pointer(op.from.as_str()) {
            Some(moved) => growth.relocate(op.path.as_str(), moved),
            None => Ok(()),
        },
        Operation::Remove(_) | Operation::Test(_) => Ok(()),
    }
}

fn describe(kind: &json_patch::PatchErrorKind) -> String {
    match kind {
        json_patch::PatchErrorKind::TestFailed => "the value does not match".to_string(),
        json_patch::PatchErrorKind::InvalidFromPointer => {
            "the `from` path does not exist".to_string()
        }
        json_patch::PatchErrorKind::InvalidPointer => "the path does not exist".to_string(),
        other => other.to_string(),
    }
}
