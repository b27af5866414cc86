//! End-to-end tests: the `ferry` binary run against real repositories in temp dirs.

mod cli;
mod gates;
mod render;
mod support;
