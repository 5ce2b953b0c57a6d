//! Jupyter notebooks (.ipynb, nbformat 4, and the cells of nbformat 3's first worksheet): one
//! [`Location::Cell`] section per markdown, code or raw cell, numbered from 1 as Jupyter shows
//! them. A code cell's text outputs (stream output and the text/plain of results) follow its
//! source after "Output:", at most [`MAX_OUTPUT_BYTES`] per cell; images, HTML and errors are
//! left out. JSON nesting is bounded by serde_json's recursion limit (128): deeper is an error.

use serde_json::Value;

use super::{Budget, Builder, Location, ReadResult};

/// Text output kept per code cell.
pub const MAX_OUTPUT_BYTES: usize = 2048;

/// Reads an .ipynb.
pub fn read(bytes: &[u8], budget: &Budget) -> ReadResult {
    let nb: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not a readable Jupyter notebook: {e}"))?;
    let cells = nb
        .get("cells")
        .or_else(|| nb.get("worksheets")?.get(0)?.get("cells"))
        .and_then(Value::as_array)
        .ok_or_else(|| "not a readable Jupyter notebook: no cells".to_string())?;
    let mut b = Builder::new(budget);
    for (i, cell) in cells.iter().enumerate() {
        let source = cell.get("source").or_else(|| cell.get("input"));
        let mut text = source.map(joined).unwrap_or_default();
        if cell.get("cell_type").and_then(Value::as_str) == Some("code") {
            let out = outputs(cell);
            if !out.trim().is_empty() {
                text.push_str("\n\nOutput:\n");
                text.push_str(out.trim_end());
            }
        }
        let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
        b.push(Some(Location::Cell { cell: n }), text)?;
    }
    b.finish()
}

/// A multiline string: a string, or a list of strings to concatenate.
fn joined(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(Value::as_str).collect(),
        _ => String::new(),
    }
}

/// A code cell's text outputs, cut at [`MAX_OUTPUT_BYTES`].
fn outputs(cell: &Value) -> String {
    let mut out = String::new();
    let Some(list) = cell.get("outputs").and_then(Value::as_array) else {
        return out;
    };
    for o in list {
        let text = match o.get("output_type").and_then(Value::as_str) {
            Some("stream") => o.get("text").map(joined),
            Some("execute_result" | "display_data" | "pyout") => o
                .get("data")
                .and_then(|d| d.get("text/plain"))
                .or_else(|| o.get("text"))
                .map(joined),
            _ => None,
        };
        if let Some(t) = text {
            out.push_str(&t);
            if !out.ends_with('\n') {
                out.push('\n');
            }
        }
        if out.len() > MAX_OUTPUT_BYTES {
            let mut cut = MAX_OUTPUT_BYTES;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SAMPLE: &str = r##"{
 "cells": [
  {"cell_type": "markdown", "id": "a1", "metadata": {}, "source": ["# Analysis\n", "\n", "Loading *data*."]},
  {"cell_type": "code", "execution_count": 1, "id": "a2", "metadata": {}, "source": "import pandas as pd\ndf = pd.read_csv('x.csv')\ndf.shape",
   "outputs": [
    {"output_type": "stream", "name": "stdout", "text": ["loaded\n"]},
    {"output_type": "execute_result", "execution_count": 1, "metadata": {}, "data": {"text/plain": ["(10, 3)"], "image/png": "iVBORw0KGgo="}},
    {"output_type": "error", "ename": "E", "evalue": "x", "traceback": ["boom"]}
   ]},
  {"cell_type": "code", "execution_count": null, "id": "a3", "metadata": {}, "source": [], "outputs": []},
  {"cell_type": "raw", "id": "a4", "metadata": {}, "source": "raw text"}
 ],
 "metadata": {"kernelspec": {"name": "python3"}},
 "nbformat": 4, "nbformat_minor": 5
}"##;

    #[test]
    fn reads_cells() {
        let doc = read(SAMPLE.as_bytes(), &Budget::default()).unwrap();
        let got = super::super::testutil::located(&doc);
        assert_eq!(
            got,
            vec![
                (Location::Cell { cell: 1 }, "# Analysis\n\nLoading *data*."),
                (
                    Location::Cell { cell: 2 },
                    "import pandas as pd\ndf = pd.read_csv('x.csv')\ndf.shape\n\nOutput:\nloaded\n(10, 3)"
                ),
                (Location::Cell { cell: 4 }, "raw text"),
            ]
        );
    }

    #[test]
    fn outputs_are_capped() {
        let big = "y".repeat(10_000);
        let nb = format!(
            r#"{{"cells":[{{"cell_type":"code","source":"print(y)","outputs":[{{"output_type":"stream","name":"stdout","text":"{big}"}}]}}],"nbformat":4}}"#
        );
        let doc = read(nb.as_bytes(), &Budget::default()).unwrap();
        let text = &doc.sections[0].text;
        assert!(text.len() < 2200 && text.ends_with('…'), "{}", text.len());
    }

    #[test]
    fn deep_json_is_an_error() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        let err = read(deep.as_bytes(), &Budget::default()).unwrap_err();
        assert!(err.contains("recursion limit"), "{err}");
        let deep = format!(
            r#"{{"cells":[{{"source":{}"x"{}}}]}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        assert!(read(deep.as_bytes(), &Budget::default()).is_err());
    }

    #[test]
    fn not_a_notebook() {
        let err = read(b"{\"a\":1}", &Budget::default()).unwrap_err();
        assert_eq!(err, "not a readable Jupyter notebook: no cells");
    }
}
