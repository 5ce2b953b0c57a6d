//! Walking a folder with the `ignore` crate: .gitignore and hidden files respected by default,
//! include/exclude globs, a size limit. Problems are collected, never fatal, and the walk says
//! which folders it could not list, so that nothing stored under them is taken for deleted.
//!
//! A confined walk (the default; the CLI's `--follow-links` turns it off) never leaves the root: a link whose target resolves outside it
//! is reported and not followed, and files are later read through a handle on the root that
//! refuses to resolve outside it ([`crate::files`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::overrides::{Override, OverrideBuilder};
use ignore::WalkBuilder;

use crate::problem::{FileProblem, ProblemKind};

/// Why a folder cannot be walked at all (problems with single files are collected instead).
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("`{}` is not a folder", path.display())]
    NotAFolder { path: PathBuf },
    /// The glob's own error is kept (and shown in the message, so not chained again).
    #[error("bad {option} glob `{glob}`: {error}")]
    BadGlob {
        option: &'static str,
        glob: String,
        error: ignore::Error,
    },
}

/// Editors' swap, backup and lock files and partial downloads, by name: neither walked nor
/// watched.
pub fn is_scratch_name(name: &str) -> bool {
    name.ends_with('~')
        || name.starts_with(".#")
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
        .any(|ext| name.ends_with(ext))
}
/// What to walk and what to leave out.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Globs a file must match (any of them), relative to the root; empty: every file. They
    /// select among the files the walk sees; they never bring back hidden or ignored files.
    pub include: Vec<String>,
    /// Globs that leave files out.
    pub exclude: Vec<String>,
    /// Files larger than this are skipped and counted.
    pub max_file_size: u64,
    /// Also walk hidden files and folders.
    pub hidden: bool,
    /// Ignore .gitignore / .ignore files.
    pub no_ignore: bool,
    /// Never read anything whose resolved location is outside the root: links out of it are
    /// reported and skipped. On by default (server and CLI); `fathom ingest --follow-links`
    /// turns it off, to follow links wherever they lead.
    pub confine: bool,
    /// What source ids start with; `None`: the root as named ([`source_prefix`]). The server
    /// sets it to the ingest root's name and the folder's path under it.
    pub source_prefix: Option<String>,
    /// Take only this share of the files (and delete only within it): `--shard I/N`, so that
    /// N processes or machines can ingest one folder into one collection.
    pub shard: Option<Shard>,
}

impl WalkOptions {
    /// The source id prefix of files under `root` with these options.
    pub fn prefix_for(&self, root: &Path) -> String {
        self.source_prefix
            .clone()
            .unwrap_or_else(|| source_prefix(root))
    }
}

impl Default for WalkOptions {
    fn default() -> Self {
        Self {
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_size: 20 * 1024 * 1024,
            hidden: false,
            no_ignore: false,
            confine: true,
            source_prefix: None,
            shard: None,
        }
    }
}

/// A file to consider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    /// Where it is (the root as given, joined with `rel`).
    pub path: PathBuf,
    /// Its path relative to the root.
    pub rel: PathBuf,
    pub source_id: String,
    pub size: u64,
}

/// A deterministic share of the sources: source `id` belongs to shard `I` of `N` when a hash of
/// its id is `I` modulo `N`. The hash (blake3) is the same on every machine and release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    pub fn owns(&self, source_id: &str) -> bool {
        let hash = blake3::hash(source_id.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash.as_bytes()[..8]);
        u64::from_le_bytes(first) % self.count == self.index
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with `0 <= I < N`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}` is not a shard I/N with 0 <= I < N (for example 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let index: u64 = i.trim().parse().map_err(|_| bad())?;
        let count: u64 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// What a walk saw.
#[derive(Debug, Default)]
pub struct Walked {
    pub files: Vec<FileEntry>,
    /// Files over the size limit (their source ids): skipped, not part of the collection.
    pub too_large: Vec<String>,
    /// Links out of a confined root (their source ids): never read, not part of the collection.
    pub outside: Vec<String>,
    /// Source ids of entries that could not be listed or read: a file, or a folder (everything
    /// stored under `id/` is kept).
    pub unreadable: Vec<String>,
    /// False when an error could not be tied to a place under the root: then nothing is deleted.
    pub complete: bool,
    /// Every problem, for the summary.
    pub problems: Vec<FileProblem>,
}

/// The source id prefix for files under `root` as the user named it: `docs/` for `./docs`,
/// empty for `.`. Source ids are `prefix + path relative to root`, with `/` separators.
pub fn source_prefix(root: &Path) -> String {
    let shown = root.to_string_lossy().replace('\\', "/");
    let mut trimmed = shown.as_str();
    while let Some(rest) = trimmed.strip_prefix("./") {
        trimmed = rest;
    }
    let trimmed = trimmed.trim_end_matches('/');
    if trimmed.is_empty() || trimmed == "." {
        String::new()
    } else {
        format!("{trimmed}/")
    }
}

fn source_id(prefix: &str, root: &Path, path: &Path) -> Option<String> {
    let rel = path.strip_prefix(root).ok()?;
    let rel = rel.to_string_lossy().replace('\\', "/");
    Some(format!("{prefix}{}", rel.trim_start_matches('/')))
}

fn globs(
    root: &Path,
    option: &'static str,
    globs: &[String],
    negate: bool,
) -> Result<Override, WalkError> {
    let mut builder = OverrideBuilder::new(root);
    for glob in globs {
        let pattern = if negate {
            format!("!{glob}")
        } else {
            glob.clone()
        };
        builder.add(&pattern).map_err(|error| WalkError::BadGlob {
            option,
            glob: glob.clone(),
            error,
        })?;
    }
    builder.build().map_err(|error| WalkError::BadGlob {
        option,
        glob: globs.join(" "),
        error,
    })
}

/// Walks `root`. Blocking (file system I/O).
pub fn walk(root: &Path, options: &WalkOptions) -> Result<Walked, WalkError> {
    if !root.is_dir() {
        return Err(WalkError::NotAFolder {
            path: root.to_path_buf(),
        });
    }
    // Includes are checked on each file after the walker's own rules, because an override that
    // matches wins over .gitignore and hidden rules in `ignore` — `**/.env` would otherwise
    // bring back a hidden, ignored file.
    let include = (!options.include.is_empty())
        .then(|| globs(root, "--include", &options.include, false))
        .transpose()?;
    let prefix = options.prefix_for(root);
    let outside: Arc<Mutex<Vec<String>>> = Arc::default();
    let walker = walker(root, options, &prefix, &outside)?;
    let mut walked = Walked {
        complete: true,
        ..Walked::default()
    };
    for entry in walker.build() {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                walked.unlisted(
                    error_path(&err).and_then(|p| source_id(&prefix, root, &p)),
                    root,
                    &err,
                );
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        // Editors' backup, swap and lock files are never documents.
        if is_scratch_name(&entry.file_name().to_string_lossy()) {
            continue;
        }
        let path = entry.path().to_path_buf();
        if let Some(include) = &include {
            if !include.matched(&path, false).is_whitelist() {
                continue;
            }
        }
        let Some(source_id) = source_id(&prefix, root, &path) else {
            continue;
        };
        if options.shard.is_some_and(|s| !s.owns(&source_id)) {
            continue;
        }
        walked.add_file(&entry, root, source_id, options.max_file_size);
    }
    let mut outside = std::mem::take(&mut *outside.lock().expect("walk lock"));
    if let Some(shard) = options.shard {
        outside.retain(|id| shard.owns(id));
    }
    walked.add_outside(outside);
    Ok(walked)
}

/// The walker with the options' rules: hidden and ignored files, the excludes (which prune
/// folders), links followed, sorted by path; with `confine`, links that lead outside `root` are
/// not followed but recorded in `outside` (as source ids).
fn walker(
    root: &Path,
    options: &WalkOptions,
    prefix: &str,
    outside: &Arc<Mutex<Vec<String>>>,
) -> Result<WalkBuilder, WalkError> {
    let exclude = globs(root, "--exclude", &options.exclude, true)?;
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(!options.hidden)
        .git_ignore(!options.no_ignore)
        .git_exclude(!options.no_ignore)
        .ignore(!options.no_ignore)
        .parents(!options.no_ignore)
        .git_global(false)
        .require_git(false)
        .follow_links(true)
        .overrides(exclude)
        .sort_by_file_path(|a, b| a.cmp(b));
    if options.confine {
        let canonical_root = root.canonicalize().map_err(|_| WalkError::NotAFolder {
            path: root.to_path_buf(),
        })?;
        let (root, prefix, outside) = (root.to_path_buf(), prefix.to_string(), outside.clone());
        builder.filter_entry(move |entry| {
            if !entry.path_is_symlink() {
                return true;
            }
            let inside = entry
                .path()
                .canonicalize()
                .is_ok_and(|target| target.starts_with(&canonical_root));
            if !inside {
                if let Some(id) = source_id(&prefix, &root, entry.path()) {
                    outside.lock().expect("walk lock").push(id);
                }
            }
            inside
        });
    }
    Ok(builder)
}

impl Walked {
    /// Something the walker could not list: a file (`place`, kept as unreadable, so its stored
    /// chunks stay) or, with no place, part of the tree (then the listing is incomplete).
    fn unlisted(&mut self, place: Option<String>, root: &Path, err: &ignore::Error) {
        match &place {
            Some(id) => self.unreadable.push(id.clone()),
            None => self.complete = false,
        }
        self.problems.push(FileProblem {
            path: place.unwrap_or_else(|| root.display().to_string()),
            message: err.to_string(),
            kind: ProblemKind::Error,
        });
    }

    /// A file the walk takes: listed, or too large, or unreadable (its metadata failed).
    fn add_file(
        &mut self,
        entry: &ignore::DirEntry,
        root: &Path,
        source_id: String,
        max_file_size: u64,
    ) {
        let path = entry.path().to_path_buf();
        match entry.metadata() {
            Ok(meta) if meta.len() > max_file_size => self.too_large.push(source_id),
            Ok(meta) => self.files.push(FileEntry {
                rel: path.strip_prefix(root).unwrap_or(&path).to_path_buf(),
                path,
                source_id,
                size: meta.len(),
            }),
            Err(err) => {
                self.unreadable.push(source_id.clone());
                self.problems.push(FileProblem {
                    path: source_id,
                    message: err.to_string(),
                    kind: ProblemKind::Error,
                });
            }
        }
    }

    /// Links that lead outside the folder: not read, each reported.
    fn add_outside(&mut self, outside: Vec<String>) {
        for id in &outside {
            self.problems.push(FileProblem {
                path: id.clone(),
                message: "a link that leads outside the folder: not read".into(),
                kind: ProblemKind::OutsideRoot,
            });
        }
        self.outside = outside;
    }
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_split_every_source_exactly_once() {
        let ids: Vec<String> = (0..1000).map(|i| format!("docs/file{i}.md")).collect();
        for n in [1u64, 2, 3, 7] {
            let shards: Vec<Shard> = (0..n)
                .map(|i| format!("{i}/{n}").parse().unwrap())
                .collect();
            let mut sizes = vec![0usize; n as usize];
            for id in &ids {
                let owners: Vec<usize> =
                    (0..shards.len()).filter(|&k| shards[k].owns(id)).collect();
                assert_eq!(owners.len(), 1, "{id} in shards {owners:?} of {n}");
                sizes[owners[0]] += 1;
            }
            // Roughly even: no shard under half its fair share.
            assert!(
                sizes.iter().all(|&s| s * 2 * n as usize >= ids.len()),
                "{n}: {sizes:?}"
            );
        }
        for bad in ["", "1", "2/2", "-1/2", "0/0", "a/b", "1/2/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!("1/4".parse::<Shard>().unwrap().to_string(), "1/4");
    }

    fn ids(w: &Walked, prefix: &str) -> Vec<String> {
        w.files
            .iter()
            .map(|f| f.source_id.strip_prefix(prefix).unwrap().to_string())
            .collect()
    }

    #[test]
    fn prefixes_follow_the_root_as_named() {
        assert_eq!(source_prefix(Path::new(".")), "");
        assert_eq!(source_prefix(Path::new("./docs/")), "docs/");
        assert_eq!(source_prefix(Path::new("docs")), "docs/");
        assert_eq!(source_prefix(Path::new("/abs/dir")), "/abs/dir/");
    }

    #[test]
    fn walks_with_gitignore_hidden_globs_and_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir_all(root.join(".hidden")).unwrap();
        std::fs::write(root.join(".gitignore"), "ignored.txt\n").unwrap();
        std::fs::write(root.join("a.md"), "a").unwrap();
        std::fs::write(root.join("ignored.txt"), "x").unwrap();
        std::fs::write(root.join("sub/b.txt"), "b").unwrap();
        std::fs::write(root.join("sub/big.txt"), "0123456789").unwrap();
        std::fs::write(root.join(".hidden/c.txt"), "c").unwrap();
        let opts = WalkOptions {
            max_file_size: 5,
            ..Default::default()
        };
        let w = walk(root, &opts).unwrap();
        let prefix = source_prefix(root);
        assert_eq!(ids(&w, &prefix), ["a.md", "sub/b.txt"]);
        assert_eq!(w.too_large.len(), 1);
        assert!(w.complete);
        let opts = WalkOptions {
            include: vec!["*.md".into()],
            ..Default::default()
        };
        assert_eq!(walk(root, &opts).unwrap().files.len(), 1);
        let opts = WalkOptions {
            exclude: vec!["sub/**".into()],
            hidden: true,
            ..Default::default()
        };
        let w = walk(root, &opts).unwrap();
        assert_eq!(ids(&w, &prefix), [".gitignore", ".hidden/c.txt", "a.md"]);
        assert!(matches!(
            walk(&root.join("nope"), &WalkOptions::default()),
            Err(WalkError::NotAFolder { .. })
        ));
    }

    #[test]
    fn include_globs_never_bring_back_hidden_or_ignored_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".env"), "SECRET=1").unwrap();
        std::fs::write(root.join(".gitignore"), "private.txt\n").unwrap();
        std::fs::write(root.join("private.txt"), "private").unwrap();
        std::fs::write(root.join("a.txt"), "a").unwrap();
        let opts = WalkOptions {
            include: vec!["**/.env".into(), "**/*.txt".into(), "*".into()],
            ..Default::default()
        };
        let w = walk(root, &opts).unwrap();
        assert_eq!(ids(&w, &source_prefix(root)), ["a.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_reported_not_fatal_and_keep_what_is_under_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("d")).unwrap();
        std::fs::write(dir.path().join("d/f.txt"), "f").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("d/loop")).unwrap();
        let w = walk(dir.path(), &WalkOptions::default()).unwrap();
        assert_eq!(w.files.len(), 1);
        assert!(
            w.problems.iter().any(|p| p.message.contains("loop")),
            "{:?}",
            w.problems
        );
        let prefix = source_prefix(dir.path());
        assert_eq!(w.unreadable, [format!("{prefix}d/loop")]);
    }

    #[cfg(unix)]
    #[test]
    fn a_confined_walk_never_follows_links_out_of_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("docs/inner")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.txt"), "secret").unwrap();
        std::fs::write(root.join("docs/inner/ok.txt"), "ok").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.txt"), root.join("docs/passwd.txt"))
            .unwrap();
        std::os::unix::fs::symlink(&outside, root.join("docs/mnt")).unwrap();
        std::os::unix::fs::symlink("inner", root.join("docs/alias")).unwrap();
        std::os::unix::fs::symlink("../../outside", root.join("docs/rel")).unwrap();
        std::os::unix::fs::symlink("/nonexistent", root.join("docs/dangling")).unwrap();
        let opts = WalkOptions {
            confine: true,
            source_prefix: Some("r/".into()),
            ..Default::default()
        };
        let w = walk(&root, &opts).unwrap();
        assert_eq!(ids(&w, "r/"), ["docs/alias/ok.txt", "docs/inner/ok.txt"]);
        let mut outside_ids = w.outside.clone();
        outside_ids.sort();
        assert_eq!(
            outside_ids,
            ["r/docs/mnt", "r/docs/passwd.txt", "r/docs/rel"]
        );
        // A link to nothing is an unreadable entry: reported, and what is stored under it kept.
        assert_eq!(w.unreadable, ["r/docs/dangling"]);
        // The default confines too.
        let w = walk(&root, &WalkOptions::default()).unwrap();
        assert!(!w.files.iter().any(|f| f.path.ends_with("docs/passwd.txt")));
        assert_eq!(w.outside.len(), 3);
        // Unconfined (`--follow-links`), links are followed.
        let opts = WalkOptions {
            confine: false,
            ..Default::default()
        };
        let w = walk(&root, &opts).unwrap();
        assert!(w.files.iter().any(|f| f.path.ends_with("docs/passwd.txt")));
        assert!(w
            .files
            .iter()
            .any(|f| f.path.ends_with("docs/mnt/secret.txt")));
        assert!(w.outside.is_empty());
    }
}
