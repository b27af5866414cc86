//! The validated pipeline: stages, their upstream edges as a DAG, and the output settings.

use std::collections::{BTreeMap, HashMap};

use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};

use super::error::{FileLocation, PipelineError};
use super::raw;
use super::yaml::at;

/// The path of the pipeline file inside a config repository.
pub const PIPELINE_FILE: &str = "environments/pipeline.yaml";

/// How many upstream stages must have verified a revision before a stage may take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Requires {
    All,
    Any,
}

/// How a written revision reaches the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// A GitOps operator (Argo CD, Flux) picks the commit up.
    Gitops,
    /// ferry applies the manifests itself (server-side apply).
    Apply,
}

/// Which cluster a stage runs in.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClusterRef {
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub namespace: Option<String>,
}

/// One environment of the pipeline.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Stage {
    pub name: String,
    /// Repository-relative overlay directory, normalized (`environments/dev`).
    pub overlay: String,
    pub upstream: Vec<String>,
    pub requires: Requires,
    pub policy: Option<String>,
    pub auto: bool,
    pub sync: SyncMode,
    pub cluster: Option<ClusterRef>,
    /// Where the stage is declared, for error messages.
    #[serde(skip)]
    pub declared_at: FileLocation,
}

/// Where rendered output is written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutputSpec {
    /// Branch name template with `{stage}`.
    pub branch: String,
    /// Directory inside the branch, `""` for the whole tree; may contain `{stage}`.
    pub path: String,
    /// Remote to push to, if any.
    pub remote: Option<String>,
}

impl OutputSpec {
    /// The output branch of `stage`.
    pub fn branch_for(&self, stage: &str) -> String {
        self.branch.replace("{stage}", stage)
    }

    /// The output directory of `stage` inside its branch (`""` = the whole tree).
    pub fn path_for(&self, stage: &str) -> String {
        self.path.replace("{stage}", stage)
    }
}

/// The validated pipeline: a DAG of stages.
#[derive(Debug, Clone)]
pub struct Pipeline {
    pub name: String,
    pub images: Vec<String>,
    pub output: OutputSpec,
    stages: Vec<Stage>,
    graph: DiGraph<usize, ()>,
    order: Vec<usize>,
}

impl Pipeline {
    /// Parses and validates `text` as `environments/pipeline.yaml`, without checking that
    /// overlays and policies exist (which [`super::Config::load`] does).
    pub fn from_yaml(text: &str) -> Result<Pipeline, PipelineError> {
        validate(super::yaml::parse(PIPELINE_FILE, text.as_bytes())?)
    }

    /// The stages in file order.
    pub fn stages(&self) -> &[Stage] {
        &self.stages
    }

    /// The stage called `name`.
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The stages in an order where every stage comes after its upstream stages.
    pub fn topological(&self) -> impl Iterator<Item = &Stage> {
        self.order.iter().map(|&i| &self.stages[i])
    }

    /// The stages that name `name` as upstream.
    pub fn downstream(&self, name: &str) -> Vec<&Stage> {
        let Some(idx) = self.stages.iter().position(|s| s.name == name) else {
            return Vec::new();
        };
        let mut out: Vec<&Stage> = self
            .graph
            .neighbors(NodeIndex::new(idx))
            .map(|n| &self.stages[self.graph[n]])
            .collect();
        out.sort_by_key(|s| self.stages.iter().position(|t| t.name == s.name));
        out
    }

    /// The image names a revision may pin.
    pub fn allows_image(&self, name: &str) -> bool {
        self.images.iter().any(|image| image == name)
    }
}

/// Converts the raw pipeline document into a validated [`Pipeline`] (everything but the
/// existence of overlays and policies, which [`super::Config::load`] checks).
pub(crate) fn validate(doc: raw::Document<raw::PipelineSpec>) -> Result<Pipeline, PipelineError> {
    let path = PIPELINE_FILE;
    super::check_header(path, &doc.api_version, &doc.kind, "Pipeline")?;
    let images = validate_images(&doc.spec.images)?;
    let output = validate_output(doc.spec.output)?;
    if doc.spec.stages.is_empty() {
        return Err(PipelineError::invalid(
            FileLocation::file(path),
            "spec.stages",
            "a pipeline needs at least one stage",
        ));
    }
    let mut stages = Vec::new();
    let mut seen: HashMap<String, FileLocation> = HashMap::new();
    for (i, raw_stage) in doc.spec.stages.iter().enumerate() {
        let stage = validate_stage(i, raw_stage)?;
        if let Some(first) = seen.get(&stage.name) {
            return Err(PipelineError::invalid(
                at(path, &raw_stage.value.name),
                format!("spec.stages[{i}].name"),
                format!(
                    "duplicate stage name `{}` (first defined at {first})",
                    stage.name
                ),
            ));
        }
        seen.insert(stage.name.clone(), at(path, &raw_stage.value.name));
        stages.push(stage);
    }
    let (graph, order) = build_graph(&doc.spec.stages, &stages)?;
    Ok(Pipeline {
        name: doc.metadata.name.value,
        images,
        output,
        stages,
        graph,
        order,
    })
}

fn validate_images(images: &[serde_saphyr::Spanned<String>]) -> Result<Vec<String>, PipelineError> {
    let mut out: Vec<String> = Vec::new();
    for (i, image) in images.iter().enumerate() {
        let name = image.value.trim();
        let bad = name.is_empty()
            || name.contains(char::is_whitespace)
            || name.contains('@')
            || name
                .rsplit('/')
                .next()
                .is_some_and(|last| last.contains(':'));
        if bad {
            return Err(PipelineError::invalid(
                at(PIPELINE_FILE, image),
                format!("spec.images[{i}]"),
                format!(
                    "`{name}` is not an image name: expected a name without tag or digest, like acme/web"
                ),
            ));
        }
        if out.iter().any(|known| known == name) {
            return Err(PipelineError::invalid(
                at(PIPELINE_FILE, image),
                format!("spec.images[{i}]"),
                format!("duplicate image `{name}`"),
            ));
        }
        out.push(name.to_string());
    }
    Ok(out)
}

fn validate_output(output: Option<raw::Output>) -> Result<OutputSpec, PipelineError> {
    let output = output.unwrap_or(raw::Output {
        branch: None,
        path: None,
        remote: None,
    });
    let branch = output.branch.unwrap_or_else(|| "env/{stage}".to_string());
    let path = output
        .path
        .map(|p| p.trim_matches('/').to_string())
        .unwrap_or_default();
    let invalid = |field: &str, message: String| {
        PipelineError::invalid(FileLocation::file(PIPELINE_FILE), field, message)
    };
    if !branch.contains("{stage}") && !path.contains("{stage}") {
        return Err(invalid(
            "spec.output.branch",
            format!(
                "`{branch}` must contain `{{stage}}` (or spec.output.path must), so every stage writes its own output"
            ),
        ));
    }
    let sample = branch.replace("{stage}", "stage");
    if sample.is_empty()
        || sample.starts_with(['/', '-'])
        || sample.contains("..")
        || sample.contains(char::is_whitespace)
    {
        return Err(invalid(
            "spec.output.branch",
            format!("`{branch}` is not a valid branch name"),
        ));
    }
    if path.split('/').any(|part| part == "..") {
        return Err(invalid(
            "spec.output.path",
            format!("`{path}` must stay inside the branch"),
        ));
    }
    Ok(OutputSpec {
        branch,
        path,
        remote: output.remote,
    })
}

fn validate_stage(
    i: usize,
    raw: &serde_saphyr::Spanned<raw::Stage>,
) -> Result<Stage, PipelineError> {
    let s = &raw.value;
    let name = s.name.value.trim().to_string();
    if !is_stage_name(&name) {
        return Err(PipelineError::invalid(
            at(PIPELINE_FILE, &s.name),
            format!("spec.stages[{i}].name"),
            format!(
                "`{name}` is not a valid stage name: use lower-case letters, digits and `-` (like prod-eu)"
            ),
        ));
    }
    let overlay = super::normalize_repo_path(&s.overlay.value).ok_or_else(|| {
        PipelineError::invalid(
            at(PIPELINE_FILE, &s.overlay),
            format!("spec.stages[{i}].overlay"),
            format!(
                "`{}` must be a relative path inside the repository",
                s.overlay.value
            ),
        )
    })?;
    let requires = match s.requires {
        Some(raw::Requires::Any) => Requires::Any,
        _ => Requires::All,
    };
    let sync = match s.sync {
        Some(raw::Sync::Apply) => SyncMode::Apply,
        _ => SyncMode::Gitops,
    };
    let cluster = s.cluster.as_ref().map(|c| ClusterRef {
        kubeconfig: c.kubeconfig.clone(),
        context: c.context.clone(),
        namespace: c.namespace.clone(),
    });
    Ok(Stage {
        name,
        overlay,
        upstream: s
            .upstream
            .iter()
            .map(|u| u.value.trim().to_string())
            .collect(),
        requires,
        policy: s.policy.as_ref().map(|p| p.value.trim().to_string()),
        auto: s.auto,
        sync,
        cluster,
        declared_at: at(PIPELINE_FILE, raw),
    })
}

/// Whether `name` can be a stage name (it appears in branch names and file names).
pub fn is_stage_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn build_graph(
    raw_stages: &[serde_saphyr::Spanned<raw::Stage>],
    stages: &[Stage],
) -> Result<(DiGraph<usize, ()>, Vec<usize>), PipelineError> {
    let mut graph = DiGraph::new();
    let nodes: Vec<NodeIndex> = (0..stages.len()).map(|i| graph.add_node(i)).collect();
    let index: BTreeMap<&str, usize> = stages
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    for (i, stage) in stages.iter().enumerate() {
        for (j, up) in stage.upstream.iter().enumerate() {
            let spanned = &raw_stages[i].value.upstream[j];
            let field = format!("spec.stages[{i}].upstream[{j}]");
            let Some(&u) = index.get(up.as_str()) else {
                let known: Vec<&str> = index.keys().copied().collect();
                return Err(PipelineError::invalid(
                    at(PIPELINE_FILE, spanned),
                    field,
                    format!(
                        "unknown stage `{up}`, expected one of: {}",
                        known.join(", ")
                    ),
                ));
            };
            if stage.upstream[..j].contains(up) {
                return Err(PipelineError::invalid(
                    at(PIPELINE_FILE, spanned),
                    field,
                    format!("stage `{up}` is listed twice"),
                ));
            }
            graph.add_edge(nodes[u], nodes[i], ());
        }
    }
    if toposort(&graph, None).is_err() {
        return Err(PipelineError::Cycle {
            path: PIPELINE_FILE.to_string(),
            stages: find_cycle(&graph, stages),
        });
    }
    let order = stable_order(&graph);
    Ok((graph, order))
}

/// A topological order of an acyclic graph that keeps file order wherever the edges allow
/// (Kahn's algorithm, always taking the earliest ready stage).
fn stable_order(graph: &DiGraph<usize, ()>) -> Vec<usize> {
    let mut indegree: Vec<usize> = graph
        .node_indices()
        .map(|n| {
            graph
                .neighbors_directed(n, petgraph::Direction::Incoming)
                .count()
        })
        .collect();
    let mut ready: std::collections::BTreeSet<usize> =
        (0..indegree.len()).filter(|&i| indegree[i] == 0).collect();
    let mut order = Vec::with_capacity(indegree.len());
    while let Some(next) = ready.pop_first() {
        order.push(graph[NodeIndex::new(next)]);
        for down in graph.neighbors(NodeIndex::new(next)) {
            indegree[down.index()] -= 1;
            if indegree[down.index()] == 0 {
                ready.insert(down.index());
            }
        }
    }
    order
}

/// The stages of one cycle, in edge order, the first repeated at the end.
fn find_cycle(graph: &DiGraph<usize, ()>, stages: &[Stage]) -> Vec<String> {
    let component = tarjan_scc(graph)
        .into_iter()
        .find(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .unwrap_or_default();
    let Some(&start) = component.iter().min_by_key(|n| graph[**n]) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut current = start;
    loop {
        let next = graph
            .neighbors(current)
            .filter(|n| component.contains(n))
            .min_by_key(|n| graph[*n])
            .unwrap_or(start);
        if next == start || path.contains(&next) {
            path.push(next);
            break;
        }
        path.push(next);
        current = next;
    }
    path.into_iter()
        .map(|n| stages[graph[n]].name.clone())
        .collect()
}
