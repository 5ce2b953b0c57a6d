//! The extension's Rust code allocates with mimalloc, told to keep freed memory, as fathom's
//! binaries do (src/allocator.rs at the root); Python's own objects and numpy keep theirs.
//!
//! Why: a forward pass allocates activation buffers of tens of MB for every linear of every
//! layer, and glibc serves each with a fresh `mmap` that is page-faulted and zeroed anew; mimalloc
//! reuses them. Measured here (scripts/bench-python.sh's documents, all-MiniLM-L6-v2, 2 cores, CPU
//! seconds of one encode of 400 documents): glibc 41.7 and 40.8; mimalloc with its default 10 ms
//! purge delay 36.1 to 37.7; mimalloc keeping freed memory 35.0 to 36.2, for about 60 MB more
//! resident (the peak of one pass, bounded by the 8192 tokens a pass holds). A process that wants
//! the memory back between calls sets `MIMALLOC_PURGE_DELAY=10` (mimalloc's own variable), which
//! this leaves alone.
#![allow(unsafe_code)]

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (between `eager_commit_delay` = 14 and `use_numa_nodes` =
/// 16 in its option enum; libmimalloc-sys names only those two).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns purging of freed memory off unless `MIMALLOC_PURGE_DELAY` says otherwise (call once, when
/// the module is imported).
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option of the allocator; no memory is touched.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    }
}

/// The purge delay in force (for the tests: `fathom._fathom._mimalloc_purge_delay()`).
pub fn purge_delay() -> i64 {
    // SAFETY: reads a plain integer option.
    unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) }
}
