//! Where a store lives and how it is reached: lance's storage options for object stores, the
//! read-consistency interval, and errors that name the URI and what was missing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lance::dataset::builder::DatasetBuilder;
use lance::io::{ObjectStore, ObjectStoreParams, ObjectStoreRegistry, StorageOptionsAccessor};
use lance::session::Session;
use lance::Dataset;

use crate::error::{Result, StoreError};

/// How to reach a store and how fresh its reads are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    /// lance storage options, passed as they are: `endpoint`, `region`, `allow_http`,
    /// `access_key_id`, `timeout`, `client_max_retries`… Credentials otherwise come the way
    /// each cloud's own tools find them (`AWS_*` variables and profiles, `GOOGLE_*`, `AZURE_*`).
    pub storage: HashMap<String, String>,
    /// How long a reader may answer from a snapshot before checking the store for commits made
    /// by other processes. `None`: 0 for a local folder (a check is one directory read), 2 s for
    /// object storage (a check is a LIST request). A process sees its own commits at once.
    pub read_consistency: Option<Duration>,
}

/// lance's caches of index pages and metadata, shared by every dataset a store opens. lance's
/// own defaults (6 GiB + 1 GiB, and a new pair for every dataset opened without a session) let a
/// long-running server grow with every version it reads.
pub const INDEX_CACHE_BYTES: usize = 256 * 1024 * 1024;
pub const METADATA_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// The interval used on object storage unless one is given.
pub const OBJECT_STORE_READ_CONSISTENCY: Duration = Duration::from_secs(2);

/// `s3://`, `gs://`, `az://`, `memory://`… anything but a plain path or `file://`.
pub fn is_object_store(root: &str) -> bool {
    match root.split_once("://") {
        Some((scheme, _)) => scheme != "file" && scheme != "file+uring",
        None => false,
    }
}

/// What every collection of a store shares: its options and one lance session (caches and the
/// object-store registry).
#[derive(Debug)]
pub(crate) struct Access {
    pub(crate) options: StoreOptions,
    pub(crate) session: Arc<Session>,
}

impl Access {
    pub(crate) fn new(root: &str, options: StoreOptions) -> Self {
        Self {
            options: options.resolved_for(root),
            session: Arc::new(Session::new(
                INDEX_CACHE_BYTES,
                METADATA_CACHE_BYTES,
                Arc::new(ObjectStoreRegistry::default()),
            )),
        }
    }

    pub(crate) fn read_consistency(&self) -> Duration {
        self.options.read_consistency.unwrap_or(Duration::ZERO)
    }

    pub(crate) fn store_params(&self) -> Option<ObjectStoreParams> {
        self.options.store_params()
    }

    pub(crate) async fn open(&self, uri: &str) -> lance::Result<Dataset> {
        let mut builder = DatasetBuilder::from_uri(uri).with_session(self.session.clone());
        if !self.options.storage.is_empty() {
            builder = builder.with_storage_options(self.options.storage.clone());
        }
        builder.load().await
    }

    /// The names directly under `root` on object storage.
    pub(crate) async fn list(&self, root: &str) -> Result<Vec<String>> {
        let params = self.store_params().unwrap_or_default();
        let listed = async {
            let (store, path) =
                ObjectStore::from_uri_and_params(self.session.store_registry(), root, &params)
                    .await?;
            store.read_dir(path).await
        };
        listed.await.map_err(|e| storage_error(root, e))
    }
}

impl StoreOptions {
    pub(crate) fn resolved_for(mut self, root: &str) -> Self {
        if self.read_consistency.is_none() {
            self.read_consistency = Some(if is_object_store(root) {
                OBJECT_STORE_READ_CONSISTENCY
            } else {
                Duration::ZERO
            });
        }
        self
    }

    /// Parses `key=value` (the CLI's `--store-option`).
    pub fn parse_option(text: &str) -> std::result::Result<(String, String), String> {
        match text.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
            _ => Err(format!(
                "`{text}` is not KEY=VALUE (for example endpoint=http://127.0.0.1:9000)"
            )),
        }
    }

    pub(crate) fn store_params(&self) -> Option<ObjectStoreParams> {
        if self.storage.is_empty() {
            return None;
        }
        Some(ObjectStoreParams {
            storage_options_accessor: Some(Arc::new(StorageOptionsAccessor::with_static_options(
                self.storage.clone(),
            ))),
            ..Default::default()
        })
    }
}

/// A lance error from reaching `uri`, with what it most likely means. Errors that are about
/// the data rather than the storage pass through unchanged.
pub(crate) fn storage_error(uri: &str, err: lance::Error) -> StoreError {
    if matches!(
        err,
        lance::Error::CommitConflict { .. }
            | lance::Error::RetryableCommitConflict { .. }
            | lance::Error::DatasetAlreadyExists { .. }
    ) {
        return StoreError::Lance(err);
    }
    let text = format!("{err:?} {err}");
    let hint = if text.contains("NoSuchBucket") || text.contains("bucket does not exist") {
        "the bucket does not exist (create it, or check the URI)"
    } else if text.contains("InvalidAccessKeyId")
        || text.contains("SignatureDoesNotMatch")
        || text.contains("InvalidClientTokenId")
        || text.contains("ExpiredToken")
    {
        "the credentials were refused (check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, the profile, or --store-option)"
    } else if text.contains("AccessDenied") || text.contains("403 Forbidden") {
        "permission denied (the credentials may not read or write this bucket or prefix)"
    } else if text.to_lowercase().contains("credential") {
        "no usable credentials were found (set the cloud's standard variables, a profile, or --store-option)"
    } else if text.contains("error sending request")
        || text.contains("Connection refused")
        || text.contains("timed out")
        || text.contains("Timeout")
        || text.contains("retries")
    {
        "the storage service did not answer (check the endpoint and the network; nothing half-written is visible)"
    } else {
        return StoreError::Lance(err);
    };
    StoreError::Storage {
        uri: uri.to_string(),
        hint,
        source: err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_store_uris_are_told_from_folders() {
        for uri in [
            "s3://b/p",
            "gs://b",
            "az://c/p",
            "s3+ddb://b/p?ddbTableName=t",
            "memory://x",
        ] {
            assert!(is_object_store(uri), "{uri}");
        }
        for path in ["fathom-data", "/tmp/x", "file:///tmp/x", "C:\\data"] {
            assert!(!is_object_store(path), "{path}");
        }
    }

    #[test]
    fn read_consistency_defaults_by_kind_of_store() {
        let local = Access::new("fathom-data", StoreOptions::default());
        assert_eq!(local.read_consistency(), Duration::ZERO);
        let s3 = Access::new("s3://bucket/x", StoreOptions::default());
        assert_eq!(s3.read_consistency(), OBJECT_STORE_READ_CONSISTENCY);
        let given = StoreOptions {
            read_consistency: Some(Duration::from_millis(250)),
            ..StoreOptions::default()
        };
        let given = Access::new("s3://bucket/x", given);
        assert_eq!(given.read_consistency(), Duration::from_millis(250));
    }

    #[test]
    fn options_parse_as_key_value() {
        assert_eq!(
            StoreOptions::parse_option("endpoint=http://h:9000/x=y"),
            Ok(("endpoint".into(), "http://h:9000/x=y".into()))
        );
        assert!(StoreOptions::parse_option("novalue").is_err());
        assert!(StoreOptions::parse_option("=v").is_err());
    }
}
