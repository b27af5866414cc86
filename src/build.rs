//! Build script: links the `ferry` binary as a position-dependent executable.
//!
//! A position-independent executable is relocated by the dynamic loader at every start: for
//! this binary that is some 77,000 pointers, spread over enough pages that writing them costs
//! more than half of a short command's run (`ferry build` of one overlay: 5.6 ms as PIE,
//! 3.9 ms without). The code is still compiled position-independent, so only the executable's
//! own load address stops being randomized; its heap, stack and shared libraries still are.
//! See docs/decisions.md.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os == "linux" && target_env == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
    println!("cargo:rerun-if-changed=src/build.rs");
}
