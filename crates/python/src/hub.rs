//! `cache_folder`: hub downloads into a folder the caller names, as sentence-transformers'
//! `cache_folder` (huggingface_hub's `cache_dir`: `models--org--name/snapshots/<sha>/...` directly
//! inside it).
//!
//! fathom-model resolves hub ids through the cache that `HF_HOME` names and takes no other cache
//! path, and changing `HF_HOME` inside a running, threaded Python process is not safe. So with a
//! `cache_folder`, this module fetches the model's files with `hf-hub` into that folder and hands
//! fathom-model the snapshot folder as a local model. Without one, fathom-model does it all.

use std::path::{Path, PathBuf};

use hf_hub::api::sync::ApiBuilder;
use hf_hub::{Cache, Repo, RepoType};
use pyo3::exceptions::PyOSError;
use pyo3::PyResult;

/// Files of a hub repository that a fathom model may read: configs, tokenizer, safetensors
/// weights (sharded too). ONNX/OpenVINO exports and pickled or TensorFlow weights are skipped, and
/// so is any name that could land outside the snapshot folder (`..`, absolute): the listing comes
/// from the network (HF_ENDPOINT may name any server), and each name becomes a path.
fn wanted(name: &str) -> bool {
    let inside = !name.contains('\\')
        && Path::new(name)
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    let skipped_dir = ["onnx/", "openvino/"]
        .iter()
        .any(|dir| name.starts_with(dir));
    let wanted_ext = [".json", ".safetensors", ".txt", ".model"]
        .iter()
        .any(|ext| name.ends_with(ext));
    inside && wanted_ext && !skipped_dir
}

fn hub_offline() -> bool {
    std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

fn snapshot_dir(config: &Path) -> PathBuf {
    config.parent().map(Path::to_path_buf).unwrap_or_default()
}

/// The local snapshot folder of hub model `id` at `revision` inside `cache_folder`, downloading
/// what is missing (network I/O) unless `HF_HUB_OFFLINE` is set or the hub is unreachable and a
/// copy is already cached there.
pub fn snapshot_in(cache_folder: &Path, id: &str, revision: Option<&str>) -> PyResult<PathBuf> {
    let revision = revision.unwrap_or("main").to_string();
    let name = format!("{id}@{revision}");
    let repo = Repo::with_revision(id.to_string(), RepoType::Model, revision);
    let cache = Cache::new(cache_folder.to_path_buf());
    let cached_config = cache.repo(repo.clone()).get("config.json");
    if hub_offline() {
        return cached_config.map(|c| snapshot_dir(&c)).ok_or_else(|| {
            PyOSError::new_err(format!(
                "`{name}` is not in cache_folder `{}` and HF_HUB_OFFLINE is set (unset HF_HUB_OFFLINE to download it, or pass a local folder)",
                cache_folder.display()
            ))
        });
    }
    let hub_error = |what: &str, reason: String| {
        PyOSError::new_err(format!(
            "could not fetch {what} of `{name}` from the Hugging Face hub into `{}`: {reason} (check the id and revision, the network or HF_ENDPOINT, HF_TOKEN for gated models; or pass a local folder)",
            cache_folder.display()
        ))
    };
    // The token lives beside the default cache (HF_HOME), not in cache_folder, as with huggingface_hub.
    let token = std::env::var("HF_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .or_else(|| Cache::from_env().token());
    let mut builder = ApiBuilder::from_cache(cache)
        .with_token(token)
        .with_progress(false);
    if let Ok(endpoint) = std::env::var("HF_ENDPOINT") {
        builder = builder.with_endpoint(endpoint);
    }
    let api = builder
        .build()
        .map_err(|e| hub_error("the file list", e.to_string()))?;
    let api_repo = api.repo(repo);
    let listing = match api_repo.info() {
        Ok(info) => info.siblings,
        // No hub (offline machine, firewall): a copy already in cache_folder still loads.
        Err(_) if cached_config.is_some() => {
            return Ok(snapshot_dir(&cached_config.unwrap_or_default()))
        }
        Err(e) => return Err(hub_error("the file list", e.to_string())),
    };
    let mut config = None;
    for file in listing.iter().filter(|f| wanted(&f.rfilename)) {
        let path = api_repo
            .get(&file.rfilename)
            .map_err(|e| hub_error(&format!("`{}`", file.rfilename), e.to_string()))?;
        if file.rfilename == "config.json" {
            config = Some(path);
        }
    }
    config
        .map(|c| snapshot_dir(&c))
        .ok_or_else(|| hub_error("`config.json`", "the repository has no such file".into()))
}
