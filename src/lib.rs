//! ferry: a multi-environment promotion orchestrator for GitOps.
//!
//! A pipeline is a DAG of environments ("stages") whose Kustomize-style overlays live in one
//! git repository. ferry renders each stage's overlay with a *revision* (pinned images plus a
//! config commit), commits the rendered manifests to the stage's own branch, waits for the
//! stage's health gates, records the revision as verified there and only then lets it move on,
//! when the next stage's policy allows.
//!
//! The library never prints, reads environment variables or exits: only the `ferry` binary's
//! command line (`src/cli`) and the service (`server`) know about people. See `docs/architecture.md` for the code map and invariants.

pub mod access;
pub mod cluster;
pub mod gates;
pub mod gitstore;
pub mod notify;
pub mod overlay;
pub mod pipeline;
pub mod policy;
pub mod promotion;
pub mod server;
pub mod state;
pub mod words;
