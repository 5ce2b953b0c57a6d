//! Links OpenBLAS when the `openblas` feature is on (its sgemm is what `kernels::linear` calls).
//!
//! Static by default, so the binary needs no OpenBLAS at run time: the archive is looked for in
//! `FATHOM_OPENBLAS_LIB_DIR`, then in Debian's and the usual places (Debian: `apt-get install
//! libopenblas-dev`). `FATHOM_OPENBLAS_DYNAMIC=1` links the shared library instead.

fn main() {
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
