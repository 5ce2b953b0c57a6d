//! Keeping a collection in step with a folder (`--watch`): the folder's filesystem events, read
//! through `notify` and debounced, wake a loop that syncs the folder again with the same rules as
//! a one-off ingest (walk, ignores, size limits, confinement, whole-file commits, deletes of files
//! that are gone). A burst of saves, an editor's swap and backup files, or a `git checkout` of
//! many files makes one sync, not one per event; a sync that finds nothing changed commits
//! nothing.

use std::future::Future;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use notify::RecursiveMode;
use notify_debouncer_mini::{new_debouncer, DebounceEventResult, Debouncer};
use tokio::sync::watch;

use crate::{CancelFlag, IngestError, Result};

/// How long a folder must be quiet after a change before it is synced.
pub const DEFAULT_QUIET: Duration = Duration::from_millis(750);

/// The filesystem events of one folder tree, as "something changed" signals.
pub struct FolderWatch {
    _debouncer: Debouncer<notify::RecommendedWatcher>,
    changes: watch::Receiver<u64>,
}

impl std::fmt::Debug for FolderWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FolderWatch")
            .field("changes", &*self.changes.borrow())
            .finish_non_exhaustive()
    }
}

impl FolderWatch {
    /// Starts watching `root` recursively. Changes to scratch files ([`is_scratch`]) and, unless
    /// `hidden`, to hidden files and folders are not signalled: a sync would not read them.
    pub fn new(root: &Path, quiet: Duration, hidden: bool) -> Result<Self> {
        let (tx, changes) = watch::channel(0u64);
        let base = root.to_path_buf();
        let handler = move |result: DebounceEventResult| {
            let relevant = match result {
                Ok(events) => events.iter().any(|e| !is_scratch(&base, &e.path, hidden)),
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
        let watch_error = |e: notify::Error| IngestError::Watch {
            path: root.to_path_buf(),
            message: watch_hint(&e),
        };
        let mut debouncer = new_debouncer(quiet, handler).map_err(watch_error)?;
        debouncer
            .watcher()
            .watch(root, RecursiveMode::Recursive)
            .map_err(watch_error)?;
        Ok(Self {
            _debouncer: debouncer,
            changes,
        })
    }

    /// Waits until something changed since the last call (or since the watch began), or until
    /// `cancel` is set; `false` when cancelled.
    pub async fn changed(&mut self, cancel: &CancelFlag) -> bool {
        loop {
            if cancel.load(Ordering::Relaxed) {
                return false;
            }
            match tokio::time::timeout(Duration::from_millis(200), self.changes.changed()).await {
                Ok(Ok(())) => {
                    self.changes.borrow_and_update();
                    return !cancel.load(Ordering::Relaxed);
                }
                // The debouncer is gone: nothing more will come.
                Ok(Err(_)) => return false,
                Err(_) => {}
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
    cancel: &CancelFlag,
    mut sync: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // Watching starts before the first sync, so that nothing changed during it is missed.
    let mut watch = FolderWatch::new(root, quiet, hidden)?;
    sync().await;
    while watch.changed(cancel).await {
        sync().await;
    }
    Ok(())
}

/// Whether a change to `path` cannot matter to a sync: editors' swap, backup and lock files,
/// partial downloads, and (unless `hidden`) anything hidden under `root`, which the walk skips.
pub fn is_scratch(root: &Path, path: &Path, hidden: bool) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    let scratch_name = name.ends_with('~')
        || (name.starts_with(".#"))
        || (name.starts_with('#') && name.ends_with('#'))
        || name == "4913"
        || [
            ".swp",
            ".swx",
            ".swo",
            ".tmp",
            ".part",
            ".crdownload",
            ".kate-swp",
        ]
        .iter()
        .any(|ext| name.ends_with(ext));
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

fn watch_hint(e: &notify::Error) -> String {
    match &e.kind {
        notify::ErrorKind::MaxFilesWatch => format!(
            "{e}: the folder has more subfolders than the system lets one process watch (raise \
             fs.inotify.max_user_watches)"
        ),
        _ => e.to_string(),
    }
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
