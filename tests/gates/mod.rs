//! Health gates against real parts: HTTP gates against local servers, Prometheus gates
//! against the real `prometheus` server, Kubernetes gates against a server replaying real API
//! answers (and, when `FERRY_TEST_KUBECONFIG` is set, against a real cluster).

mod apply;
mod argocd;
mod command;
mod flux;
mod http;
mod prometheus;
mod real_cluster;
mod rollout;
pub mod support;
mod validation;
