//! End-to-end tests: the `ferry` binary run against real repositories in temp dirs.

mod cli;
pub mod gates;
mod render;
mod server;
mod support;
mod ui;
