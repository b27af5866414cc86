//! The `ferry` binary: parse the command line, run it, map the outcome to an exit code.
//!
//! The command line lives here, not in the library: the library's public surface is the
//! domain (pipelines, policies, promotions, the state store, the service), and `cli` is one
//! front-end over it. The library's modules are re-exported at this crate's root so that
//! `crate::pipeline` reads the same inside `cli` as it would inside the library.

pub use ferry::{
    access, cluster, gates, gitstore, notify, overlay, pipeline, policy, promotion, server, state,
    words,
};

mod alloc;
mod cli;

/// mimalloc, or the C library's allocator for `ferry build` (see [`alloc`]).
#[global_allocator]
static ALLOCATOR: alloc::Allocator = alloc::Allocator;

fn main() -> std::process::ExitCode {
    cli::main()
}
