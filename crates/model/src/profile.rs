//! Opt-in timing of the forward pass by op (`FATHOM_PROFILE=1`), read back with [`report`]:
//! where the time goes, measured on the real model rather than guessed.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

fn enabled() -> bool {
    static ENABLED: OnceLock<bool> = OnceLock::new();
    *ENABLED.get_or_init(|| std::env::var("FATHOM_PROFILE").is_ok_and(|v| v == "1"))
}

fn totals() -> &'static Mutex<BTreeMap<&'static str, (f64, u64)>> {
    static TOTALS: OnceLock<Mutex<BTreeMap<&'static str, (f64, u64)>>> = OnceLock::new();
    TOTALS.get_or_init(Default::default)
}

/// Records the time until it is dropped under `name` (nothing when profiling is off).
pub(crate) struct Span {
    name: &'static str,
    start: Instant,
}

pub(crate) fn span(name: &'static str) -> Option<Span> {
    enabled().then(|| Span {
        name,
        start: Instant::now(),
    })
}

impl Drop for Span {
    fn drop(&mut self) {
        let secs = self.start.elapsed().as_secs_f64();
        if let Ok(mut t) = totals().lock() {
            let entry = t.entry(self.name).or_insert((0.0, 0));
            entry.0 += secs;
            entry.1 += 1;
        }
    }
}

/// Seconds and calls per op since the start of the process (empty unless `FATHOM_PROFILE=1`).
pub fn report() -> Vec<(String, f64, u64)> {
    totals()
        .lock()
        .map(|t| {
            t.iter()
                .map(|(k, (s, n))| (k.to_string(), *s, *n))
                .collect()
        })
        .unwrap_or_default()
}

/// Forgets what was recorded so far (after a warm-up, say).
pub fn reset() {
    if let Ok(mut t) = totals().lock() {
        t.clear();
    }
}
