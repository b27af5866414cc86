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
//! other.
//!
//! Two of mimalloc's options are set then too. No command gives its memory back when the
//! process exits (the system takes it all at once): mimalloc's clean-up at exit, which hands
//! every page back with `madvise` one range at a time, took about a tenth of the time
//! `render --all` of 3,000 overlays spent after printing its last stage. And `ferry render`, a
//! process of well under a second, never returns freed pages to the system on the way
//! (mimalloc's purge) but reuses them: the service, which runs for days, does return them. This module is the crate's only `unsafe` code: it forwards the allocator's calls and
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
    let command = command();
    let choice = if command == Command::Build {
        SYSTEM
    } else {
        // SAFETY: setting options takes no memory and needs no initialized allocator.
        unsafe {
            mi_option_set(MI_OPTION_DESTROY_ON_EXIT, NO_CLEAN_UP_AT_EXIT);
            if command == Command::Render {
                mi_option_set(MI_OPTION_PURGE_DELAY, NEVER);
            }
        }
        MIMALLOC
    };
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

unsafe extern "C" {
    /// mimalloc's `mi_option_set` (in `mimalloc.h`), which the `mimalloc` crates do not bind.
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
}

/// `mi_option_purge_delay` and `mi_option_destroy_on_exit` of the `mi_option_t` enumeration of
/// the mimalloc (v3) that `libmimalloc-sys` builds (a test checks the numbering).
const MI_OPTION_PURGE_DELAY: libc::c_int = 15;
const MI_OPTION_DESTROY_ON_EXIT: libc::c_int = 22;
/// A purge delay of "never".
const NEVER: libc::c_long = -1;
/// A `destroy_on_exit` above 1 skips mimalloc's whole clean-up at exit.
const NO_CLEAN_UP_AT_EXIT: libc::c_long = 2;

/// The commands the allocator is chosen for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Build,
    Render,
    Other,
}

/// The command: the first argument after the program's name, read from `/proc/self/cmdline`
/// into a buffer on the stack. Anything unexpected (no `/proc`, a short read) means none.
fn command() -> Command {
    let mut buffer = [0u8; 4096];
    // SAFETY: the path is a NUL-terminated literal; the descriptor is closed below.
    let fd = unsafe {
        libc::open(
            c"/proc/self/cmdline".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Command::Other;
    }
    // SAFETY: `buffer` is valid for writes of its length for the duration of the call.
    let read = unsafe { libc::read(fd, buffer.as_mut_ptr().cast(), buffer.len()) };
    // SAFETY: `fd` was opened above and is not used after.
    unsafe { libc::close(fd) };
    match usize::try_from(read) {
        Ok(read) => command_of(&buffer[..read]),
        Err(_) => Command::Other,
    }
}

/// The command of a command line as `/proc/self/cmdline` gives it (each argument followed by
/// a NUL): its first argument after the program's name.
fn command_of(cmdline: &[u8]) -> Command {
    let Some(program_end) = cmdline.iter().position(|&b| b == 0) else {
        return Command::Other;
    };
    let rest = &cmdline[program_end + 1..];
    if rest.starts_with(b"build\0") {
        Command::Build
    } else if rest.starts_with(b"render\0") {
        Command::Render
    } else {
        Command::Other
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
    fn the_command_is_the_first_argument() {
        let build = |cmdline: &[u8]| command_of(cmdline) == Command::Build;
        assert!(build(b"ferry\0build\0environments/app/dev\0"));
        assert!(build(b"/usr/bin/ferry\0build\0"));
        assert!(!build(b"ferry\0render\0--all\0"));
        assert!(!build(b"ferry\0builder\0"));
        assert!(!build(b"ferry\0"));
        assert!(!build(b"build\0"));
        assert!(!build(b"ferry build"));
        assert!(!build(b""));
        assert_eq!(command_of(b"ferry\0render\0--all\0"), Command::Render);
        assert_eq!(command_of(b"ferry\0rendered\0"), Command::Other);
        assert_eq!(command_of(b"ferry\0serve\0"), Command::Other);
        assert_eq!(command_of(b"ferry\0--repo\0x\0render\0"), Command::Other);
    }

    unsafe extern "C" {
        fn mi_option_get(option: libc::c_int) -> libc::c_long;
    }

    #[test]
    fn the_options_set_are_the_ones_meant() {
        // Options of this build of mimalloc with their defaults (in its `options.c`), around
        // the two set: this test process runs no `render`, so its purge delay (1,000 ms) is
        // left alone, and its clean-up at exit is off.
        // SAFETY: reading an option has no preconditions.
        let option = |option: libc::c_int| unsafe { mi_option_get(option) };
        let eager_commit_delay = MI_OPTION_PURGE_DELAY - 1;
        let os_tag = MI_OPTION_PURGE_DELAY + 3;
        let max_segment_reclaim = MI_OPTION_DESTROY_ON_EXIT - 1;
        assert_eq!(option(eager_commit_delay), 1);
        assert_eq!(option(MI_OPTION_PURGE_DELAY), 1000);
        assert_eq!(option(os_tag), 100);
        assert_eq!(option(max_segment_reclaim), 10);
        assert_eq!(option(MI_OPTION_DESTROY_ON_EXIT), NO_CLEAN_UP_AT_EXIT);
    }

    #[test]
    fn the_choice_follows_this_process_command_line_and_is_kept() {
        let build = std::env::args().nth(1).as_deref() == Some("build");
        assert_eq!(command() == Command::Build, build);
        let text = String::from("allocated and freed by the chosen allocator");
        assert_eq!(system(), build);
        assert_eq!(
            CHOICE.load(Ordering::Relaxed),
            if build { SYSTEM } else { MIMALLOC }
        );
        assert!(text.ends_with("chosen allocator"));
    }
}
