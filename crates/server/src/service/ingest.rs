//! Ingest jobs: a folder accepted only inside the configured roots, and a job that syncs it
//! into a collection through the model's queue (as bulk work). `POST /ingest`, the MCP
//! `ingest_folder` tool and `--watch` all start their jobs here.

use std::path::{Path, PathBuf};

use fathom_ingest::{FolderOptions, WalkOptions};

use crate::config::IngestRoot;
use crate::error::ApiError;
use crate::jobs::JobStatus;
use crate::state::AppState;

/// A folder accepted for ingest: where it is, and the source-id prefix of its files (the root's
/// name and the folder's path under it, so ids never reveal where the root is on the server and
/// never collide between roots).
#[derive(Debug, PartialEq, Eq)]
pub struct IngestFolder {
    pub dir: PathBuf,
    pub prefix: String,
}

/// `path` resolved (symlinks and `..` included) if it is a folder inside one of `roots`.
pub fn resolve_under_roots(path: &str, roots: &[IngestRoot]) -> Result<IngestFolder, ApiError> {
    if roots.is_empty() {
        return Err(ApiError::Validation(
            "this server ingests no folders (start it with --ingest-root DIR)".into(),
        ));
    }
    let outside = || {
        ApiError::Validation(format!(
            "`{path}` is not a folder inside the ingest roots ({})",
            roots
                .iter()
                .map(|r| r.path.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    };
    let requested = Path::new(path);
    // Relative paths are taken relative to the first root, never to the server's cwd.
    let joined = if requested.is_absolute() {
        requested.to_path_buf()
    } else {
        roots[0].path.join(requested)
    };
    let resolved = joined.canonicalize().map_err(|_| outside())?;
    if !resolved.is_dir() {
        return Err(outside());
    }
    for root in roots {
        let Ok(canonical) = root.path.canonicalize() else {
            continue;
        };
        if let Ok(relative) = resolved.strip_prefix(&canonical) {
            let prefix = format!("{}/{}", root.name, fathom_ingest::source_prefix(relative));
            return Ok(IngestFolder {
                dir: resolved,
                prefix,
            });
        }
    }
    Err(outside())
}

/// Starts a job syncing `folder` into `collection` through the model's queue (as bulk work), with
/// the server's walk rules: confined to the folder, hidden and ignored files out unless the
/// operator allows them. `label` is what the job's status shows as its path.
pub fn start_job(
    state: &AppState,
    label: String,
    folder: IngestFolder,
    collection: std::sync::Arc<fathom_store::Collection>,
    include: Vec<String>,
    exclude: Vec<String>,
) -> Result<JobStatus, ApiError> {
    // The embedder that wrote the collection (new ones: the default).
    let engine = state.engine_for(&collection)?;
    let model = engine.bulk();
    let options = FolderOptions {
        walk: WalkOptions {
            include,
            exclude,
            source_prefix: Some(folder.prefix.clone()),
            confine: true,
            hidden: state.config.ingest_hidden,
            no_ignore: state.config.ingest_hidden,
            ..WalkOptions::default()
        },
        parse: state.config.parse.clone(),
        ..FolderOptions::default()
    };
    let root = folder.dir;
    state
        .jobs
        .start(
            label,
            collection.name().to_string(),
            move |job| async move {
                let cancel = job.cancel_flag();
                let on_event = |e| job.on_event(e);
                let outcome = fathom_ingest::sync_folder(
                    model,
                    &collection,
                    &root,
                    &options,
                    &on_event,
                    &cancel,
                )
                .await;
                if let Err(e) = &outcome {
                    tracing::warn!(error = %e, "ingest job failed");
                }
                job.finish(outcome);
            },
        )
        .map_err(|full| ApiError::TooManyJobs(full.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_folders_inside_a_root_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("docs")).unwrap();
        std::fs::create_dir_all(dir.path().join("secret")).unwrap();
        std::fs::write(root.join("file.txt"), "x").unwrap();
        let roots = vec![IngestRoot {
            name: "kb".into(),
            path: root.clone(),
        }];
        let docs = IngestFolder {
            dir: root.join("docs").canonicalize().unwrap(),
            prefix: "kb/docs/".into(),
        };
        assert_eq!(resolve_under_roots("docs", &roots).unwrap(), docs);
        assert_eq!(
            resolve_under_roots(docs.dir.to_str().unwrap(), &roots).unwrap(),
            docs
        );
        assert_eq!(resolve_under_roots(".", &roots).unwrap().prefix, "kb/");
        for bad in [
            "../secret",
            "docs/../../secret",
            "/etc",
            "file.txt",
            "missing",
        ] {
            let err = resolve_under_roots(bad, &roots).unwrap_err();
            assert_eq!(
                err.status(),
                axum::http::StatusCode::UNPROCESSABLE_ENTITY,
                "{bad}"
            );
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
            assert!(resolve_under_roots("link", &roots).is_err());
        }
        assert!(resolve_under_roots("docs", &[]).is_err());
    }
}
