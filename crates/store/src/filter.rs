//! Filters on search results, turned into the SQL predicate lance applies before the top-k
//! (prefiltering, so k results come back whenever k rows match).

use crate::error::{Result, StoreError};
use crate::schema::{sql_str, SOURCE_ID};

/// A restriction on which chunks a search may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Sources whose id starts with this string (a folder: `docs/`).
    SourcePrefix(String),
    /// Sources whose id matches a glob with `*` (any run of characters, `/` included) and `?`.
    SourceGlob(String),
    /// Exactly this source.
    Source(String),
}

impl Filter {
    /// Parses `source:PREFIX`, `source:GLOB` (with `*` or `?`) or `source=ID`.
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(id) = spec.strip_prefix("source=") {
            return Ok(Self::Source(id.to_string()));
        }
        let Some(pattern) = spec.strip_prefix("source:") else {
            return Err(StoreError::BadFilter(spec.to_string()));
        };
        if pattern.is_empty() {
            return Err(StoreError::BadFilter(spec.to_string()));
        }
        Ok(if pattern.contains(['*', '?']) {
            Self::SourceGlob(pattern.to_string())
        } else {
            Self::SourcePrefix(pattern.to_string())
        })
    }

    pub(crate) fn to_sql(&self) -> String {
        match self {
            Self::Source(id) => format!("{SOURCE_ID} = {}", sql_str(id)),
            Self::SourcePrefix(prefix) => {
                format!(
                    "{SOURCE_ID} LIKE {} ESCAPE '\\'",
                    sql_str(&format!("{}%", escape_like(prefix)))
                )
            }
            Self::SourceGlob(glob) => {
                let mut like = String::new();
                for c in glob.chars() {
                    match c {
                        '*' => like.push('%'),
                        '?' => like.push('_'),
                        '%' | '_' | '\\' => {
                            like.push('\\');
                            like.push(c);
                        }
                        c => like.push(c),
                    }
                }
                format!("{SOURCE_ID} LIKE {} ESCAPE '\\'", sql_str(&like))
            }
        }
    }
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// All filters AND'ed into one predicate, or `None`.
pub(crate) fn combined_sql(filters: &[Filter]) -> Option<String> {
    if filters.is_empty() {
        return None;
    }
    Some(
        filters
            .iter()
            .map(|f| format!("({})", f.to_sql()))
            .collect::<Vec<_>>()
            .join(" AND "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_translates_filters() {
        assert_eq!(
            Filter::parse("source:docs/").unwrap().to_sql(),
            r"source_id LIKE 'docs/%' ESCAPE '\'"
        );
        assert_eq!(
            Filter::parse("source:*.md").unwrap().to_sql(),
            r"source_id LIKE '%.md' ESCAPE '\'"
        );
        assert_eq!(
            Filter::parse("source:my_dir/it's?.txt").unwrap().to_sql(),
            r"source_id LIKE 'my\_dir/it''s_.txt' ESCAPE '\'"
        );
        assert_eq!(
            Filter::parse("source=a.md").unwrap().to_sql(),
            "source_id = 'a.md'"
        );
        assert!(Filter::parse("author:me").is_err());
        assert!(Filter::parse("source:").is_err());
    }
}
