//! Links OpenBLAS when the `openblas` feature is on (its sgemm is what `linear` calls), and tells
//! the tests which kernel paths the CPU they are built on runs (`cfg(fathom_built_on = "…")`),
//! so that a test of a path this CPU lacks is reported as ignored, with its reason, instead of
//! passing without running (see `src/cpu.rs`).
//!
//! Static by default, so the binary needs no OpenBLAS at run time: the archive is looked for in
//! `FATHOM_OPENBLAS_LIB_DIR`, then in Debian's and the usual places (Debian: `apt-get install
//! libopenblas-dev`). `FATHOM_OPENBLAS_DYNAMIC=1` links the shared library instead.

fn main() {
    cpu_paths();
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=FATHOM_OPENBLAS_LIB_DIR");
    println!("cargo:rerun-if-env-changed=FATHOM_OPENBLAS_DYNAMIC");
    if std::env::var_os("CARGO_FEATURE_OPENBLAS").is_none() {
        return;
    }
    let mut dirs: Vec<std::path::PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("FATHOM_OPENBLAS_LIB_DIR") {
        dirs.push(dir.into());
    }
    for dir in [
        "/usr/lib/x86_64-linux-gnu/openblas-pthread",
        "/usr/lib/aarch64-linux-gnu/openblas-pthread",
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/local/lib",
        "/usr/lib",
        "/opt/homebrew/opt/openblas/lib",
    ] {
        dirs.push(dir.into());
    }
    let dynamic = std::env::var("FATHOM_OPENBLAS_DYNAMIC").is_ok_and(|v| v == "1");
    let wanted = if dynamic {
        "libopenblas.so"
    } else {
        "libopenblas.a"
    };
    match dirs.iter().find(|d| d.join(wanted).is_file()) {
        Some(dir) => {
            println!("cargo:rustc-link-search=native={}", dir.display());
            if dynamic {
                println!("cargo:rustc-link-lib=dylib=openblas");
            } else {
                println!("cargo:rustc-link-lib=static=openblas");
                println!("cargo:rustc-link-lib=dylib=pthread");
                println!("cargo:rustc-link-lib=dylib=m");
            }
        }
        None => panic!(
            "the `openblas` feature needs OpenBLAS ({wanted} not found; Debian/Ubuntu: apt-get install libopenblas-dev, \
             or set FATHOM_OPENBLAS_LIB_DIR, or build with --no-default-features to use the pure-Rust gemm)"
        ),
    }
}

/// The kernel paths of the CPU this build runs on, for the tests' `ignore` marks. Only for a
/// native build (a cross build's tests run elsewhere: every path is then left unmarked as
/// absent). Rerun when `/proc/cpuinfo` is newer than the last run (its time is when procfs was
/// mounted: a new boot or container), so a target directory carried to another machine is
/// mostly re-checked; the `detection_agrees_with_the_cpu_the_tests_were_built_on` test catches
/// the rest.
fn cpu_paths() {
    println!(
        "cargo::rustc-check-cfg=cfg(fathom_built_on, values(\"avx2\", \"avx512_vnni\", \"avx512_bf16\", \"amx_int8\", \"amx_bf16\"))"
    );
    let native = std::env::var("TARGET").ok() == std::env::var("HOST").ok();
    if !native {
        return;
    }
    let Ok(cpuinfo) = std::fs::read_to_string("/proc/cpuinfo") else {
        return;
    };
    println!("cargo:rerun-if-changed=/proc/cpuinfo");
    let flags: std::collections::HashSet<&str> = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("flags"))
        .and_then(|rest| rest.split_once(':'))
        .map(|(_, flags)| flags.split_whitespace().collect())
        .unwrap_or_default();
    let has = |names: &[&str]| names.iter().all(|n| flags.contains(n));
    let avx512 = has(&["avx512f", "avx512bw"]);
    for (path, present) in [
        ("avx2", has(&["avx2", "fma"])),
        ("avx512_vnni", avx512 && has(&["avx512_vnni"])),
        ("avx512_bf16", has(&["avx512f", "avx512_bf16"])),
        ("amx_int8", avx512 && has(&["amx_tile", "amx_int8"])),
        ("amx_bf16", avx512 && has(&["amx_tile", "amx_bf16"])),
    ] {
        if present {
            println!("cargo::rustc-cfg=fathom_built_on=\"{path}\"");
        }
    }
}
