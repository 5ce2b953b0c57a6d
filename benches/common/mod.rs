//! Helpers shared by the benches.
#![allow(dead_code)]

/// SciFact documents as `title + " " + text`, the first `limit` (0: all).
pub fn read_scifact_docs(path: &str, limit: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let docs = text.lines().filter(|l| !l.trim().is_empty()).map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).expect("corpus line is JSON");
        format!(
            "{} {}",
            v["title"].as_str().unwrap_or(""),
            v["text"].as_str().unwrap_or("")
        )
    });
    if limit == 0 {
        docs.collect()
    } else {
        docs.take(limit).collect()
    }
}

/// A memory figure of this process from /proc/self/status (`VmRSS`, `VmHWM`), in MiB.
fn proc_status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Resident memory now, in MiB (Linux).
pub fn rss_mib() -> Option<f64> {
    proc_status_mib("VmRSS:")
}

/// Peak resident memory, in MiB (Linux).
pub fn peak_rss_mib() -> Option<f64> {
    proc_status_mib("VmHWM:")
}

/// The `q` quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}
