//! Keeping a collection in step with a folder (`--watch`): the folder's filesystem events, read
//! through `notify` and debounced, wake a loop that syncs the folder again with the same rules as
//! a one-off ingest (walk, ignores, size limits, confinement, whole-file commits, deletes of files
//! that are gone). A burst of saves, an editor's swap and backup files, or a `git checkout` of
//! many files makes one sync, not one per event; a sync that finds nothing changed commits
//! nothing.

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::watch;

use crate::{CancellationToken, IngestError, Result};

/// How long a folder must be quiet after a change before it is synced.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(750);

/// The filesystem events of one folder tree, as "something changed" signals, debounced.
pub struct FolderWatch {
    _watcher: notify::RecommendedWatcher,
    changes: watch::Receiver<u64>,
    quiet: Duration,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch")
            .field("changes", &*self.changes.borrow())
            .field("quiet", &self.quiet)
            .finish_non_exhaustive()
    }
}

impl FolderWatch {
    /// Starts watching `root` recursively. Reads (a sync's own included) are not changes;
    /// neither are scratch files ([`is_scratch`]) nor, unless `hidden`, hidden files and folders,
    /// which a sync would not read.
    ///
    /// Changes under `ignore` (the store, when it lives inside the folder) are not signalled
    /// either: a sync's own commits must not wake the next sync.
    pub fn new(root: &Path, quiet: Duration, hidden: bool, ignore: &[PathBuf]) -> Result<Self> {
        let (tx, changes) = watch::channel(0u64);
        // Watched by its canonical path, so that events carry canonical paths too.
        let base = root.canonicalize().map_err(|e| IngestError::Watch {
            path: root.to_path_buf(),
            error: notify::Error::io(e),
        })?;
        let ignore: Vec<PathBuf> = ignore.iter().map(|p| canonical_or_absolute(p)).collect();
        let watched = base.clone();
        let handler = move |result: notify::Result<notify::Event>| {
            let relevant = match result {
                Ok(event) => {
                    !matches!(event.kind, EventKind::Access(_))
                        && (event.paths.is_empty()
                            || event.paths.iter().any(|p| {
                                !is_scratch(&base, p, hidden)
                                    && !ignore.iter().any(|i| p.starts_with(i))
                            }))
                }
                // Events were lost (a queue overflowed): sync to be sure.
                Err(e) => {
                    tracing::warn!(error = %e, "watching: events may have been lost; syncing");
                    true
                }
            };
            if relevant {
                tx.send_modify(|n| *n += 1);
            }
        };
        let watch_error = |error: notify::Error| IngestError::Watch {
            path: root.to_path_buf(),
            error,
        };
        let mut watcher = notify::recommended_watcher(handler).map_err(watch_error)?;
        watcher
            .watch(&watched, RecursiveMode::Recursive)
            .map_err(watch_error)?;
        Ok(Self {
            _watcher: watcher,
            changes,
            quiet,
        })
    }

    /// Whether a change came that no sync has started after yet.
    fn pending(&self) -> bool {
        self.changes.has_changed().unwrap_or(false)
    }

    /// Waits until something changed and the folder has then been quiet for the watch's quiet
    /// period (a burst of saves is one change), or until `cancel` is cancelled; `false` then.
    pub async fn changed(&mut self, cancel: &CancellationToken) -> bool {
        tokio::select! {
            _ = cancel.cancelled() => return false,
            // `Err`: the watcher is gone, nothing more will come.
            seen = self.changes.changed() => if seen.is_err() { return false },
        }
        self.changes.borrow_and_update();
        // Debounce: each new change restarts the quiet period.
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return false,
                next = tokio::time::timeout(self.quiet, self.changes.changed()) => match next {
                    Ok(Ok(())) => {
                        self.changes.borrow_and_update();
                    }
                    // A whole quiet period without a change (or the watcher gone: sync what came).
                    Err(_) | Ok(Err(_)) => return true,
                },
            }
        }
    }
}

/// Runs `sync` once, then again after every burst of changes under `root`, until `cancel` is set.
/// Changes made while a sync runs are caught by the next one.
pub async fn watch_folder<F, Fut>(
    root: &Path,
    quiet: Duration,
    hidden: bool,
    ignore: &[PathBuf],
    cancel: &CancellationToken,
    mut sync: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // Watching starts before the first sync, so that nothing changed during it is missed.
    let mut watch = FolderWatch::new(root, quiet, hidden, ignore)?;
    sync().await;
    loop {
        if !watch.pending() {
            // Every change seen so far is synced (tests wait for this line, not for a time).
            tracing::info!(folder = %root.display(), "up to date; watching for changes");
        }
        if !watch.changed(cancel).await {
            return Ok(());
        }
        sync().await;
    }
}

/// Whether a change to `path` cannot matter to a sync: editors' swap, backup and lock files,
/// partial downloads, and (unless `hidden`) anything hidden under `root`, which the walk skips.
pub fn is_scratch(root: &Path, path: &Path, hidden: bool) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let scratch_name = fathom_docs::is_scratch_name(name);
    if scratch_name {
        return true;
    }
    if hidden {
        return false;
    }
    let relative: PathBuf = path.strip_prefix(root).unwrap_or(path).to_path_buf();
    relative.components().any(|c| match c {
        Component::Normal(part) => part.to_str().is_some_and(|p| p.starts_with('.')),
        _ => false,
    })
}

/// `path` without links when it exists; else made absolute (a store not created yet).
fn canonical_or_absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn editor_scratch_files_and_hidden_paths_are_not_changes() {
        let root = Path::new("/docs");
        for scratch in [
            "/docs/a.md~",
            "/docs/.a.md.swp",
            "/docs/sub/a.md.swx",
            "/docs/4913",
            "/docs/#a.md#",
            "/docs/.#a.md",
            "/docs/report.pdf.part",
            "/docs/.git/index",
            "/docs/sub/.hidden.md",
        ] {
            assert!(is_scratch(root, Path::new(scratch), false), "{scratch}");
        }
        for real in ["/docs/a.md", "/docs/sub/notes.txt", "/docs/.config-less/x"] {
            let hidden_ok = real.contains("/.");
            assert_eq!(
                is_scratch(root, Path::new(real), false),
                hidden_ok,
                "{real}"
            );
        }
        assert!(!is_scratch(root, Path::new("/docs/.git/index"), true));
        assert!(is_scratch(root, Path::new("/docs/.a.md.swp"), true));
    }
}
