//! fathom's binaries allocate with mimalloc, told to keep freed memory instead of returning it to
//! the OS.
//!
//! Why: a forward pass allocates activation buffers of tens of MB (e.g. 7,584 tokens × 1,536 × 4
//! bytes) for every linear of every layer. glibc serves those with fresh `mmap`s, so each one is
//! page-faulted and zeroed anew; that cost 20 % of the SciFact embed time
//! (scripts/bench-embed.sh: 22.8 → 28.5 docs/s). With mimalloc and no purging, buffers of the
//! same sizes are reused from the second batch on; resident memory stays at the peak of one
//! batch, which is bounded by `--max-batch-tokens`.
#![allow(unsafe_code)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (between `eager_commit_delay` = 14 and `use_numa_nodes` =
/// 16 in its option enum; libmimalloc-sys names only those two).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Asks the kernel for small pages: no 2 MB transparent huge pages for this process and the
/// children it starts (call once, first thing in `main`).
///
/// Why: a huge page is zeroed whole on its first touch, however little of it is used, and on
/// the VMs measured here first-touch zeroing is slow (~0.6 GB/s). mimalloc advises huge pages
/// for its arenas, and zeroing them was 15-20 % of a static-model ingest's CPU time and most of
/// its model load; without them the ingest's CPU fell 1.62 -> 1.44 s (`fathom ingest` of 5,183
/// SciFact files, median of 8) and MiniLM's embedding did not slow down. mimalloc's own option
/// (`MIMALLOC_ALLOW_THP=0`) is read when it starts, before `main`, and its first arena is
/// advised by then, so the process-wide switch is used instead: the kernel checks it at every
/// fault.
pub fn small_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: a prctl with integer arguments only; it changes how later page faults are served
    // and touches no memory. Failure (an old kernel) leaves huge pages on, which is harmless.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// Turns purging of freed memory off (call once, first thing in `main`).
pub fn keep_freed_memory() {
    // SAFETY: sets a plain integer option of the allocator; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
}

/// Lets freed memory go back to the OS once it has been unused for `ms` milliseconds (for a
/// long-running server: buffers freed and reused within a burst of work stay; memory of threads
/// that came and went, and of bursts long past, is returned).
pub fn purge_freed_memory_after(ms: i64) {
    // SAFETY: sets a plain integer option of the allocator; no memory is touched.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, ms) };
}

#[cfg(test)]
mod tests {
    #[cfg(target_os = "linux")]
    #[test]
    fn small_pages_turns_huge_pages_off_for_the_process() {
        super::small_pages();
        // SAFETY: a prctl query with integer arguments only.
        let disabled = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(disabled, 1, "PR_GET_THP_DISABLE after small_pages()");
    }

    #[test]
    fn option_15_is_the_purge_delay() {
        // The purge delay defaults to 1000 ms in mimalloc v3 (10 ms in v2); no option near it
        // has either default.
        // SAFETY: reads a plain integer option.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert!(
            matches!(default, 1000 | 10 | -1),
            "option 15 is {default}, not the purge delay"
        );
    }
}
