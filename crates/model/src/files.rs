//! Where a model's files come from: a local folder (never touches the network) or a Hugging Face
//! hub repository fetched through `hf-hub` and its cache (`HF_HOME`, `HF_ENDPOINT`, `HF_TOKEN`,
//! `HF_HUB_OFFLINE`).

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hf_hub::{Cache, Repo, RepoType};

use crate::error::{ModelError, Result};

/// What the user named: a folder on disk, or a hub id with an optional revision (`org/name@rev`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Local(PathBuf),
    Hub {
        id: String,
        revision: Option<String>,
    },
}

impl ModelSource {
    /// An existing folder is always local; otherwise `org/name[@revision]` is a hub id.
    pub fn parse(spec: &str) -> Result<Self> {
        let path = Path::new(spec);
        if path.is_dir() {
            return Ok(Self::Local(path.to_path_buf()));
        }
        let (id, revision) = match spec.split_once('@') {
            Some((id, rev)) if !rev.is_empty() => (id, Some(rev.to_string())),
            Some(_) => return Err(ModelError::BadModelId(spec.to_string())),
            None => (spec, None),
        };
        let parts: Vec<&str> = id.split('/').collect();
        let looks_like_path = spec.starts_with('.') || spec.starts_with('/') || spec.contains('\\');
        let valid_part = |p: &str| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        };
        if looks_like_path || parts.len() > 2 || !parts.iter().all(|p| valid_part(p)) {
            if looks_like_path || parts.len() > 2 {
                return Err(ModelError::NoSuchFolder(path.to_path_buf()));
            }
            return Err(ModelError::BadModelId(spec.to_string()));
        }
        Ok(Self::Hub {
            id: id.to_string(),
            revision,
        })
    }

    /// A short, stable name for this model: the hub id, or the folder name.
    pub fn display_name(&self) -> String {
        match self {
            Self::Local(dir) => dir.display().to_string(),
            Self::Hub { id, revision: None } => id.clone(),
            Self::Hub {
                id,
                revision: Some(rev),
            } => format!("{id}@{rev}"),
        }
    }
}

/// Fetches a model's files by their path inside the model repository and remembers which ones it
/// fetched (so `fathom model pull --to` can copy exactly those).
#[derive(Debug)]
pub struct ModelFiles {
    source: ModelSource,
    backend: Backend,
    fetched: BTreeMap<String, PathBuf>,
}

enum Backend {
    Local(PathBuf),
    Online {
        repo: hf_hub::api::sync::ApiRepo,
        repo_name: String,
        listing: BTreeSet<String>,
    },
    Offline {
        cache: hf_hub::CacheRepo,
        repo_name: String,
    },
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local(dir) => write!(f, "Local({})", dir.display()),
            Self::Online { repo_name, .. } => write!(f, "Online({repo_name})"),
            Self::Offline { repo_name, .. } => write!(f, "Offline({repo_name})"),
        }
    }
}

fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE")
        .map(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "1" | "true" | "yes" | "on"
            )
        })
        .unwrap_or(false)
}

impl ModelFiles {
    /// Opens a source. For a hub id this lists the repository (one request) unless
    /// `HF_HUB_OFFLINE` is set, in which case only the local cache is read.
    pub fn open(source: &ModelSource) -> Result<Self> {
        let backend = match source {
            ModelSource::Local(dir) => Backend::Local(dir.clone()),
            ModelSource::Hub { id, revision } => {
                let revision = revision.clone().unwrap_or_else(|| "main".to_string());
                let repo = Repo::with_revision(id.clone(), RepoType::Model, revision);
                let repo_name = source.display_name();
                if hub_offline() {
                    Backend::Offline {
                        cache: Cache::from_env().repo(repo),
                        repo_name,
                    }
                } else {
                    let token = std::env::var("HF_TOKEN")
                        .ok()
                        .filter(|t| !t.is_empty())
                        .or_else(|| Cache::from_env().token());
                    let api = hf_hub::api::sync::ApiBuilder::from_env()
                        .with_token(token)
                        .with_progress(false)
                        .build()
                        .map_err(|e| ModelError::Hub {
                            repo: repo_name.clone(),
                            what: "the file list".into(),
                            reason: e.to_string(),
                        })?;
                    let cache = Cache::from_env().repo(repo.clone());
                    let api_repo = api.repo(repo);
                    match api_repo.info() {
                        Ok(info) => Backend::Online {
                            repo: api_repo,
                            repo_name,
                            listing: info.siblings.into_iter().map(|s| s.rfilename).collect(),
                        },
                        // No hub (offline machine, firewall): a model already in the cache
                        // still loads, as with huggingface_hub.
                        Err(e) if cache.get("config.json").is_some() => {
                            // One short line: the transport's error (a DNS failure with
                            // its whole chain) only with -vv.
                            tracing::debug!(repo = %repo_name, error = %e, "hub request failed");
                            tracing::warn!("the Hugging Face hub is not reachable: using the cached {repo_name} (HF_HUB_OFFLINE=1 skips the check)");
                            Backend::Offline { cache, repo_name }
                        }
                        Err(e) => {
                            return Err(ModelError::Hub {
                                repo: repo_name,
                                what: "the file list".into(),
                                reason: e.to_string(),
                            })
                        }
                    }
                }
            }
        };
        Ok(Self {
            source: source.clone(),
            backend,
            fetched: BTreeMap::new(),
        })
    }

    pub fn source(&self) -> &ModelSource {
        &self.source
    }

    /// Every file fetched so far, by its path inside the repository.
    pub fn fetched(&self) -> &BTreeMap<String, PathBuf> {
        &self.fetched
    }

    /// The local path of `name` if the model has that file, `None` if it does not.
    pub fn optional(&mut self, name: &str) -> Result<Option<PathBuf>> {
        let path = match &self.backend {
            Backend::Local(dir) => {
                let path = dir.join(name);
                path.is_file().then_some(path)
            }
            Backend::Offline { cache, .. } => cache.get(name),
            Backend::Online {
                repo,
                repo_name,
                listing,
            } => {
                if !listing.contains(name) {
                    None
                } else {
                    Some(repo.get(name).map_err(|e| ModelError::Hub {
                        repo: repo_name.clone(),
                        what: format!("`{name}`"),
                        reason: e.to_string(),
                    })?)
                }
            }
        };
        if let Some(path) = &path {
            self.fetched.insert(name.to_string(), path.clone());
        }
        Ok(path)
    }

    /// The local path of `name`, or an error that says how to get it.
    pub fn required(&mut self, name: &str) -> Result<PathBuf> {
        if let Some(path) = self.optional(name)? {
            return Ok(path);
        }
        Err(match &self.backend {
            Backend::Local(dir) => ModelError::MissingFile {
                dir: dir.clone(),
                file: name.to_string(),
                hint: "copy the complete sentence-transformers folder, run scripts/fetch-model.sh, or pass --model <hub id>".into(),
            },
            Backend::Offline { repo_name, .. } => ModelError::OfflineMiss {
                repo: repo_name.clone(),
                file: name.to_string(),
            },
            Backend::Online { repo_name, .. } => ModelError::Hub {
                repo: repo_name.clone(),
                what: format!("`{name}`"),
                reason: "the repository has no such file".into(),
            },
        })
    }

    /// Whether the model has `name`, without fetching it (local folders and online listings only;
    /// offline, a file is known only once cached).
    pub fn has(&self, name: &str) -> bool {
        match &self.backend {
            Backend::Local(dir) => dir.join(name).is_file(),
            Backend::Offline { cache, .. } => cache.get(name).is_some(),
            Backend::Online { listing, .. } => listing.contains(name),
        }
    }

    /// Copies every fetched file into `dest`, keeping its path inside the repository.
    pub fn copy_fetched_to(&self, dest: &Path) -> Result<()> {
        for (name, path) in &self.fetched {
            let target = dest.join(name);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent).map_err(|e| ModelError::io(parent, e))?;
            }
            std::fs::copy(path, &target).map_err(|e| ModelError::io(&target, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hub_ids_and_revisions() {
        assert_eq!(
            ModelSource::parse("BAAI/bge-small-en-v1.5").unwrap(),
            ModelSource::Hub {
                id: "BAAI/bge-small-en-v1.5".into(),
                revision: None
            }
        );
        assert_eq!(
            ModelSource::parse("intfloat/e5-small@refs/pr/1").unwrap(),
            ModelSource::Hub {
                id: "intfloat/e5-small".into(),
                revision: Some("refs/pr/1".into())
            }
        );
        assert_eq!(
            ModelSource::parse("intfloat/e5-small@").unwrap_err().to_string(),
            "`intfloat/e5-small@` is neither a model folder nor a hub id like `sentence-transformers/all-MiniLM-L6-v2`"
        );
        assert_eq!(
            ModelSource::parse("intfloat/e5-small@v2").unwrap(),
            ModelSource::Hub {
                id: "intfloat/e5-small".into(),
                revision: Some("v2".into())
            }
        );
    }

    #[test]
    fn existing_folders_are_local_and_missing_paths_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let spec = dir.path().to_str().unwrap();
        assert_eq!(
            ModelSource::parse(spec).unwrap(),
            ModelSource::Local(dir.path().to_path_buf())
        );
        let err = ModelSource::parse("./models/does-not-exist").unwrap_err();
        assert!(err.to_string().contains("scripts/fetch-model.sh"), "{err}");
        assert!(ModelSource::parse("bad id with spaces").is_err());
    }

    #[test]
    fn local_required_file_error_names_folder_and_fix() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = ModelFiles::open(&ModelSource::Local(dir.path().to_path_buf())).unwrap();
        assert!(files.optional("config.json").unwrap().is_none());
        let err = files.required("tokenizer.json").unwrap_err().to_string();
        assert!(err.contains("has no tokenizer.json"), "{err}");
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
