//! Walking a folder with the `ignore` crate: .gitignore and hidden files respected by default,
//! include/exclude globs, a size limit; problems are collected, never fatal.

use std::path::{Path, PathBuf};

use ignore::overrides::OverrideBuilder;
use ignore::WalkBuilder;

/// What to walk and what to leave out.
#[derive(Debug, Clone)]
pub struct WalkOptions {
    /// Globs a file must match (any of them), relative to the root; empty: every file.
    pub include: Vec<String>,
    /// Globs that leave files out.
    pub exclude: Vec<String>,
    /// Files larger than this are skipped and counted.
    pub max_file_size: u64,
    /// Also walk hidden files and folders.
    pub hidden: bool,
    /// Ignore .gitignore / .ignore files.
    pub no_ignore: bool,
    /// What source ids start with; `None`: the root as named ([`source_prefix`]). The server
    /// sets it to the folder's path under its ingest root.
    pub source_prefix: Option<String>,
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
            source_prefix: None,
        }
    }
}

/// A file to consider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub path: PathBuf,
    pub source_id: String,
    pub size: u64,
}

/// A file the walk could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileProblem {
    pub path: String,
    pub message: String,
    pub kind: ProblemKind,
}

/// What kind of trouble a [`FileProblem`] is: how the summary counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ProblemKind {
    /// Could not be read or walked: an error, and its stored chunks are kept.
    #[default]
    Error,
    /// A binary file, skipped.
    Binary,
    /// JSON without the text field, skipped.
    NoText,
    /// Invalid UTF-8, decoded with replacement characters: a warning, the file is ingested.
    LossyUtf8,
}

#[derive(Debug, Default)]
pub struct Walked {
    pub files: Vec<FileEntry>,
    /// Files over the size limit (their source ids): skipped.
    pub too_large: Vec<String>,
    /// Unreadable entries, symlink loops, bad globs...
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

/// Walks `root`. Blocking (file system I/O).
pub fn walk(root: &Path, options: &WalkOptions) -> Result<Walked, String> {
    if !root.is_dir() {
        return Err(format!("`{}` is not a folder", root.display()));
    }
    let mut overrides = OverrideBuilder::new(root);
    for glob in &options.include {
        overrides
            .add(glob)
            .map_err(|e| format!("bad --include glob `{glob}`: {e}"))?;
    }
    for glob in &options.exclude {
        overrides
            .add(&format!("!{glob}"))
            .map_err(|e| format!("bad --exclude glob `{glob}`: {e}"))?;
    }
    let overrides = overrides.build().map_err(|e| e.to_string())?;
    let prefix = options.prefix_for(root);
    let mut walked = Walked::default();
    let walker = WalkBuilder::new(root)
        .hidden(!options.hidden)
        .git_ignore(!options.no_ignore)
        .git_exclude(!options.no_ignore)
        .ignore(!options.no_ignore)
        .parents(!options.no_ignore)
        .git_global(false)
        .require_git(false)
        .follow_links(true)
        .overrides(overrides)
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    for entry in walker {
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                walked.problems.push(FileProblem {
                    path: error_path(&err).unwrap_or_else(|| root.display().to_string()),
                    message: err.to_string(),
                    kind: ProblemKind::Error,
                });
                continue;
            }
        };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let path = entry.path().to_path_buf();
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let source_id = format!("{prefix}{rel}");
        match entry.metadata() {
            Ok(meta) if meta.len() > options.max_file_size => walked.too_large.push(source_id),
            Ok(meta) => walked.files.push(FileEntry {
                path,
                source_id,
                size: meta.len(),
            }),
            Err(err) => walked.problems.push(FileProblem {
                path: path.display().to_string(),
                message: err.to_string(),
                kind: ProblemKind::Error,
            }),
        }
    }
    Ok(walked)
}

fn error_path(err: &ignore::Error) -> Option<String> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.display().to_string()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.display().to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let ids: Vec<String> = w
            .files
            .iter()
            .map(|f| f.source_id.strip_prefix(&prefix).unwrap().to_string())
            .collect();
        assert_eq!(ids, ["a.md", "sub/b.txt"]);
        assert_eq!(w.too_large.len(), 1);
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
        let ids: Vec<String> = walk(root, &opts)
            .unwrap()
            .files
            .iter()
            .map(|f| f.source_id.strip_prefix(&prefix).unwrap().to_string())
            .collect();
        assert_eq!(ids, [".gitignore", ".hidden/c.txt", "a.md"]);
        assert!(walk(&root.join("nope"), &WalkOptions::default()).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_are_reported_not_fatal() {
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
    }
}
