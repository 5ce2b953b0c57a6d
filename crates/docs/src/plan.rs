//! The sync plan: what an ingest of a folder will do to each source, decided from the walk, the
//! files' hashes and what the collection holds — before anything is read, chunked or embedded.
//!
//! The one rule that matters most: a stored source is deleted only when a walk that could see
//! where it lives did not find it. A file that could not be read, and everything stored under a
//! folder that could not be listed, is kept; a walk with an error that cannot be placed deletes
//! nothing. Files deliberately left out (over the size limit, links out of a confined root) are
//! not part of the collection, so their stored chunks go.

use std::collections::{BTreeSet, HashMap};

use crate::walk::FileEntry;

/// One walked file after hashing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Read and hashed (its bytes and the chunking).
    File { entry: FileEntry, hash: String },
    /// Not part of the collection this time: over the size limit, a link out of the root.
    Excluded { source_id: String },
    /// Could not be listed or read: a file, or a folder (`id` covers everything under `id/`).
    Unreadable { source_id: String },
}

/// A file to read, chunk and embed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToEmbed {
    pub entry: FileEntry,
    /// Not stored before (an add, not a replace).
    pub is_new: bool,
}

/// What a sync does to each source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncPlan {
    /// New and changed files, in walk order.
    pub embed: Vec<ToEmbed>,
    /// Stored with the same hash: nothing to do.
    pub unchanged: Vec<String>,
    /// Stored, and not deleted although not (readably) seen: unreadable, or under a folder that
    /// could not be listed, or the walk was incomplete.
    pub keep: Vec<String>,
    /// Stored, and gone from the folder (or left out of it now).
    pub delete: Vec<String>,
}

impl SyncPlan {
    /// `stored`: the collection's sources in this folder's scope, with their hashes. `complete`:
    /// whether every error of the walk could be tied to a place under the root.
    pub fn new(stored: &HashMap<String, String>, seen: Vec<Seen>, complete: bool) -> Self {
        let mut plan = SyncPlan::default();
        let mut accounted: BTreeSet<String> = BTreeSet::new();
        let mut unreadable_folders: Vec<String> = Vec::new();
        let mut excluded: Vec<String> = Vec::new();
        for item in seen {
            match item {
                Seen::File { entry, hash } => {
                    accounted.insert(entry.source_id.clone());
                    match stored.get(&entry.source_id) {
                        Some(old) if *old == hash => plan.unchanged.push(entry.source_id),
                        old => plan.embed.push(ToEmbed {
                            is_new: old.is_none(),
                            entry,
                        }),
                    }
                }
                Seen::Excluded { source_id } => excluded.push(source_id),
                Seen::Unreadable { source_id } => {
                    unreadable_folders.push(format!("{source_id}/"));
                    if stored.contains_key(&source_id) {
                        plan.keep.push(source_id.clone());
                    }
                    accounted.insert(source_id);
                }
            }
        }
        let under_unreadable = |id: &str| {
            unreadable_folders
                .iter()
                .any(|f| id.starts_with(f.as_str()))
        };
        for id in excluded {
            if stored.contains_key(&id) && accounted.insert(id.clone()) {
                // Seen and left out, but its folder may not have been listed to the end (an
                // error part-way): what is under an unreadable folder is kept, always.
                if under_unreadable(&id) {
                    plan.keep.push(id);
                } else {
                    plan.delete.push(id);
                }
            }
        }
        let mut rest: Vec<&String> = stored
            .keys()
            .filter(|id| !accounted.contains(*id))
            .collect();
        rest.sort();
        for id in rest {
            if complete && !under_unreadable(id) {
                plan.delete.push(id.clone());
            } else {
                plan.keep.push(id.clone());
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn file(id: &str, hash: &str) -> Seen {
        Seen::File {
            entry: FileEntry {
                path: PathBuf::from(id),
                rel: PathBuf::from(id),
                source_id: id.into(),
                size: 1,
            },
            hash: hash.into(),
        }
    }

    fn stored(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn embed_ids(plan: &SyncPlan) -> Vec<(&str, bool)> {
        plan.embed
            .iter()
            .map(|e| (e.entry.source_id.as_str(), e.is_new))
            .collect()
    }

    #[test]
    fn adds_replaces_skips_and_deletes() {
        let s = stored(&[("a", "1"), ("b", "2"), ("gone", "3")]);
        let plan = SyncPlan::new(
            &s,
            vec![file("a", "1"), file("b", "changed"), file("new", "9")],
            true,
        );
        assert_eq!(embed_ids(&plan), [("b", false), ("new", true)]);
        assert_eq!(plan.unchanged, ["a"]);
        assert_eq!(plan.delete, ["gone"]);
        assert!(plan.keep.is_empty());
    }

    #[test]
    fn unreadable_files_and_folders_keep_what_is_stored() {
        let s = stored(&[
            ("a", "1"),
            ("sub/x", "2"),
            ("sub/y/z", "3"),
            ("subway", "4"),
            ("sub/big", "5"),
        ]);
        let plan = SyncPlan::new(
            &s,
            vec![
                Seen::Unreadable {
                    source_id: "a".into(),
                },
                // Seen before its folder's listing failed part-way: kept like the rest of it
                // (found by the property test below).
                Seen::Excluded {
                    source_id: "sub/big".into(),
                },
                Seen::Unreadable {
                    source_id: "sub".into(),
                },
            ],
            true,
        );
        assert!(plan.embed.is_empty());
        assert_eq!(plan.keep, ["a", "sub/big", "sub/x", "sub/y/z"]);
        // `subway` is not under the folder `sub`.
        assert_eq!(plan.delete, ["subway"]);
    }

    #[test]
    fn an_incomplete_walk_deletes_nothing() {
        let s = stored(&[("a", "1"), ("b", "2")]);
        let plan = SyncPlan::new(&s, vec![file("a", "1")], false);
        assert!(plan.delete.is_empty());
        assert_eq!(plan.keep, ["b"]);
    }

    #[test]
    fn excluded_files_leave_the_collection() {
        let s = stored(&[("big", "1"), ("link", "2")]);
        let plan = SyncPlan::new(
            &s,
            vec![
                Seen::Excluded {
                    source_id: "big".into(),
                },
                Seen::Excluded {
                    source_id: "link".into(),
                },
                Seen::Excluded {
                    source_id: "never-stored".into(),
                },
            ],
            false,
        );
        assert_eq!(plan.delete, ["big", "link"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]
        /// Whatever the walk saw: every stored source lands in exactly one of the plan's lists,
        /// a source is deleted only if the walk was complete and did not see it readably, and
        /// nothing seen readably or unreadable is ever deleted.
        #[test]
        fn every_stored_source_is_accounted_for_once(
            stored_ids in proptest::collection::btree_map("[a-c]{1,2}(/[a-c]{1,2}){0,2}", "[01]", 0..12),
            seen_items in proptest::collection::vec(("[a-c]{1,2}(/[a-c]{1,2}){0,2}", 0u8..4), 0..12),
            complete in proptest::bool::ANY,
        ) {
            let s: HashMap<String, String> = stored_ids.into_iter().collect();
            let mut seen = Vec::new();
            let mut seen_ids = BTreeSet::new();
            for (id, what) in seen_items {
                if !seen_ids.insert(id.clone()) {
                    continue;
                }
                seen.push(match what {
                    0 => file(&id, "0"),
                    1 => file(&id, "1"),
                    2 => Seen::Excluded { source_id: id },
                    _ => Seen::Unreadable { source_id: id },
                });
            }
            let plan = SyncPlan::new(&s, seen.clone(), complete);
            let mut all: Vec<String> = plan.unchanged.clone();
            all.extend(plan.keep.iter().cloned());
            all.extend(plan.delete.iter().cloned());
            all.extend(plan.embed.iter().filter(|e| !e.is_new).map(|e| e.entry.source_id.clone()));
            let mut sorted = all.clone();
            sorted.sort();
            sorted.dedup();
            proptest::prop_assert_eq!(sorted.len(), all.len(), "a source in two lists: {:?}", plan);
            let mut want: Vec<String> = s.keys().cloned().collect();
            want.sort();
            proptest::prop_assert_eq!(sorted, want);
            for item in &seen {
                match item {
                    Seen::File { entry, .. } => proptest::prop_assert!(!plan.delete.contains(&entry.source_id)),
                    Seen::Unreadable { source_id } => {
                        let folder = format!("{source_id}/");
                        proptest::prop_assert!(!plan.delete.iter().any(|d| d == source_id || d.starts_with(&folder)));
                    }
                    Seen::Excluded { .. } => {}
                }
            }
            if !complete {
                for d in &plan.delete {
                    let excluded = seen.iter().any(|i| matches!(i, Seen::Excluded { source_id } if source_id == d));
                    proptest::prop_assert!(excluded, "{} deleted after an incomplete walk", d);
                }
            }
        }
    }
}
