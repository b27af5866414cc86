//! The kustomize-compatible renderer: golden outputs from real kustomize, `ferry build` and
//! `ferry render` through the binary, bad inputs, and layered file sources.

mod golden;
