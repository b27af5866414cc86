//! The Kubernetes client: connecting to a stage's cluster from a kubeconfig, reading objects
//! for the health gates and server-side applying rendered manifests (`sync: apply`).
//!
//! This is the only module that uses `kube`; the rest of ferry sees objects as
//! `serde_json::Value`s, exactly as the API server returns them.

mod apply;
mod object;

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};
use serde_json::Value;

use crate::pipeline::ClusterRef;

pub use apply::{ApplyAction, ApplyResult, apply};
pub use object::ObjectRef;

/// How long to wait for a TCP connection to the API server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for the API server to answer one request.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A failure to reach the cluster or a request the API server refused.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error(
        "no kubeconfig: name one in the stage's cluster block, set KUBECONFIG or create ~/.kube/config"
    )]
    NoKubeconfig,
    #[error("failed to load kubeconfig {}{}", path.display(), context.as_ref().map(|c| format!(" (context {c})")).unwrap_or_default())]
    Kubeconfig {
        path: PathBuf,
        context: Option<String>,
        #[source]
        source: KubeconfigError,
    },
    /// A kubeconfig named in the repository breaks the load rule.
    #[error("kubeconfig {path} named in the stage's cluster block: {reason}")]
    KubeconfigPath { path: String, reason: String },
    #[error("failed to create a client for {server}")]
    Client {
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to {action} at {server}")]
    Request {
        action: String,
        server: String,
        #[source]
        source: kube::Error,
    },
    #[error("failed to {action}: the API server answered {code} {reason}: {message}")]
    Api {
        action: String,
        code: u16,
        reason: String,
        message: String,
    },
    #[error(
        "the cluster does not serve {api_version} {kind}{}",
        hint_for(api_version)
    )]
    NotServed { api_version: String, kind: String },
    #[error("resource #{index} is not a Kubernetes object: {problem}")]
    InvalidObject { index: usize, problem: String },
    #[error("failed to decode the API server's answer to {action}")]
    Decode {
        action: String,
        #[source]
        source: serde_json::Error,
    },
}

/// A hint naming the operator that serves a well-known API group.
fn hint_for(api_version: &str) -> &'static str {
    match api_version.split('/').next() {
        Some("argoproj.io") => " (is Argo CD installed?)",
        Some(group) if group.ends_with(".toolkit.fluxcd.io") => " (is Flux installed?)",
        _ => "",
    }
}

/// A kube client for a stage's cluster.
///
/// The kubeconfig is the cluster block's `kubeconfig` when set, else `kubeconfig` (the default
/// one, which the caller finds from `KUBECONFIG` or `~/.kube/config`). The context is the
/// cluster block's `context`, else the kubeconfig's current context; the block's `namespace`
/// replaces the context's default namespace. Relative paths are taken as they are: resolve
/// them first with [`resolve_paths`].
pub async fn client_for(
    cluster: Option<&ClusterRef>,
    kubeconfig: Option<&Path>,
) -> Result<kube::Client, ClusterError> {
    let config = config_for(cluster, kubeconfig).await?;
    let server = config.cluster_url.to_string();
    kube::Client::try_from(config).map_err(|source| ClusterError::Client { server, source })
}

/// `cluster` with a relative `kubeconfig` path made relative to `base` (the repository root),
/// under the rule for every file ferry reads from a repository: once symbolic links are
/// resolved it must still be inside `base`, and it must be a regular file (a FIFO would
/// block). An absolute path is the operator's own and is kept as it is.
pub fn resolve_paths(cluster: &ClusterRef, base: &Path) -> Result<ClusterRef, ClusterError> {
    let kubeconfig = match cluster.kubeconfig.as_deref() {
        Some(path) if Path::new(path).is_relative() => Some(inside(base, path)?),
        Some(path) => Some(path.to_string()),
        None => None,
    };
    Ok(ClusterRef {
        kubeconfig,
        ..cluster.clone()
    })
}

/// The real path of the relative `path` below `base`, refused when it leads outside or is
/// not a regular file; a missing file is left for the kubeconfig loader to report.
fn inside(base: &Path, path: &str) -> Result<String, ClusterError> {
    let joined = base.join(path);
    let refused = |reason: &str| ClusterError::KubeconfigPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let real = match std::fs::canonicalize(&joined) {
        Ok(real) => real,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Ok(joined.to_string_lossy().into_owned());
        }
        Err(_) => return Err(refused("cannot be resolved")),
    };
    let real_base = std::fs::canonicalize(base).map_err(|_| refused("cannot be resolved"))?;
    if !real.starts_with(&real_base) {
        return Err(refused("a symbolic link leads outside the repository"));
    }
    match std::fs::metadata(&real) {
        Ok(meta) if meta.is_file() => Ok(real.to_string_lossy().into_owned()),
        Ok(_) => Err(refused("is not a regular file")),
        Err(_) => Err(refused("cannot be read")),
    }
}

async fn config_for(
    cluster: Option<&ClusterRef>,
    kubeconfig: Option<&Path>,
) -> Result<kube::Config, ClusterError> {
    let path = cluster
        .and_then(|c| c.kubeconfig.as_deref())
        .map(PathBuf::from)
        .or_else(|| kubeconfig.map(Path::to_path_buf))
        .ok_or(ClusterError::NoKubeconfig)?;
    let context = cluster.and_then(|c| c.context.clone());
    let error = |source| ClusterError::Kubeconfig {
        path: path.clone(),
        context: context.clone(),
        source,
    };
    let file = Kubeconfig::read_from(&path).map_err(error)?;
    let options = KubeConfigOptions {
        context: context.clone(),
        ..KubeConfigOptions::default()
    };
    let mut config = kube::Config::from_custom_kubeconfig(file, &options)
        .await
        .map_err(error)?;
    if let Some(namespace) = cluster.and_then(|c| c.namespace.clone()) {
        config.default_namespace = namespace;
    }
    config.connect_timeout = Some(CONNECT_TIMEOUT);
    config.read_timeout = Some(READ_TIMEOUT);
    config.reset_reader_on_write = true;
    Ok(config)
}

/// A connection to one cluster, reading objects as JSON.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    server: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .finish()
    }
}

impl Cluster {
    /// Connects as [`client_for`] does. Nothing is sent to the cluster yet.
    pub async fn connect(
        cluster: Option<&ClusterRef>,
        kubeconfig: Option<&Path>,
    ) -> Result<Cluster, ClusterError> {
        let config = config_for(cluster, kubeconfig).await?;
        let server = config.cluster_url.to_string();
        let client = kube::Client::try_from(config).map_err(|source| ClusterError::Client {
            server: server.clone(),
            source,
        })?;
        Ok(Cluster { client, server })
    }

    /// The namespace of objects that do not name one.
    pub fn default_namespace(&self) -> &str {
        self.client.default_namespace()
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The object `object` names, as the API server returns it; `None` when it does not exist.
    ///
    /// The resource name is derived from the kind (`Deployment` → `deployments`), which holds
    /// for the workloads and the Argo CD and Flux kinds the gates read.
    pub async fn get(&self, object: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let resource = ApiResource::from_gvk(&object.gvk());
        let api: Api<DynamicObject> = match &object.namespace {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let action = format!("get {object}");
        match api.get(&object.name).await {
            Ok(found) => serde_json::to_value(found)
                .map(Some)
                .map_err(|source| ClusterError::Decode { action, source }),
            Err(err) => match classify(err) {
                Failure::Missing => Ok(None),
                Failure::NotServed => Err(ClusterError::NotServed {
                    api_version: object.api_version.clone(),
                    kind: object.kind.clone(),
                }),
                Failure::Other(err) => Err(self.request_error(action, err)),
            },
        }
    }

    fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The error for a failed request: the API server's refusal, or the failure to reach it.
    fn request_error(&self, action: String, err: kube::Error) -> ClusterError {
        match err {
            kube::Error::Api(status) => ClusterError::Api {
                action,
                code: status.code,
                reason: status.reason.clone(),
                message: status.message.clone(),
            },
            source => ClusterError::Request {
                action,
                server: self.server.clone(),
                source,
            },
        }
    }
}

/// What a failed GET means.
enum Failure {
    /// A 404 `Status` naming the object's kind: the object does not exist.
    Missing,
    /// A 404 that is not a `Status` (a plain "404 page not found"): the API is not served.
    NotServed,
    Other(kube::Error),
}

fn classify(err: kube::Error) -> Failure {
    match &err {
        // A real `Status` says `NotFound`; kube turns a plain-text body into a `Status`
        // with another reason.
        kube::Error::Api(status) if status.code == 404 && status.reason == "NotFound" => {
            Failure::Missing
        }
        kube::Error::Api(status) if status.code == 404 => Failure::NotServed,
        _ => Failure::Other(err),
    }
}

impl ObjectRef {
    fn gvk(&self) -> GroupVersionKind {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", &self.api_version));
        GroupVersionKind::gvk(group, version, &self.kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_kubeconfig_paths_are_resolved_against_the_base() {
        let cluster = ClusterRef {
            kubeconfig: Some("clusters/prod.yaml".into()),
            context: Some("prod".into()),
            namespace: None,
        };
        let resolved = resolve_paths(&cluster, Path::new("/repo")).expect("missing is allowed");
        assert_eq!(
            resolved.kubeconfig.as_deref(),
            Some("/repo/clusters/prod.yaml")
        );
        assert_eq!(resolved.context.as_deref(), Some("prod"));
        let absolute = ClusterRef {
            kubeconfig: Some("/etc/kube.yaml".into()),
            ..ClusterRef::default()
        };
        assert_eq!(
            resolve_paths(&absolute, Path::new("/repo"))
                .expect("absolute paths are kept")
                .kubeconfig
                .as_deref(),
            Some("/etc/kube.yaml")
        );
    }

    #[test]
    fn a_kubeconfig_linked_outside_the_repository_or_special_is_refused() {
        let outside = tempfile::tempdir().expect("temp dir");
        std::fs::write(outside.path().join("config"), "secretKeyName: x\n").expect("write");
        let repo = tempfile::tempdir().expect("temp dir");
        std::os::unix::fs::symlink(outside.path().join("config"), repo.path().join("kube.yaml"))
            .expect("symlink");
        std::fs::write(repo.path().join("inside.yaml"), "apiVersion: v1\n").expect("write");
        std::fs::create_dir(repo.path().join("dir")).expect("mkdir");
        let named = |path: &str| ClusterRef {
            kubeconfig: Some(path.into()),
            ..ClusterRef::default()
        };
        let err = resolve_paths(&named("kube.yaml"), repo.path()).expect_err("outside");
        assert_eq!(
            err.to_string(),
            "kubeconfig kube.yaml named in the stage's cluster block: a symbolic link leads outside the repository"
        );
        let err = resolve_paths(&named("dir"), repo.path()).expect_err("a directory");
        assert!(
            err.to_string()
                .ends_with("dir named in the stage's cluster block: is not a regular file"),
            "{err}"
        );
        let resolved = resolve_paths(&named("inside.yaml"), repo.path()).expect("inside");
        assert!(
            resolved
                .kubeconfig
                .expect("a path")
                .ends_with("/inside.yaml")
        );
    }

    #[test]
    fn not_served_names_the_operator() {
        let err = ClusterError::NotServed {
            api_version: "argoproj.io/v1alpha1".into(),
            kind: "Application".into(),
        };
        assert_eq!(
            err.to_string(),
            "the cluster does not serve argoproj.io/v1alpha1 Application (is Argo CD installed?)"
        );
    }
}
