//! The pipeline and policy files (docs/pipeline.md, docs/policies.md): their serde types, and their validation into
//! the domain types everything else uses — the pipeline as a DAG, policies, groups.

mod access;
mod duration;
mod error;
mod gate;
mod graph;
mod notifications;
mod policy;
mod raw;
mod stage;
pub(crate) mod yaml;

use std::collections::BTreeMap;

use serde_saphyr::Spanned;

pub use access::{
    ACCESS_FILE, AccessPolicy, IdentityTemplate, NamePattern, OidcIssuer, Role, RoleBinding,
    Subject,
};
pub use duration::Span;
pub use error::{FileLocation, PipelineError};
pub use gate::{
    CompareOp, Condition, GATE_TYPES, GateKind, GateSpec, HeaderValue, HttpGate, PrometheusGate,
};
pub use graph::GraphFormat;
pub use notifications::{
    EventKind, NOTIFICATIONS_FILE, Notifications, ValueFrom, Webhook, WebhookFormat,
};
pub use policy::{
    ApprovalRule, CronSpec, DenyWindow, Groups, Policy, Principal, Schedule, Windows,
};
pub use stage::{
    ClusterRef, OutputSpec, PIPELINE_FILE, Pipeline, Requires, Stage, SyncMode, is_stage_name,
};

use crate::overlay::{EntryKind, FileSource};

/// The directory policies live in.
pub const POLICY_DIR: &str = "policies";
/// The approver groups file.
pub const GROUPS_FILE: &str = "policies/groups.yaml";
/// The API version of every ferry file.
pub const API_VERSION: &str = "ferry/v1";

/// Everything a config repository declares: the pipeline, its policies, groups and access
/// rules.
#[derive(Debug, Clone)]
pub struct Config {
    pub pipeline: Pipeline,
    pub policies: BTreeMap<String, Policy>,
    pub groups: Groups,
    /// `policies/access.yaml`, or the default (no roles) when the repository has none.
    pub access: AccessPolicy,
    /// `policies/notifications.yaml`: where events are sent.
    pub notifications: Notifications,
}

impl Config {
    /// Loads and validates `environments/pipeline.yaml`, `policies/*.yaml`,
    /// `policies/groups.yaml`, `policies/access.yaml` and `policies/notifications.yaml` from
    /// the root of `source`.
    pub fn load(source: &dyn FileSource) -> Result<Config, PipelineError> {
        if source
            .entry(PIPELINE_FILE)
            .map_err(|e| read_error(PIPELINE_FILE, e))?
            .is_none()
        {
            return Err(PipelineError::Missing {
                path: PIPELINE_FILE.to_string(),
                hint: "is this a ferry config repository? (see docs/pipeline.md)",
            });
        }
        let pipeline = stage::validate(yaml::load(source, PIPELINE_FILE)?)?;
        let groups = load_groups(source)?;
        let policies = load_policies(source, &groups)?;
        check_stages(source, &pipeline, &policies)?;
        let access = load_access(source, &pipeline, &groups)?;
        let notifications = notifications::load(source, &pipeline)?;
        Ok(Config {
            pipeline,
            policies,
            groups,
            access,
            notifications,
        })
    }

    /// The policy of `stage`, if it names one.
    pub fn policy_of(&self, stage: &Stage) -> Option<&Policy> {
        stage
            .policy
            .as_ref()
            .and_then(|name| self.policies.get(name))
    }
}

fn read_error(path: &str, source: std::io::Error) -> PipelineError {
    PipelineError::Read {
        path: path.to_string(),
        source,
    }
}

fn load_groups(source: &dyn FileSource) -> Result<Groups, PipelineError> {
    match source
        .entry(GROUPS_FILE)
        .map_err(|e| read_error(GROUPS_FILE, e))?
    {
        Some(EntryKind::File) => {
            policy::validate_groups(GROUPS_FILE, yaml::load(source, GROUPS_FILE)?)
        }
        _ => Ok(Groups::default()),
    }
}

fn load_access(
    source: &dyn FileSource,
    pipeline: &Pipeline,
    groups: &Groups,
) -> Result<AccessPolicy, PipelineError> {
    match source
        .entry(ACCESS_FILE)
        .map_err(|e| read_error(ACCESS_FILE, e))?
    {
        Some(EntryKind::File) => access::validate(
            ACCESS_FILE,
            yaml::load(source, ACCESS_FILE)?,
            pipeline,
            groups,
        ),
        _ => Ok(AccessPolicy::default()),
    }
}

fn load_policies(
    source: &dyn FileSource,
    groups: &Groups,
) -> Result<BTreeMap<String, Policy>, PipelineError> {
    let mut policies = BTreeMap::new();
    if source
        .entry(POLICY_DIR)
        .map_err(|e| read_error(POLICY_DIR, e))?
        != Some(EntryKind::Dir)
    {
        return Ok(policies);
    }
    for name in source
        .read_dir(POLICY_DIR)
        .map_err(|e| read_error(POLICY_DIR, e))?
    {
        let path = format!("{POLICY_DIR}/{name}");
        let is_yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !is_yaml || path == GROUPS_FILE || path == ACCESS_FILE || path == NOTIFICATIONS_FILE {
            continue;
        }
        // A link leading outside the repository is an error here, not a file to skip.
        if source.entry(&path).map_err(|e| read_error(&path, e))? != Some(EntryKind::File) {
            continue;
        }
        let policy = policy::validate(&path, yaml::load(source, &path)?, groups)?;
        policies.insert(policy.name.clone(), policy);
    }
    Ok(policies)
}

/// Every stage's overlay exists and is a kustomization; every named policy exists.
fn check_stages(
    source: &dyn FileSource,
    pipeline: &Pipeline,
    policies: &BTreeMap<String, Policy>,
) -> Result<(), PipelineError> {
    for (i, stage) in pipeline.stages().iter().enumerate() {
        let location = stage.declared_at.clone();
        let entry = source
            .entry(&stage.overlay)
            .map_err(|e| read_error(&stage.overlay, e))?;
        if entry != Some(EntryKind::Dir) {
            return Err(PipelineError::invalid(
                location,
                format!("spec.stages[{i}].overlay"),
                format!(
                    "overlay directory `{}` of stage `{}` does not exist",
                    stage.overlay, stage.name
                ),
            ));
        }
        let mut has_kustomization = false;
        for name in ["kustomization.yaml", "kustomization.yml", "Kustomization"] {
            let path = format!("{}/{name}", stage.overlay);
            has_kustomization |=
                source.entry(&path).map_err(|e| read_error(&path, e))? == Some(EntryKind::File);
        }
        if !has_kustomization {
            return Err(PipelineError::invalid(
                location,
                format!("spec.stages[{i}].overlay"),
                format!("`{}` has no kustomization.yaml", stage.overlay),
            ));
        }
        if let Some(name) = &stage.policy
            && !policies.contains_key(name)
        {
            let known: Vec<&str> = policies.keys().map(String::as_str).collect();
            let known = if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            };
            return Err(PipelineError::invalid(
                location,
                format!("spec.stages[{i}].policy"),
                format!("unknown policy `{name}` (no {POLICY_DIR}/{name}.yaml); known: {known}"),
            ));
        }
    }
    Ok(())
}

/// Checks `apiVersion` and `kind` of a ferry file.
pub(crate) fn check_header(
    path: &str,
    api_version: &Spanned<String>,
    kind: &Spanned<String>,
    expected: &str,
) -> Result<(), PipelineError> {
    if api_version.value != API_VERSION {
        return Err(PipelineError::invalid(
            yaml::at(path, api_version),
            "apiVersion",
            format!(
                "`{}` is not supported, expected `{API_VERSION}`",
                api_version.value
            ),
        ));
    }
    if kind.value != expected {
        return Err(PipelineError::invalid(
            yaml::at(path, kind),
            "kind",
            format!("`{}` found, expected `{expected}`", kind.value),
        ));
    }
    Ok(())
}

/// Normalizes a repository-relative path: `/`-separated, no `.`, no leading or trailing `/`.
/// `None` for absolute paths and paths that leave the repository.
/// The overlay directories the pipeline file lists, in order, read quickly: with the
/// renderer's fast YAML reader and none of [`Config::load`]'s checks. A command may start
/// work on them while the configuration loads, and must compare them with the stages
/// [`Config::load`] returns before it trusts that work. `None` when the file is missing, is
/// outside the fast reader's subset, or is not shaped as a pipeline.
pub fn listed_overlays(source: &dyn FileSource) -> Option<Vec<String>> {
    let bytes = source.read(PIPELINE_FILE).ok()?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let overlays = crate::overlay::yaml_field_of_each(text, &["spec", "stages"], "overlay")?;
    overlays.iter().map(|o| normalize_repo_path(o)).collect()
}

pub fn normalize_repo_path(path: &str) -> Option<String> {
    if path.starts_with('/') || path.contains('\\') {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::io;

    use super::*;

    /// An in-memory file tree.
    struct Files(BTreeMap<String, String>);

    impl FileSource for Files {
        fn entry(&self, path: &str) -> io::Result<Option<EntryKind>> {
            if self.0.contains_key(path) {
                return Ok(Some(EntryKind::File));
            }
            let dir = format!("{path}/");
            Ok(self
                .0
                .keys()
                .any(|k| k.starts_with(&dir))
                .then_some(EntryKind::Dir))
        }
        fn read(&self, path: &str) -> io::Result<Vec<u8>> {
            self.0
                .get(path)
                .map(|s| s.clone().into_bytes())
                .ok_or_else(|| io::ErrorKind::NotFound.into())
        }
        fn read_dir(&self, path: &str) -> io::Result<Vec<String>> {
            let dir = format!("{path}/");
            let mut names: Vec<String> = self
                .0
                .keys()
                .filter_map(|k| k.strip_prefix(&dir))
                .map(|r| r.split('/').next().unwrap_or(r).to_string())
                .collect();
            names.dedup();
            Ok(names)
        }
    }

    fn pipeline(stages: &str) -> Files {
        let mut files = BTreeMap::new();
        files.insert(PIPELINE_FILE.to_string(), format!("apiVersion: ferry/v1\nkind: Pipeline\nmetadata: {{name: p}}\nspec:\n  images: [acme/web]\n  stages:\n{stages}"));
        for name in ["a", "b", "c", "d"] {
            files.insert(
                format!("env/{name}/kustomization.yaml"),
                "resources: []\n".to_string(),
            );
        }
        Files(files)
    }

    fn load(stages: &str) -> Result<Config, PipelineError> {
        Config::load(&pipeline(stages))
    }

    #[test]
    fn a_diamond_is_ordered_upstream_first() {
        let config = load("  - {name: d, overlay: env/d, upstream: [b, c]}\n  - {name: b, overlay: env/b, upstream: [a]}\n  - {name: c, overlay: env/c, upstream: [a]}\n  - {name: a, overlay: env/a}\n").expect("valid");
        let order: Vec<&str> = config
            .pipeline
            .topological()
            .map(|s| s.name.as_str())
            .collect();
        let pos = |n: &str| order.iter().position(|s| *s == n).expect("present");
        assert!(
            pos("a") < pos("b")
                && pos("a") < pos("c")
                && pos("b") < pos("d")
                && pos("c") < pos("d"),
            "{order:?}"
        );
        let down: Vec<&str> = config
            .pipeline
            .downstream("a")
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(down, ["b", "c"]);
        assert_eq!(
            config.pipeline.stage("d").expect("d").requires,
            Requires::All
        );
        assert_eq!(config.pipeline.output.branch_for("d"), "env/d");
    }

    #[test]
    fn a_self_loop_is_a_cycle() {
        let err = load("  - {name: a, overlay: env/a, upstream: [a]}\n").expect_err("cycle");
        assert!(
            matches!(&err, PipelineError::Cycle { stages, .. } if stages == &["a", "a"]),
            "{err}"
        );
    }

    #[test]
    fn the_cycle_listed_is_a_real_cycle() {
        let err = load("  - {name: a, overlay: env/a, upstream: [c]}\n  - {name: b, overlay: env/b, upstream: [a]}\n  - {name: c, overlay: env/c, upstream: [b]}\n  - {name: d, overlay: env/d, upstream: [a]}\n").expect_err("cycle");
        assert_eq!(
            err.to_string(),
            "environments/pipeline.yaml: the stages form a cycle: a → b → c → a"
        );
    }

    #[test]
    fn stage_names_and_overlay_paths_are_checked() {
        let err = load("  - {name: Prod, overlay: env/a}\n").expect_err("bad name");
        assert!(
            err.to_string().contains("`Prod` is not a valid stage name"),
            "{err}"
        );
        let err = load("  - {name: a, overlay: ../outside}\n").expect_err("outside");
        assert!(err.to_string().contains("inside the repository"), "{err}");
        let err = load("  - {name: a, overlay: env/./a/../b/../a/}\n").expect("normalized");
        assert_eq!(err.pipeline.stage("a").expect("a").overlay, "env/a");
    }

    #[test]
    fn images_with_tags_are_rejected() {
        let mut files = pipeline("  - {name: a, overlay: env/a}\n");
        let text = files.0[PIPELINE_FILE].replace("[acme/web]", "[acme/web:1.0]");
        files.0.insert(PIPELINE_FILE.to_string(), text);
        let err = Config::load(&files).expect_err("tagged image");
        assert!(
            err.to_string().contains("spec.images[0]") && err.to_string().contains("without tag"),
            "{err}"
        );
    }

    #[test]
    fn principals_parse() {
        assert_eq!(
            Principal::parse("group:sre"),
            Some(Principal::Group("sre".into()))
        );
        assert_eq!(
            Principal::parse("alice"),
            Some(Principal::User("alice".into()))
        );
        assert_eq!(
            Principal::parse("user:bob"),
            Some(Principal::User("bob".into()))
        );
        assert_eq!(Principal::parse("team:x"), None);
        assert_eq!(Principal::parse("group:"), None);
    }

    #[test]
    fn the_overlays_listed_are_those_the_loaded_stages_have() {
        let stages = "  - {name: a, overlay: env/a}\n  - name: b\n    overlay: ./env/x/../b/\n    upstream: [a]\n";
        let files = pipeline(stages);
        let listed = listed_overlays(&files).expect("read quickly");
        let config = Config::load(&files).expect("valid");
        let loaded: Vec<&str> = config
            .pipeline
            .stages()
            .iter()
            .map(|s| s.overlay.as_str())
            .collect();
        assert_eq!(listed, loaded);
        assert_eq!(listed, ["env/a", "env/b"]);
        // The example repository's pipeline is read quickly too.
        let example = crate::overlay::DirSource::new(env!("CARGO_MANIFEST_DIR"));
        let listed = listed_overlays(&example).expect("the example is read quickly");
        assert_eq!(
            listed,
            ["environments/dev", "environments/qa", "environments/prod"]
        );
        // What the fast reader leaves to the full parser, or a stage without an overlay,
        // gives no list.
        let aliased = "  - &a {name: a, overlay: env/a}\n";
        assert_eq!(listed_overlays(&pipeline(aliased)), None);
        assert_eq!(listed_overlays(&pipeline("  - {name: a}\n")), None);
    }

    #[test]
    fn normalize_keeps_paths_inside() {
        assert_eq!(normalize_repo_path("a/./b//c/"), Some("a/b/c".into()));
        assert_eq!(normalize_repo_path("a/../b"), Some("b".into()));
        assert_eq!(normalize_repo_path("../a"), None);
        assert_eq!(normalize_repo_path("/etc"), None);
        assert_eq!(normalize_repo_path("."), None);
    }

    fn with_notifications(text: &str) -> Result<Config, PipelineError> {
        let mut files = pipeline(
            "  - {name: a, overlay: env/a}\n  - {name: b, overlay: env/b, upstream: [a]}\n",
        );
        let header = "apiVersion: ferry/v1\nkind: Notifications\nmetadata: {name: notifications}\nspec:\n  webhooks:\n";
        files
            .0
            .insert(NOTIFICATIONS_FILE.to_string(), format!("{header}{text}"));
        Config::load(&files)
    }

    #[test]
    fn notifications_name_their_webhooks_filters_and_value_sources() {
        let config = with_notifications(
            "  - {name: ops, format: json, urlFrom: {env: OPS_URL}, secretFrom: {file: /run/ops}, events: [promotion.blocked], stages: [b]}\n  - {name: chat, format: slack, urlFrom: {env: SLACK_URL}}\n",
        )
        .expect("valid");
        let ops = config.notifications.webhook("ops").expect("ops");
        assert_eq!(ops.url_from, ValueFrom::Env("OPS_URL".into()));
        assert_eq!(ops.secret_from, Some(ValueFrom::File("/run/ops".into())));
        assert!(ops.wants(EventKind::PromotionBlocked, Some("b")));
        assert!(!ops.wants(EventKind::PromotionBlocked, Some("a")));
        assert!(!ops.wants(EventKind::PromotionFailed, Some("b")));
        let chat = config.notifications.webhook("chat").expect("chat");
        assert!(chat.wants(EventKind::ReleaseCreated, None));
        assert_eq!(chat.format, WebhookFormat::Slack);
    }

    #[test]
    fn bad_notifications_name_file_line_column_and_field() {
        let cases = [
            (
                "  - {name: ops, format: json, urlFrom: {env: U}, secretFrom: {env: S}, events: [promotion.started]}\n",
                "policies/notifications.yaml:6:81: spec.webhooks[0].events[0]: unknown event `promotion.started`",
            ),
            (
                "  - {name: ops, format: slack, urlFrom: {env: U}, stages: [prod]}\n",
                "policies/notifications.yaml:6:60: spec.webhooks[0].stages[0]: unknown stage `prod`; the pipeline has: a, b",
            ),
            (
                "  - {name: ops, format: json, urlFrom: {env: U}}\n",
                "policies/notifications.yaml:6:25: spec.webhooks[0].secretFrom: a json webhook needs secretFrom",
            ),
            (
                "  - {name: ops, format: json, urlFrom: {url: U}, secretFrom: {env: S}}\n",
                "policies/notifications.yaml:6:",
            ),
            (
                "  - {name: ops, format: xml, urlFrom: {env: U}}\n",
                "policies/notifications.yaml:6:25: spec.webhooks[0].format: unknown format `xml`",
            ),
        ];
        for (text, expected) in cases {
            let err = with_notifications(text).expect_err(text).to_string();
            assert!(err.starts_with(expected), "{err}");
        }
    }
}
