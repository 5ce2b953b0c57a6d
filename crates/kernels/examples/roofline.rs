//! The int8 and f32 linears of one thread against the instruction-level peak of that thread
//! (issue 33's roofline): GMAC/s (10⁹ multiply-adds a second) per shape, and the share of the
//! peak of the instructions each kernel runs (int8: the AVX2 mix; f32: 256-bit FMA). The AVX2 peaks
//! are what `FATHOM_CPU=avx2` measures on any x86 CPU; on an AVX-512 CPU without the cap, the int8
//! kernel runs VNNI or AMX and its share reads above 100%.
//!
//! ```sh
//! cargo run --release -p fathom-kernels --features openblas --example roofline [ROWS]
//! FATHOM_CPU=avx2 OPENBLAS_CORETYPE=Haswell cargo run ... --example roofline   # an AVX2-only CPU
//! ```
//! Shapes: all-MiniLM-L6-v2's four linears (hidden 384, feed-forward 1536) and a 768-wide
//! model's (BERT-base, 3072), at ROWS tokens (default 1024) and at 9 (a short query).

use std::time::Instant;

use fathom_kernels::{int8::QuantizedWeight, linear, linear_int8, Epilogue};

// As fathom's binaries: mimalloc, freed memory kept (MIMALLOC_PURGE_DELAY=-1, set below), so an
// output buffer is reused rather than page-faulted and zeroed by the OS on every call.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    // mimalloc reads its options from the environment as the process starts: run again with it.
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(std::env::args_os().skip(1))
            .env("MIMALLOC_PURGE_DELAY", "-1")
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let rows: usize = std::env::args()
        .nth(1)
        .map_or(1024, |a| a.parse().expect("ROWS"));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    pool.install(|| run(rows));
}

fn run(rows: usize) {
    let cpu = fathom_kernels::cpu::enabled();
    println!("kernels enabled: {}", cpu.names().join(", "));
    let madd = fathom_kernels::roofline::int8_avx2(0.5);
    let fma = fathom_kernels::roofline::f32_fma(0.5);
    if let Some(p) = madd {
        println!(
            "peak, one thread: vpmaddwd {:.1} GMAC/s; vpmaddwd + vpaddd {:.1}; \
             vpmaddubsw + vpmaddwd + vpaddd (the int8 kernel's mix) {:.1}",
            p.madd / 1e9,
            p.madd_add / 1e9,
            p.maddubs / 1e9
        );
    }
    if let Some(f) = fma {
        println!("peak, one thread: vfmadd231ps ymm {:.1} GMAC/s", f / 1e9);
    }
    let int8_peak = madd.map(|p| p.maddubs);
    println!(
        "{:<22}{:>6}{:>14}{:>9}{:>14}{:>9}{:>8}",
        "shape (n × k)", "rows", "int8 GMAC/s", "of peak", "f32 GMAC/s", "of peak", "ratio"
    );
    for (name, n, k) in [
        ("qkv 1152 × 384", 1152, 384),
        ("attn_out 384 × 384", 384, 384),
        ("ffn_up 1536 × 384", 1536, 384),
        ("ffn_down 384 × 1536", 384, 1536),
        ("qkv 2304 × 768", 2304, 768),
        ("ffn_up 3072 × 768", 3072, 768),
        ("ffn_down 768 × 3072", 768, 3072),
    ] {
        for rows in [rows, 9] {
            let x = fathom_kernels::pseudo_random(rows * k, 1);
            let w = fathom_kernels::pseudo_random(n * k, 2);
            let bias = fathom_kernels::pseudo_random(n, 3);
            let q = QuantizedWeight::quantize(&w, n, k);
            let macs = (rows * n * k) as f64;
            let int8 = best(macs, || {
                linear_int8(&x, rows, &q, Some(&bias), Epilogue::GeluErf);
            });
            let f32 = best(macs, || {
                linear(&x, rows, k, &w, n, Some(&bias), Epilogue::GeluErf);
            });
            let share = |rate: f64, peak: Option<f64>| {
                peak.map_or("-".to_string(), |p| format!("{:.0}%", 100.0 * rate / p))
            };
            println!(
                "{name:<22}{rows:>6}{:>14.1}{:>9}{:>14.1}{:>9}{:>8.2}",
                int8 / 1e9,
                share(int8, int8_peak),
                f32 / 1e9,
                share(f32, fma),
                int8 / f32
            );
        }
    }
}

/// Multiply-adds per second, the best of runs adding up to about half a second.
fn best(macs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let (mut best, start) = (f64::MAX, Instant::now());
    while start.elapsed().as_secs_f64() < 0.5 {
        let t = Instant::now();
        f();
        best = best.min(t.elapsed().as_secs_f64());
    }
    macs / best
}
