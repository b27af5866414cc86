//! The `generators:`, `transformers:` and `validators:` of a kustomization: kustomize's built-in
//! plugins, configured inline or by file (or by a directory whose kustomization builds the
//! configurations), run after the kustomization's own generators and transformers as kustomize
//! runs them. A validator may not change anything.

use serde_json::Value;

use super::build_metadata::{self, Origin};
use super::error::RenderError;
use super::generator::{self, Generated};
use super::hash;
use super::images;
use super::kustomization::plugins::{
    self, IamPolicy, PluginConfig, ValueTarget, parse_value_targets_file,
};
use super::kustomization::{Behavior, Kustomization, PatchSpec};
use super::loader::display;
use super::patch::{self, Body, Patch};
use super::replacement;
use super::resmap::{ResMap, absorb};
use super::resource::{NEEDS_HASH, Resource};
use super::source::EntryKind;
use super::target::{Builder, strategic_merge_docs};
use super::transform;
use super::value_add;
use super::yaml::{Schema, parse_documents};

/// The label kustomize ignores when it checks that a validator changed nothing.
const VALIDATED_BY: &str = "validated-by";

/// One configured plugin and where its configuration was read.
pub struct Plugin {
    /// The file (or directory) holding the configuration.
    pub source: String,
    /// `Kind/name`, for messages.
    pub id: String,
    pub config: PluginConfig,
    /// What `buildMetadata` records for it, while origins are tracked.
    pub origin: Option<build_metadata::Configured>,
}

/// A plugin configuration document: where it was read, its line, its origin (while tracked).
type Document = (String, usize, Option<Origin>, Value);

impl Builder<'_> {
    /// The plugins one of the lists configures. As in kustomize, inline configurations come
    /// first, then those read from files and directories, each in list order.
    pub(super) fn plugins(
        &mut self,
        k: &Kustomization,
        dir: &str,
        field: &str,
        entries: &[String],
    ) -> Result<Vec<Plugin>, RenderError> {
        let line = k.lines.get(field).copied().unwrap_or(1);
        let mut inline = Vec::new();
        let mut paths = Vec::new();
        let kustomization_origin = self
            .origin
            .as_ref()
            .map(|origin| origin.join(k.path.rsplit('/').next().unwrap_or(&k.path)));
        for entry in entries {
            match inline_documents(entry) {
                Some(documents) => inline.extend(
                    documents
                        .into_iter()
                        .map(|doc| (k.path.clone(), line, kustomization_origin.clone(), doc)),
                ),
                None => paths.push(entry),
            }
        }
        let mut found = inline;
        for entry in paths {
            found.extend(self.plugin_documents(k, dir, entry, line)?);
        }
        found
            .into_iter()
            .map(|(source, line, origin, doc)| {
                let config = plugins::parse(&source, line, &doc)?;
                let id = plugin_id(&doc);
                let origin = origin.map(|at| build_metadata::Configured::plugin(&at, &doc));
                Ok(Plugin {
                    source,
                    id,
                    config,
                    origin,
                })
            })
            .collect()
    }

    /// The configuration documents of a file, or the objects a directory's kustomization builds.
    fn plugin_documents(
        &mut self,
        k: &Kustomization,
        dir: &str,
        entry: &str,
        line: usize,
    ) -> Result<Vec<Document>, RenderError> {
        let path = self.loader.resolve(dir, entry, &k.path)?;
        if self.loader.entry(&path)? == Some(EntryKind::Dir) {
            let mut built = ResMap::new();
            self.resource(k, dir, entry, &mut built)?;
            let source = display(&path).to_string();
            return Ok(built
                .into_iter()
                .map(|mut r| {
                    let origin = Origin::of_resource(&r);
                    r.finish();
                    (source.clone(), line, origin, r.value)
                })
                .collect());
        }
        let (path, text) = self.loader.read_text(dir, entry, &k.path)?;
        let documents = parse_documents(&text, Schema::Core).map_err(|err| RenderError::Yaml {
            path: path.clone(),
            position: super::error::Position {
                line: err.line,
                column: err.column,
            },
            message: err.message,
        })?;
        let origin = self.origin.as_ref().map(|origin| origin.join(entry));
        Ok(documents
            .into_iter()
            .filter(|doc| doc.value.as_object().is_some_and(|map| !map.is_empty()))
            .map(|doc| (path.clone(), doc.line, origin.clone(), doc.value))
            .collect())
    }

    /// Runs the plugins of `generators:`, adding what they generate.
    pub(super) fn run_generators(
        &mut self,
        k: &Kustomization,
        dir: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        for plugin in self.plugins(k, dir, "generators", &k.generators)? {
            let (what, args) = match &plugin.config {
                PluginConfig::ConfigMapGenerator(args) => (Generated::ConfigMap, args),
                PluginConfig::SecretGenerator(args) => (Generated::Secret, args),
                PluginConfig::IamPolicy(policy) => {
                    let mut generated = iam_service_account(policy);
                    if let Some(by) = &plugin.origin {
                        build_metadata::annotate_generated(&mut generated, by);
                    }
                    absorb(resources, generated, Behavior::Create).map_err(|err| {
                        RenderError::transform(&k.path, format!("generator {}: {err}", plugin.id))
                    })?;
                    continue;
                }
                _ => return Err(not_a(&plugin, "generator")),
            };
            let error = |err: String| {
                RenderError::transform(&k.path, format!("generator {}: {err}", plugin.id))
            };
            let pairs = self.pairs(k, dir, args)?;
            let mut generated =
                generator::generate(what, args, args.options.as_ref(), pairs).map_err(error)?;
            if let Some(by) = &plugin.origin {
                build_metadata::annotate_generated(&mut generated, by);
            }
            absorb(resources, generated, args.behavior).map_err(error)?;
        }
        Ok(())
    }

    /// Runs the plugins of `transformers:` in order.
    pub(super) fn run_transformers(
        &mut self,
        k: &Kustomization,
        dir: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        for plugin in self.plugins(k, dir, "transformers", &k.transformers)? {
            self.transform(k, dir, &plugin, resources)?;
            if let Some(by) = &plugin.origin {
                build_metadata::record_transformation(resources, by);
            }
        }
        Ok(())
    }

    /// Runs the plugins of `validators:`, refusing any that changes the resources.
    pub(super) fn run_validators(
        &mut self,
        k: &Kustomization,
        dir: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        for plugin in self.plugins(k, dir, "validators", &k.validators)? {
            let before = resources.clone();
            self.transform(k, dir, &plugin, resources)?;
            let mut after = resources.clone();
            for resource in &mut after {
                resource.remove_label(VALIDATED_BY);
            }
            if let Some(change) = first_change(&before, &after) {
                return Err(RenderError::transform(
                    &k.path,
                    format!(
                        "validator {} (in {}) shouldn't modify the resource map: {change}",
                        plugin.id, plugin.source
                    ),
                ));
            }
        }
        Ok(())
    }

    fn transform(
        &self,
        k: &Kustomization,
        dir: &str,
        plugin: &Plugin,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let failed = |err: String| RenderError::transform(&k.path, format!("{}: {err}", plugin.id));
        match &plugin.config {
            PluginConfig::ConfigMapGenerator(_)
            | PluginConfig::SecretGenerator(_)
            | PluginConfig::IamPolicy(_) => {
                return Err(not_a(plugin, "transformer"));
            }
            PluginConfig::Annotations { pairs, specs } | PluginConfig::Labels { pairs, specs } => {
                transform::set_pairs(resources, pairs, specs).map_err(failed)?
            }
            PluginConfig::Hash => add_hash_suffixes(resources),
            PluginConfig::ImageTag { image, specs } => {
                images::apply_image_with(resources, image, specs).map_err(failed)?
            }
            PluginConfig::Namespace(config) => {
                transform::namespace_with(resources, config).map_err(failed)?
            }
            PluginConfig::Patch(spec) => self.patch(k, dir, spec, resources)?,
            PluginConfig::PatchJson6902 {
                target,
                path,
                json_op,
            } => {
                let (source, text) = if path.is_empty() {
                    (
                        format!("inline patch in {}", plugin.source),
                        json_op.clone(),
                    )
                } else {
                    self.loader.read_text(dir, path, &k.path)?
                };
                let (ops, names) =
                    patch::json_ops(&text).map_err(|err| RenderError::InvalidResource {
                        path: source.clone(),
                        message: err,
                    })?;
                if names.is_empty() {
                    return Err(failed(format!("{source}: patch appears to be empty")));
                }
                let patch = Patch {
                    source,
                    body: Body::Json(ops, names),
                };
                patch::legacy_json(resources, target, &patch, &k.path)?;
            }
            PluginConfig::PatchStrategicMerge { paths, patches } => {
                self.strategic_merge(k, dir, plugin, paths, patches, resources)?
            }
            PluginConfig::PrefixSuffix {
                prefix,
                suffix,
                specs,
            } => {
                if let Some(prefix) = prefix {
                    transform::name_affix_with(resources, prefix, false, specs).map_err(failed)?;
                }
                if let Some(suffix) = suffix {
                    transform::name_affix_with(resources, suffix, true, specs).map_err(failed)?;
                }
            }
            PluginConfig::ReplicaCount { replica, specs } => {
                transform::replicas_with(resources, std::slice::from_ref(replica), specs)
                    .map_err(failed)?
            }
            PluginConfig::Replacement(entries) => {
                let replacements = self.replacements(k, dir, entries)?;
                replacement::apply(resources, &replacements).map_err(failed)?
            }
            PluginConfig::ValueAdd {
                value,
                targets,
                target_file,
            } => self.value_add(k, dir, plugin, (value, targets, target_file), resources)?,
        }
        resources.retain(|r| !r.is_empty());
        Ok(())
    }

    /// A ValueAddTransformer: its targets (with those of its target file) checked as
    /// kustomize checks them, and its value, by default the kustomization directory's name.
    fn value_add(
        &self,
        k: &Kustomization,
        dir: &str,
        plugin: &Plugin,
        (value, targets, target_file): (&String, &Vec<ValueTarget>, &String),
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let failed = |err: String| RenderError::transform(&k.path, format!("{}: {err}", plugin.id));
        let mut targets = targets.clone();
        if !target_file.is_empty() {
            let (path, text) = self.loader.read_text(dir, target_file, &k.path)?;
            targets.extend(parse_value_targets_file(&path, &text)?);
        }
        if targets.is_empty() {
            return Err(failed("must specify at least one target".to_string()));
        }
        for target in &targets {
            if target.field_path.is_empty() {
                return Err(failed("fieldPath cannot be empty".to_string()));
            }
            if target.file_path_position < 0 {
                return Err(failed(format!(
                    "filePathPosition ({}) cannot be negative",
                    target.file_path_position
                )));
            }
        }
        let value = match (value.is_empty(), dir.rsplit('/').next()) {
            (false, _) => value.clone(),
            (true, Some(name)) if !name.is_empty() => name.to_string(),
            (true, _) => self.loader.source.root_name().ok_or_else(|| {
                failed("`value` is needed: the kustomization's directory has no name".to_string())
            })?,
        };
        value_add::apply(resources, &value, &targets).map_err(failed)
    }

    fn patch(
        &self,
        k: &Kustomization,
        dir: &str,
        spec: &PatchSpec,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let (source, text) = self.patch_text(k, dir, &spec.path, &spec.patch)?;
        let body = patch::parse(&source, &text)?;
        patch::apply(resources, spec, Patch { source, body }, &k.path)
    }

    fn strategic_merge(
        &self,
        k: &Kustomization,
        dir: &str,
        plugin: &Plugin,
        paths: &[String],
        patches: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let mut loaded = Vec::new();
        for entry in paths {
            let (source, text) = self.strategic_merge_text(k, dir, entry)?;
            let docs = strategic_merge_docs(&source, &text)?;
            loaded.push((source, docs));
        }
        if !patches.is_empty() {
            let source = format!("inline patch in {}", plugin.source);
            let docs = strategic_merge_docs(&source, patches)?;
            loaded.push((source, docs));
        }
        if loaded.iter().all(|(_, docs)| docs.is_empty()) {
            return Err(RenderError::transform(
                &k.path,
                format!(
                    "{}: patch appears to be empty; files=[{}]",
                    plugin.id,
                    paths.join(" ")
                ),
            ));
        }
        for (source, docs) in loaded {
            let patch = Patch {
                source,
                body: Body::StrategicMerge(docs),
            };
            patch::legacy_strategic_merge(resources, &patch, &k.path)?;
            resources.retain(|r| !r.is_empty());
        }
        Ok(())
    }
}

/// Gives every object that asks for one a content-hash name suffix (the HashTransformer,
/// which kustomize also runs once at the end of every build).
pub fn add_hash_suffixes(resources: &mut ResMap) {
    for resource in resources.iter_mut() {
        if resource.is_enabled(NEEDS_HASH) {
            let suffix = hash::suffix(resource);
            resource.store_previous_id();
            let name = format!("{}-{suffix}", resource.name());
            resource.set_name(&name);
        }
    }
}

/// The ServiceAccount an IAMPolicyGenerator makes: bound to a GKE service account through
/// workload identity.
fn iam_service_account(policy: &IamPolicy) -> Resource {
    let mut metadata = serde_json::Map::new();
    let account = format!(
        "{}@{}.iam.gserviceaccount.com",
        policy.service_account, policy.project_id
    );
    metadata.insert(
        "annotations".into(),
        serde_json::json!({ "iam.gke.io/gcp-service-account": account }),
    );
    metadata.insert("name".into(), Value::String(policy.name.clone()));
    if !policy.namespace.is_empty() {
        metadata.insert("namespace".into(), Value::String(policy.namespace.clone()));
    }
    Resource::new(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": metadata,
    }))
}

/// Inline configurations: an entry that reads as YAML holding at least one mapping.
fn inline_documents(entry: &str) -> Option<Vec<Value>> {
    let documents = parse_documents(entry, Schema::Core).ok()?;
    let objects: Vec<Value> = documents
        .into_iter()
        .map(|doc| doc.value)
        .filter(|value| value.as_object().is_some_and(|map| !map.is_empty()))
        .collect();
    (!objects.is_empty()).then_some(objects)
}

fn plugin_id(doc: &Value) -> String {
    let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or("").to_string();
    let kind = text(doc.get("kind"));
    let name = text(doc.get("metadata").and_then(|m| m.get("name")));
    if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    }
}

fn not_a(plugin: &Plugin, what: &str) -> RenderError {
    RenderError::Transform {
        kustomization: plugin.source.clone(),
        message: format!("plugin {} is not a {what}", plugin.id),
    }
}

/// The first difference between the objects before and after a validator ran, if any.
fn first_change(before: &[Resource], after: &[Resource]) -> Option<String> {
    if before.len() != after.len() {
        return Some(format!(
            "it changed the number of objects from {} to {}",
            before.len(),
            after.len()
        ));
    }
    for old in before {
        let id = old.cur_id();
        match after.iter().find(|new| new.cur_id().equals(&id)) {
            None => return Some(format!("{id} is gone")),
            Some(new) if new.value != old.value => return Some(format!("{id} changed")),
            Some(_) => {}
        }
    }
    None
}
