//! One build: a kustomization's resources (files and other kustomizations, recursively),
//! generators, components and transformers in kustomize's order, then — once, at the top —
//! hash suffixes, name references, output order and clean-up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

use super::build_metadata::{self, Configured, Origin};
use super::config::{Config, default_arc};
use super::error::{Position, RenderError};
use super::generator::{self, Generated, Pairs};
use super::images;
use super::kustomization::{
    self, GeneratorArgs, GeneratorOptions, Kustomization, Replacement, ReplacementEntry, Var,
    Warning,
};
use super::loader::{Loader, display, is_within};
use super::namereference;
use super::order;
use super::patch::{self, Body, Patch};
use super::plugin;
use super::remote::{self, RemoteSpec, Remotes};
use super::replacement;
use super::resmap::{Ids, ResMap, absorb, append_indexed};
use super::resource::{Resource, assign_file_names};
use super::schema;
use super::source::EntryKind;
use super::transform;
use super::transformer_config;
use super::vars;
use super::yaml::{Schema, parse_documents};

/// How deep kustomizations may include each other (as resources or components): real
/// repositories stay below 10 levels; the bound keeps a chain from exhausting the stack.
pub const MAX_NESTING: usize = 100;

/// Builds the kustomization in `dir` (a real, normalized path inside the loader's source);
/// returns the objects and the warnings about the kustomizations read.
pub fn build(
    loader: Loader<'_>,
    dir: &str,
    shared: &Shared,
    remotes: Option<Remotes<'_>>,
) -> Result<(Vec<Resource>, Vec<Warning>), RenderError> {
    let mut builder = Builder {
        loader,
        chain: vec![dir.to_string()],
        shared,
        origin: None,
        warnings: Vec::new(),
        schema_set: false,
        remotes,
        repositories: Vec::new(),
        outer_depth: 0,
    };
    schema::scoped(|| {
        // A Component is built directly like a Kustomization, as kustomize builds it.
        let kustomization = builder.load(dir)?;
        builder.set_schema(&kustomization, dir)?;
        let metadata = build_metadata::Options::of(&kustomization);
        if metadata.tracks() {
            builder.origin = Some(Origin::default());
        }
        let accumulated = builder.accumulate(&kustomization, dir, Accumulated::default())?;
        let resources = finish(&kustomization, accumulated, metadata)?;
        Ok((resources, std::mem::take(&mut builder.warnings)))
    })
}

/// The only OpenAPI version kustomize v5 has built in (its default).
const BUILTIN_OPENAPI_VERSION: &str = "v1.21.2";

/// What building a kustomization hands up to the one including it: its objects, the
/// transformer configuration (kustomize's defaults plus the `configurations` and `crds` of
/// it and everything it includes) and its `vars`.
#[derive(Clone)]
pub(super) struct Accumulated {
    pub(super) resources: ResMap,
    config: Arc<Config>,
    vars: Vec<Var>,
}

impl Default for Accumulated {
    fn default() -> Self {
        Accumulated {
            resources: ResMap::new(),
            config: default_arc().clone(),
            vars: Vec::new(),
        }
    }
}

impl Accumulated {
    /// Adds another configuration. Every configuration starts from the defaults, so one that
    /// is the defaults adds nothing and, merged into the defaults, another stays itself.
    fn merge_config(&mut self, other: &Arc<Config>) -> Result<(), String> {
        if Arc::ptr_eq(&self.config, other) || Arc::ptr_eq(other, default_arc()) {
            return Ok(());
        }
        if Arc::ptr_eq(&self.config, default_arc()) {
            self.config = other.clone();
            return Ok(());
        }
        self.config = Arc::new(self.config.merged(other)?);
        Ok(())
    }

    /// Takes in the build of a kustomization this one includes; `ids` holds the identities
    /// of the objects so far.
    fn absorb_child(&mut self, child: Accumulated, ids: &mut Ids) -> Result<(), String> {
        append_indexed(&mut self.resources, child.resources, ids)?;
        self.merge_config(&child.config)?;
        vars::merge(&mut self.vars, &child.vars)
    }
}

/// Kustomizations already built by a batch of builds of one source, by directory: a base that
/// several overlays include is built once. (A nested kustomization's result does not depend on
/// who includes it.) At most [`SHARED_CAPACITY`] are kept, the oldest dropped first: overlays
/// of one base are usually built one after the other, and a dropped base is only built again.
pub struct Shared {
    built: Mutex<SharedBuilds>,
    /// Whether builds are kept at all: not for one build alone, where a kustomization is
    /// seldom included twice and keeping it would cost a copy of it.
    keeps: bool,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            built: Mutex::default(),
            keeps: true,
        }
    }
}

/// How many built kustomizations a [`Shared`] keeps.
const SHARED_CAPACITY: usize = 256;

#[derive(Default)]
struct SharedBuilds {
    by_dir: HashMap<String, Arc<Accumulated>>,
    /// The directories in the order they were added.
    order: std::collections::VecDeque<String>,
}

impl Shared {
    /// What one build alone shares: nothing.
    pub(super) fn none() -> Shared {
        Shared {
            built: Mutex::default(),
            keeps: false,
        }
    }

    pub(super) fn get(&self, dir: &str) -> Option<Accumulated> {
        if !self.keeps {
            return None;
        }
        let built = self.lock().by_dir.get(dir).cloned()?;
        // Copied outside the lock, so that other builds need not wait for it.
        Some(built.as_ref().clone())
    }

    pub(super) fn insert(&self, dir: &str, built: &Accumulated) {
        if !self.keeps {
            return;
        }
        let built = Arc::new(built.clone());
        let mut shared = self.lock();
        if shared.by_dir.insert(dir.to_string(), built).is_none() {
            shared.order.push_back(dir.to_string());
        }
        while shared.order.len() > SHARED_CAPACITY {
            if let Some(oldest) = shared.order.pop_front() {
                shared.by_dir.remove(&oldest);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SharedBuilds> {
        self.built.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct Builder<'a> {
    pub(super) loader: Loader<'a>,
    /// The kustomization directories being built, outermost first.
    chain: Vec<String>,
    pub(super) shared: &'a Shared,
    /// Where the kustomization being built is, relative to the outermost one, while
    /// `buildMetadata` asks for origins to be tracked.
    pub(super) origin: Option<Origin>,
    /// Warnings about the kustomizations read so far.
    pub(super) warnings: Vec<Warning>,
    /// Whether a kustomization of this build chose the OpenAPI schema: as in kustomize, the
    /// first `openapi:` (the outermost one, else the first met) holds for the rest of the build.
    pub(super) schema_set: bool,
    /// How remote bases are fetched; `None`: they are refused.
    pub(super) remotes: Option<Remotes<'a>>,
    /// The URLs of the remote bases being built, outermost first (to refuse a cycle).
    pub(super) repositories: Vec<String>,
    /// How deep the kustomization that started this builder is nested (for a remote base's).
    outer_depth: usize,
}

impl<'a> Builder<'a> {
    /// A builder for the remote base `spec`, reading its repository through `loader`, with
    /// this build's shared results, schema choice and remote options.
    pub(super) fn for_repository<'b>(&self, loader: Loader<'b>, spec: &RemoteSpec) -> Builder<'b>
    where
        'a: 'b,
    {
        let mut repositories = self.repositories.clone();
        repositories.push(spec.raw.clone());
        Builder {
            loader,
            chain: Vec::new(),
            shared: self.shared,
            origin: self.origin.as_ref().map(|_| remote::origin(spec)),
            warnings: Vec::new(),
            schema_set: self.schema_set,
            remotes: self.remotes,
            repositories,
            outer_depth: self.outer_depth + self.chain.len(),
        }
    }

    /// Makes `dir` the kustomization this builder starts from.
    pub(super) fn start_at(&mut self, dir: &str) {
        self.chain = vec![dir.to_string()];
    }
}

impl Builder<'_> {
    /// Applies `k`'s `openapi:` unless an earlier kustomization of the build chose a schema.
    pub(super) fn set_schema(&mut self, k: &Kustomization, dir: &str) -> Result<(), RenderError> {
        let line = k.lines.get("openapi").copied().unwrap_or(1);
        let invalid = |message: &str| RenderError::InvalidField {
            path: k.path.clone(),
            line,
            field: "openapi".to_string(),
            message: message.to_string(),
        };
        // kustomize reads the file even when another schema is already chosen.
        let file = match k.openapi.get("path") {
            Some(path) => Some(self.loader.read_text(dir, path, &k.path)?),
            None => None,
        };
        if self.schema_set {
            return Ok(());
        }
        let version = k.openapi.get("version");
        match (file, version) {
            (Some(_), Some(_)) => Err(invalid(
                "builtin version and custom schema provided, cannot use both",
            )),
            (Some((path, text)), None) => {
                let documents =
                    parse_documents(&text, Schema::Core).map_err(|err| RenderError::Yaml {
                        path: path.clone(),
                        position: Position {
                            line: err.line,
                            column: err.column,
                        },
                        message: err.message,
                    })?;
                let document = documents.into_iter().next().map(|d| d.value);
                let tables = schema::custom(&document.unwrap_or(Value::Null)).map_err(|err| {
                    RenderError::InvalidResource {
                        path: path.clone(),
                        message: format!("invalid schema file: {err}"),
                    }
                })?;
                schema::set(tables);
                self.schema_set = true;
                Ok(())
            }
            (None, Some(version)) if version.is_empty() => Ok(()),
            (None, Some(version)) if version == BUILTIN_OPENAPI_VERSION => {
                self.schema_set = true;
                Ok(())
            }
            (None, Some(_)) => Err(invalid(&format!(
                "the specified OpenAPI version is not built in (kustomize has {BUILTIN_OPENAPI_VERSION})"
            ))),
            (None, None) => Ok(()),
        }
    }

    pub(super) fn load(&mut self, dir: &str) -> Result<Kustomization, RenderError> {
        let path = self.loader.kustomization_file(dir)?;
        let bytes = self
            .loader
            .source
            .read(&path)
            .map_err(|source| RenderError::Read {
                path: path.clone(),
                source,
            })?;
        let text = String::from_utf8(bytes).map_err(|_| RenderError::InvalidResource {
            path: path.clone(),
            message: "not valid UTF-8 text".to_string(),
        })?;
        let k = kustomization::parse(&path, &text)?;
        self.warnings.extend(k.warnings.iter().cloned());
        Ok(k)
    }

    /// Refuses to enter a directory that contains (or is) one already being built, or one
    /// more than [`MAX_NESTING`] kustomizations deep.
    fn enter(&mut self, dir: &str) -> Result<(), RenderError> {
        if self.chain.iter().any(|visited| is_within(visited, dir)) {
            let mut chain: Vec<String> =
                self.chain.iter().map(|d| display(d).to_string()).collect();
            chain.push(display(dir).to_string());
            return Err(RenderError::Cycle { chain });
        }
        if self.outer_depth + self.chain.len() > MAX_NESTING {
            let referrer = self.chain.last().map_or("", String::as_str);
            return Err(RenderError::Kustomization {
                dir: display(dir).to_string(),
                problem: format!(
                    "kustomizations nest more than {MAX_NESTING} deep (included by {}, \
                     in a chain that starts at {})",
                    display(referrer),
                    display(&self.chain[0]),
                ),
            });
        }
        self.chain.push(dir.to_string());
        Ok(())
    }

    pub(super) fn build_dir(
        &mut self,
        dir: &str,
    ) -> Result<(Kustomization, Accumulated), RenderError> {
        let k = self.load(dir)?;
        self.set_schema(&k, dir)?;
        if k.is_component {
            return Err(RenderError::Kustomization {
                dir: display(dir).to_string(),
                problem: "is a Component; list it under `components`, not `resources`".into(),
            });
        }
        let built = self.accumulate(&k, dir, Accumulated::default())?;
        Ok((k, built))
    }

    pub(super) fn accumulate(
        &mut self,
        k: &Kustomization,
        dir: &str,
        mut acc: Accumulated,
    ) -> Result<Accumulated, RenderError> {
        let mut ids = Ids::of(&acc.resources);
        for path in &k.resources {
            self.resource_into(k, dir, path, &mut acc, &mut ids)?;
        }
        self.configure(k, dir, &mut acc)?;
        self.generators(k, dir, &mut acc.resources)?;
        self.run_generators(k, dir, &mut acc.resources)?;
        for path in &k.components {
            acc = self.component(k, dir, path, acc)?;
        }
        let config = acc.config.clone();
        self.transformers(k, dir, &config, &mut acc.resources)?;
        self.run_transformers(k, dir, &mut acc.resources)?;
        self.run_validators(k, dir, &mut acc.resources)?;
        let failed = |err: String| RenderError::transform(&k.path, format!("vars: {err}"));
        vars::record(&mut acc.resources, &k.vars).map_err(failed)?;
        vars::merge(&mut acc.vars, &k.vars).map_err(failed)?;
        Ok(acc)
    }

    /// Adds the `configurations` and `crds` of `k` to the transformer configuration.
    fn configure(
        &self,
        k: &Kustomization,
        dir: &str,
        acc: &mut Accumulated,
    ) -> Result<(), RenderError> {
        if k.configurations.is_empty() && k.crds.is_empty() {
            return Ok(());
        }
        let mut config = default_arc().as_ref().clone();
        let mut add = |path: &str, more: Config| {
            config = config
                .merged(&more)
                .map_err(|err| RenderError::transform(&k.path, format!("{path}: {err}")))?;
            Ok::<(), RenderError>(())
        };
        for entry in &k.configurations {
            let (path, text) = self.loader.read_text(dir, entry, &k.path)?;
            add(
                &path,
                transformer_config::parse_configuration(&path, &text)?,
            )?;
        }
        for entry in &k.crds {
            let (path, text) = self.loader.read_text(dir, entry, &k.path)?;
            add(&path, transformer_config::parse_crds(&path, &text)?)?;
        }
        acc.merge_config(&Arc::new(config))
            .map_err(|err| RenderError::transform(&k.path, err))
    }

    /// Adds the objects of a `resources:` entry, for an entry that does not belong to a
    /// kustomization's own resources (a plugin configuration directory).
    pub(super) fn resource(
        &mut self,
        k: &Kustomization,
        dir: &str,
        entry: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let mut acc = Accumulated {
            resources: std::mem::take(resources),
            ..Accumulated::default()
        };
        let mut ids = Ids::of(&acc.resources);
        let result = self.resource_into(k, dir, entry, &mut acc, &mut ids);
        *resources = acc.resources;
        result
    }

    fn resource_into(
        &mut self,
        k: &Kustomization,
        dir: &str,
        entry: &str,
        acc: &mut Accumulated,
        ids: &mut Ids,
    ) -> Result<(), RenderError> {
        let failed = |err: String| RenderError::transform(&k.path, format!("{entry}: {err}"));
        if let Some(spec) = self.remote_entry(k, dir, "resources", entry)? {
            let built = self.remote_base(k, "resources", &spec, None)?;
            return acc.absorb_child(built, ids).map_err(failed);
        }
        let path = self.loader.resolve(dir, entry, &k.path)?;
        match self.loader.entry(&path)? {
            Some(EntryKind::File) => {
                let (path, text) = self.loader.read_text(dir, entry, &k.path)?;
                let mut read = read_resources(&path, &text)?;
                if let Some(origin) = &self.origin {
                    build_metadata::annotate_file(&mut read, &origin.join(entry));
                }
                append_indexed(&mut acc.resources, read, ids).map_err(failed)
            }
            Some(EntryKind::Dir) if self.origin.is_some() => {
                // Origins depend on the path from the outermost kustomization: not shared.
                self.enter(&path)?;
                let outer = self.origin.clone();
                self.origin = outer.as_ref().map(|origin| origin.join(entry));
                let built = self.build_dir(&path);
                self.origin = outer;
                self.chain.pop();
                acc.absorb_child(built?.1, ids).map_err(failed)
            }
            Some(EntryKind::Dir) => {
                self.enter(&path)?;
                // A build under, or choosing, an OpenAPI schema depends on more than its
                // directory: it is neither shared nor taken from what was shared.
                let shareable = !self.schema_set;
                let built = match self.shared.get(&path).filter(|_| shareable) {
                    Some(built) => Ok(built),
                    None => self
                        .build_dir(&path)
                        .inspect(|(_, built)| {
                            if shareable && !self.schema_set {
                                self.shared.insert(&path, built);
                            }
                        })
                        .map(|(_, built)| built),
                };
                self.chain.pop();
                acc.absorb_child(built?, ids).map_err(failed)
            }
            None => Err(RenderError::NotFound {
                path,
                referrer: k.path.clone(),
            }),
        }
    }

    fn component(
        &mut self,
        k: &Kustomization,
        dir: &str,
        entry: &str,
        acc: Accumulated,
    ) -> Result<Accumulated, RenderError> {
        if let Some(spec) = self.remote_entry(k, dir, "components", entry)? {
            return self.remote_base(k, "components", &spec, Some(acc));
        }
        let path = self.loader.resolve(dir, entry, &k.path)?;
        if self.loader.entry(&path)? != Some(EntryKind::Dir) {
            return Err(RenderError::NotFound {
                path,
                referrer: k.path.clone(),
            });
        }
        self.enter(&path)?;
        let outer = self.origin.clone();
        self.origin = outer.as_ref().map(|origin| origin.join(entry));
        let result = self.load(&path).and_then(|component| {
            self.set_schema(&component, &path)?;
            if !component.is_component {
                return Err(RenderError::Kustomization {
                    dir: display(&path).to_string(),
                    problem: "expected kind 'Component'".into(),
                });
            }
            self.accumulate(&component, &path, acc)
        });
        self.origin = outer;
        self.chain.pop();
        result
    }

    fn generators(
        &self,
        k: &Kustomization,
        dir: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let all = k
            .config_map_generator
            .iter()
            .map(|a| (Generated::ConfigMap, a));
        let all = all.chain(k.secret_generator.iter().map(|a| (Generated::Secret, a)));
        for (what, args) in all {
            let options =
                GeneratorOptions::merged(args.options.as_ref(), k.generator_options.as_ref());
            let pairs = self.pairs(k, dir, args)?;
            let error = |err: String| {
                RenderError::transform(&k.path, format!("generator {}: {err}", args.name))
            };
            let mut generated =
                generator::generate(what, args, options.as_ref(), pairs).map_err(error)?;
            if let Some(origin) = &self.origin {
                let kind = match what {
                    Generated::ConfigMap => "ConfigMapGenerator",
                    Generated::Secret => "SecretGenerator",
                };
                let by = Configured::builtin(origin, file_name(&k.path), kind);
                build_metadata::annotate_generated(&mut generated, &by);
            }
            absorb(resources, generated, args.behavior).map_err(error)?;
        }
        Ok(())
    }

    pub(super) fn pairs(
        &self,
        k: &Kustomization,
        dir: &str,
        args: &GeneratorArgs,
    ) -> Result<Pairs, RenderError> {
        let error = |err: String| {
            RenderError::transform(&k.path, format!("generator {}: {err}", args.name))
        };
        let mut pairs = Pairs::new();
        for env in &args.envs {
            let (path, bytes) = self.loader.read_file(dir, env, &k.path)?;
            let more =
                generator::env_pairs(&bytes).map_err(|err| error(format!("{path}: {err}")))?;
            pairs.extend(more);
        }
        for literal in &args.literals {
            pairs.push(generator::literal_pair(literal).map_err(error)?);
        }
        for file in &args.files {
            let (key, relative) = generator::file_source(file).map_err(error)?;
            let (_, bytes) = self.loader.read_file(dir, &relative, &k.path)?;
            pairs.push((key, bytes));
        }
        Ok(pairs)
    }

    fn transformers(
        &self,
        k: &Kustomization,
        dir: &str,
        config: &Config,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        let at = k.path.as_str();
        let failed = |err: String| RenderError::transform(at, err);
        let mut legacy_patches = Vec::new();
        for entry in &k.patches_strategic_merge {
            let (source, text) = self.strategic_merge_text(k, dir, entry)?;
            let docs = strategic_merge_docs(&source, &text)?;
            legacy_patches.push(Patch {
                source,
                body: Body::StrategicMerge(docs),
            });
        }
        let loaded = legacy_patches.iter().any(|p| match &p.body {
            Body::StrategicMerge(docs) => !docs.is_empty(),
            Body::Json(..) => true,
        });
        if !k.patches_strategic_merge.is_empty() && !loaded {
            return Err(failed(format!(
                "patchesStrategicMerge: patch appears to be empty; files=[{}]",
                k.patches_strategic_merge.join(" ")
            )));
        }
        for patch in &legacy_patches {
            patch::legacy_strategic_merge(resources, patch, at)?;
            resources.retain(|r| !r.is_empty());
        }
        let once = |set: bool| usize::from(set);
        let mark =
            |resources: &mut ResMap, kind: &str, times: usize| self.mark(k, resources, kind, times);
        mark(
            resources,
            "PatchStrategicMergeTransformer",
            once(!legacy_patches.is_empty()),
        );
        for spec in &k.patches {
            let (source, text) = self.patch_text(k, dir, &spec.path, &spec.patch)?;
            let body = patch::parse(&source, &text)?;
            patch::apply(resources, spec, Patch { source, body }, at)?;
            mark(resources, "PatchTransformer", 1);
        }
        if !k.namespace.is_empty() {
            transform::namespace(resources, &k.namespace, &config.namespace).map_err(failed)?;
            mark(resources, "NamespaceTransformer", 1);
        }
        if !k.name_prefix.is_empty() {
            transform::name_affix_with(resources, &k.name_prefix, false, &config.name_prefix)
                .map_err(failed)?;
            mark(resources, "PrefixTransformer", 1);
        }
        if !k.name_suffix.is_empty() {
            transform::name_affix_with(resources, &k.name_suffix, true, &config.name_suffix)
                .map_err(failed)?;
            mark(resources, "SuffixTransformer", 1);
        }
        for label in &k.labels {
            let specs = transform::label_specs(label, config).map_err(failed)?;
            transform::set_pairs(resources, &label.pairs, &specs).map_err(failed)?;
            mark(resources, "LabelTransformer", 1);
        }
        transform::set_pairs(resources, &k.common_labels, &config.common_labels).map_err(failed)?;
        // kustomize configures a commonLabels transformer whenever there are any labels.
        let labelled = !k.labels.is_empty() || !k.common_labels.is_empty();
        mark(resources, "LabelTransformer", once(labelled));
        transform::set_pairs(resources, &k.common_annotations, &config.common_annotations)
            .map_err(failed)?;
        let annotated = !k.common_annotations.is_empty();
        mark(resources, "AnnotationsTransformer", once(annotated));
        self.legacy_json_patches(k, dir, resources)?;
        mark(
            resources,
            "PatchJson6902Transformer",
            k.patches_json6902.len(),
        );
        transform::replicas_with(resources, &k.replicas, &config.replicas).map_err(failed)?;
        mark(resources, "ReplicaCountTransformer", k.replicas.len());
        for image in &k.images {
            images::apply_image_with(resources, image, &config.images).map_err(failed)?;
        }
        mark(resources, "ImageTagTransformer", k.images.len());
        if !k.replacements.is_empty() {
            let replacements = self.replacements(k, dir, &k.replacements)?;
            replacement::apply(resources, &replacements).map_err(failed)?;
            mark(resources, "ReplacementTransformer", 1);
        }
        resources.retain(|r| !r.is_empty());
        Ok(())
    }

    /// The replacements `entries` of `k` lists, those in files read, each with a name for
    /// messages.
    pub(super) fn replacements(
        &self,
        k: &Kustomization,
        dir: &str,
        entries: &[ReplacementEntry],
    ) -> Result<Vec<(String, Replacement)>, RenderError> {
        let mut out = Vec::new();
        for (i, entry) in entries.iter().enumerate() {
            match entry {
                ReplacementEntry::Inline(r) => out.push((format!("replacements[{i}]"), r.clone())),
                ReplacementEntry::Path(path) => {
                    let (file, text) = self.loader.read_text(dir, path, &k.path)?;
                    let list = kustomization::parse_replacement_file(&file, &text)?;
                    let many = list.len() > 1;
                    for (j, r) in list.into_iter().enumerate() {
                        let label = if many {
                            format!("replacements[{i}] ({file}, entry {j})")
                        } else {
                            format!("replacements[{i}] ({file})")
                        };
                        out.push((label, r));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Records `times` runs of the built-in transformer `kind` configured by `k`, when
    /// `buildMetadata` tracks transformations.
    fn mark(&self, k: &Kustomization, resources: &mut ResMap, kind: &str, times: usize) {
        let Some(origin) = &self.origin else {
            return;
        };
        let by = Configured::builtin(origin, file_name(&k.path), kind);
        for _ in 0..times {
            build_metadata::record_transformation(resources, &by);
        }
    }

    fn legacy_json_patches(
        &self,
        k: &Kustomization,
        dir: &str,
        resources: &mut ResMap,
    ) -> Result<(), RenderError> {
        for spec in &k.patches_json6902 {
            let target = spec.target.as_ref().filter(|t| !t.name.is_empty());
            let Some(target) = target else {
                return Err(RenderError::transform(
                    &k.path,
                    "patchesJson6902: must specify the target name",
                ));
            };
            let (source, text) = self.patch_text(k, dir, &spec.path, &spec.patch)?;
            let (ops, names) =
                patch::json_ops(&text).map_err(|err| RenderError::InvalidResource {
                    path: source.clone(),
                    message: err,
                })?;
            let body = Body::Json(ops, names);
            patch::legacy_json(resources, target, &Patch { source, body }, &k.path)?;
        }
        Ok(())
    }

    /// The text of a patch given inline or by path, and a name for it in messages.
    pub(super) fn patch_text(
        &self,
        k: &Kustomization,
        dir: &str,
        path: &str,
        inline: &str,
    ) -> Result<(String, String), RenderError> {
        let inline = inline.trim();
        match (path.is_empty(), inline.is_empty()) {
            (false, false) => Err(RenderError::transform(
                &k.path,
                "patch and path can't be set at the same time",
            )),
            (true, true) => Err(RenderError::transform(
                &k.path,
                "must specify one of patch and path",
            )),
            (true, false) => Ok((format!("inline patch in {}", k.path), inline.to_string())),
            (false, true) => self.loader.read_text(dir, path, &k.path),
        }
    }

    /// A `patchesStrategicMerge` entry is inline YAML when it reads as objects, else a path.
    pub(super) fn strategic_merge_text(
        &self,
        k: &Kustomization,
        dir: &str,
        entry: &str,
    ) -> Result<(String, String), RenderError> {
        let inline = parse_documents(entry, Schema::Core)
            .ok()
            .is_some_and(|docs| docs.iter().any(|d| d.value.get("kind").is_some()));
        if inline {
            return Ok((format!("inline patch in {}", k.path), entry.to_string()));
        }
        self.loader.read_text(dir, entry, &k.path)
    }
}

pub(super) fn strategic_merge_docs(
    source: &str,
    text: &str,
) -> Result<Vec<patch::PatchDoc>, RenderError> {
    patch::strategic_merge(source, text).map_err(|message| RenderError::InvalidResource {
        path: source.to_string(),
        message: format!("not a strategic-merge patch: {message}"),
    })
}

/// The objects of a manifest file; `kind: …List` documents are unpacked.
pub fn read_resources(path: &str, text: &str) -> Result<ResMap, RenderError> {
    let docs = parse_documents(text, Schema::Core).map_err(|err| RenderError::Yaml {
        path: path.to_string(),
        position: Position {
            line: err.line,
            column: err.column,
        },
        message: err.message,
    })?;
    let mut out = ResMap::new();
    for doc in docs {
        let line = doc.line;
        let invalid = |message: String| RenderError::InvalidResource {
            path: path.to_string(),
            message: format!("document at line {line}: {message}"),
        };
        let mut queue = vec![doc.value];
        while let Some(value) = queue.pop() {
            match value {
                Value::Null => {}
                Value::Object(ref map) if map.is_empty() => {}
                Value::Array(ref items) if items.is_empty() => {}
                Value::Object(_) => {
                    let resource = Resource::new(value);
                    validate(&resource).map_err(invalid)?;
                    match unpack_list(resource).map_err(invalid)? {
                        Ok(items) => queue.extend(items.into_iter().rev()),
                        Err(resource) => out.push(resource),
                    }
                }
                _ => return Err(invalid("not a mapping".to_string())),
            }
        }
    }
    Ok(out)
}

fn validate(resource: &Resource) -> Result<(), String> {
    if resource.kind().is_empty() {
        return Err("missing kind".to_string());
    }
    if resource.name().is_empty() && !resource.kind().ends_with("List") {
        return Err(format!(
            "missing metadata.name in {} object",
            resource.kind()
        ));
    }
    Ok(())
}

/// The items of a `…List` object (`Ok`), or the object itself when it is not one (`Err`).
fn unpack_list(resource: Resource) -> Result<Result<Vec<Value>, Resource>, String> {
    if !resource.kind().ends_with("List") {
        return Ok(Err(resource));
    }
    match resource.value.get("items") {
        None => Ok(Err(resource)),
        Some(Value::Null) => Ok(Ok(Vec::new())),
        Some(Value::Array(items)) => Ok(Ok(items.clone())),
        Some(_) => Err(format!("expected array in {}/items", resource.kind())),
    }
}

/// The name of the kustomization file at `path`.
fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// The steps kustomize runs once, on the outermost kustomization.
fn finish(
    k: &Kustomization,
    acc: Accumulated,
    metadata: build_metadata::Options,
) -> Result<Vec<Resource>, RenderError> {
    let failed = |err: String| RenderError::transform(&k.path, err);
    let mut all = acc.resources;
    let resources = &mut all;
    plugin::add_hash_suffixes(resources);
    namereference::fix(resources, &acc.config.name_references).map_err(failed)?;
    vars::resolve(resources, &acc.vars, &acc.config.var_reference)
        .map_err(|err| failed(format!("vars: {err}")))?;
    resources.retain(|r| !r.is_local_config());
    order::sort(resources, k.sort_options.as_ref());
    if metadata.tracks() {
        build_metadata::finish(resources, metadata)
            .map_err(|err| RenderError::transform(&k.path, err))?;
    }
    for resource in resources.iter_mut() {
        if metadata.tracks() {
            resource.finish_tracked();
        } else {
            resource.finish();
        }
    }
    assign_file_names(resources);
    Ok(all)
}
