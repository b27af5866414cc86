//! The global allocator: mimalloc, except in `ferry build`, which uses the C library's.
//!
//! A render allocates and frees millions of small strings and maps, and mimalloc's
//! per-thread free lists make that about a quarter cheaper than the C library's allocator:
//! `render --all` of 3,000 overlays took 0.38 s with mimalloc and 0.53 s without. But
//! `ferry build DIR`, which scripts run once per overlay, is a process of a couple of
//! milliseconds that allocates under a megabyte, and there mimalloc costs more than it saves:
//! setting up its arena and a page per size class touches some 110 more fresh pages than the
//! C library's heap, a third of the process's page faults (1.9 ms against 1.4 ms a build).
//!
//! The choice is made once, at the first allocation (before `main`, while the process has one
//! thread), from the process's command line, and every later allocation, reallocation and
//! free goes to the allocator chosen then: memory never passes from one allocator to the
//! other. This module is the crate's only `unsafe` code: it forwards the allocator's calls and
//! reads `/proc/self/cmdline` with plain system calls, since nothing may allocate while the
//! allocator is being chosen.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU8, Ordering};

use mimalloc::MiMalloc;

/// The alignment every block of mimalloc's has, whatever its size: a machine word (its block
/// sizes are whole words). Allocations that need no more, nearly all of them, go straight to
/// `mi_malloc`, `mi_zalloc` and `mi_realloc`, which skip the alignment checks of the
/// `_aligned` calls the `mimalloc` crate makes for every allocation.
const MI_MAX_ALIGN: usize = std::mem::size_of::<usize>();

/// The process's allocator.
pub struct Allocator;

const UNDECIDED: u8 = 0;
const SYSTEM: u8 = 1;
const MIMALLOC: u8 = 2;

static CHOICE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// The allocator of this process, choosing it at the first allocation.
#[inline(always)]
fn choice() -> u8 {
    match CHOICE.load(Ordering::Relaxed) {
        UNDECIDED => choose(),
        choice => choice,
    }
}

/// Makes the choice, at the first allocation.
#[cold]
#[inline(never)]
fn choose() -> u8 {
    let choice = if is_build() { SYSTEM } else { MIMALLOC };
    // Only one choice is ever stored: a racing first allocation (there is none before
    // `main`, but nothing depends on that) reads the same command line.
    match CHOICE.compare_exchange(UNDECIDED, choice, Ordering::Relaxed, Ordering::Relaxed) {
        Ok(_) => choice,
        Err(stored) => stored,
    }
}

/// Whether this process uses the C library's allocator.
fn system() -> bool {
    choice() == SYSTEM
}

/// Whether the command is `ferry build …`: the first argument after the program's name, read
/// from `/proc/self/cmdline` into a buffer on the stack. Anything unexpected (no `/proc`, a
/// short read) means no.
fn is_build() -> bool {
    let mut buffer = [0u8; 4096];
    // SAFETY: the path is a NUL-terminated literal; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: `buffer` is valid for writes of its length for the duration of the call.
    let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    // SAFETY: `fd` was opened above and is not used after.
    unsafe { libc::close(fd) };
    match usize::try_from(read) {
        Ok(read) => runs_build(&buffer[..read]),
        Err(_) => false,
    }
}

/// Whether a command line as `/proc/self/cmdline` gives it (each argument followed by a NUL)
/// has `build` for its first argument after the program's name.
fn runs_build(cmdline: &[u8]) -> bool {
    match cmdline.iter().position(|&b| b == 0) {
        Some(program_end) => cmdline[program_end + 1..].starts_with(b"build\0"),
        None => false,
    }
}

// SAFETY: every call is forwarded to the allocator chosen at the first allocation, which
// never changes, so memory is always returned to (and resized by) the allocator that handed
// it out; both allocators uphold `GlobalAlloc`'s contract themselves. Each method reads the
// choice and jumps straight to that allocator; only the very first call goes the long way.
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match CHOICE.load(Ordering::Relaxed) {
            MIMALLOC => unsafe { mi_alloc(layout) },
            SYSTEM => unsafe { System.alloc(layout) },
            _ => unsafe { first_alloc(layout) },
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if system() {
            unsafe { System.alloc_zeroed(layout) }
        } else {
            if layout.align() <= MI_MAX_ALIGN {
                // SAFETY: `mi_zalloc` returns zeroed memory aligned to at least a word.
                unsafe { libmimalloc_sys::mi_zalloc(layout.size()).cast() }
            } else {
                unsafe { MiMalloc.alloc_zeroed(layout) }
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Memory was allocated, so the choice is made.
        if CHOICE.load(Ordering::Relaxed) == SYSTEM {
            unsafe { System.dealloc(ptr, layout) }
        } else {
            // SAFETY: every block mimalloc hands out, aligned or not, is freed by `mi_free`.
            unsafe { libmimalloc_sys::mi_free(ptr.cast()) }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if CHOICE.load(Ordering::Relaxed) == SYSTEM {
            unsafe { System.realloc(ptr, layout, new_size) }
        } else {
            if layout.align() <= MI_MAX_ALIGN {
                // SAFETY: `ptr` came from mimalloc and needs at most a word's alignment, which
                // every block `mi_realloc` returns has.
                unsafe { libmimalloc_sys::mi_realloc(ptr.cast(), new_size).cast() }
            } else {
                unsafe { MiMalloc.realloc(ptr, layout, new_size) }
            }
        }
    }
}

/// A mimalloc allocation: `mi_malloc` when the alignment asked for is one it always gives.
#[inline(always)]
unsafe fn mi_alloc(layout: Layout) -> *mut u8 {
    if layout.align() <= MI_MAX_ALIGN {
        // SAFETY: `mi_malloc` returns memory aligned to at least a word (or null).
        unsafe { libmimalloc_sys::mi_malloc(layout.size()).cast() }
    } else {
        unsafe { MiMalloc.alloc(layout) }
    }
}

/// The first allocation: chooses the allocator, then allocates with it.
#[cold]
#[inline(never)]
unsafe fn first_alloc(layout: Layout) -> *mut u8 {
    if choose() == SYSTEM {
        unsafe { System.alloc(layout) }
    } else {
        unsafe { mi_alloc(layout) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_build_command_line_chooses_the_c_library() {
        assert!(runs_build(b"ferry\0build\0environments/app/dev\0"));
        assert!(runs_build(b"/usr/bin/ferry\0build\0"));
        assert!(!runs_build(b"ferry\0render\0--all\0"));
        assert!(!runs_build(b"ferry\0builder\0"));
        assert!(!runs_build(b"ferry\0"));
        assert!(!runs_build(b"build\0"));
        assert!(!runs_build(b"ferry build"));
        assert!(!runs_build(b""));
    }

    #[test]
    fn the_choice_follows_this_process_command_line_and_is_kept() {
        let build = std::env::args().nth(1).as_deref() == Some("build");
        assert_eq!(is_build(), build);
        let text = String::from("allocated and freed by the chosen allocator");
        assert_eq!(system(), build);
        assert_eq!(
            CHOICE.load(Ordering::Relaxed),
            if build { SYSTEM } else { MIMALLOC }
        );
        assert!(text.ends_with("chosen allocator"));
    }
}
