//! Filters on search results, turned into the SQL predicate lance applies before the top-k
//! (prefiltering, so k results come back whenever k rows match).

use crate::error::{Result, StoreError};
use crate::schema::{sql_str, METADATA, SOURCE_ID};

/// A restriction on which chunks a search may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Sources whose id starts with this string (a folder: `docs/`).
    SourcePrefix(String),
    /// Sources whose id matches a glob with `*` (any run of characters, `/` included) and `?`.
    SourceGlob(String),
    /// Exactly this source.
    Source(String),
    /// Chunks whose JSON metadata holds `value` under `key`: the string `value`, or the number,
    /// boolean or null it spells (`meta.year=2024` matches `"year": 2024` and `"year": "2024"`).
    Metadata { key: String, value: String },
}

impl Filter {
    /// Parses `source:PREFIX`, `source:GLOB` (with `*` or `?`), `source=ID` or `meta.KEY=VALUE`.
    pub fn parse(spec: &str) -> Result<Self> {
        if let Some(id) = spec.strip_prefix("source=") {
            return Ok(Self::Source(id.to_string()));
        }
        if let Some(rest) = spec.strip_prefix("meta.") {
            return match rest.split_once('=') {
                Some((key, value)) if !key.is_empty() => Ok(Self::Metadata {
                    key: key.to_string(),
                    value: value.to_string(),
                }),
                _ => Err(StoreError::BadFilter(spec.to_string())),
            };
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
            Self::Metadata { key, value } => {
                // Metadata is stored as compact JSON (serde_json), so `"key":value` appears
                // verbatim; a scalar literal must be followed by `,` or `}` to end there.
                let key = serde_json::Value::String(key.clone()).to_string();
                let as_string = serde_json::Value::String(value.clone()).to_string();
                let mut patterns = vec![format!("%{}:{}%", key, as_string)];
                if let Ok(literal) = serde_json::from_str::<serde_json::Value>(value) {
                    if !literal.is_string() && !literal.is_object() && !literal.is_array() {
                        for end in [',', '}'] {
                            patterns.push(format!("%{key}:{literal}{end}%"));
                        }
                    }
                }
                patterns
                    .iter()
                    .map(|p| {
                        format!(
                            "{METADATA} LIKE {} ESCAPE '\\'",
                            sql_str(&escape_like_keep_percent(p))
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" OR ")
            }
        }
    }
}

/// Escapes LIKE's `_` and `\` in a pattern whose `%` wildcards are meant (and `%` inside the
/// JSON text, which is escaped as `\%` only when it is not a leading or trailing wildcard).
fn escape_like_keep_percent(pattern: &str) -> String {
    let inner = &pattern[1..pattern.len() - 1];
    format!("%{}%", escape_like(inner))
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
        assert_eq!(
            Filter::parse("meta.lang=en").unwrap().to_sql(),
            r#"metadata LIKE '%"lang":"en"%' ESCAPE '\'"#
        );
        assert_eq!(
            Filter::parse("meta.year=2024").unwrap().to_sql(),
            r#"metadata LIKE '%"year":"2024"%' ESCAPE '\' OR metadata LIKE '%"year":2024,%' ESCAPE '\' OR metadata LIKE '%"year":2024}%' ESCAPE '\'"#
        );
        assert_eq!(
            Filter::parse("meta.a_b=x%").unwrap().to_sql(),
            r#"metadata LIKE '%"a\_b":"x\%"%' ESCAPE '\'"#
        );
        assert!(Filter::parse("meta.=x").is_err());
        assert!(Filter::parse("meta.k").is_err());
        assert!(Filter::parse("author:me").is_err());
        assert!(Filter::parse("source:").is_err());
    }
}
