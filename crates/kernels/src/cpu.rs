//! What this CPU can run, found once per process, and the switch that makes the kernels run less.
//!
//! Two questions are kept apart:
//! - [`detected`]: what the hardware and the OS allow. Every `unsafe` SIMD or tile call checks
//!   it, because running an instruction the CPU lacks is undefined behaviour (SIGILL at best).
//! - [`enabled`]: what the dispatch picks from. It is `detected` less what these switches turn
//!   off, to compare paths or to measure on one machine what an older CPU would run:
//!   - `FATHOM_CPU=avx512`: no AMX kernel;
//!   - `FATHOM_CPU=avx2`: no AVX-512 or AMX kernel (the int8 path of AVX2-only laptops and VMs);
//!   - `FATHOM_CPU=portable`: none of this crate's SIMD kernels, plain Rust loops only;
//!   - `FATHOM_AMX=0` and `FATHOM_INT8_VNNI=0`: one kernel each, as before `FATHOM_CPU`.
//!
//! The switch reaches the kernels written here. It does not reach the small f32 helpers that
//! `multiversion` compiles per instruction set (erf, exp, dot products), nor the sgemm of
//! OpenBLAS (which has its own switch, `OPENBLAS_CORETYPE=Haswell`) or of `gemm`. To hold a whole
//! process to AVX2, those included, preload `scripts/cpuid-avx2.c` (what
//! `scripts/bench-embed.sh --cpu avx2` does): CPUID itself then answers without AVX-512, AMX and
//! VNNI, so [`detected`] and every library in the process see an AVX2-only CPU.

use std::sync::OnceLock;

/// The instruction sets the kernels have paths for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Features {
    /// AVX2 and FMA: the f32 few-rows kernel and the int8 `vpmaddubsw` kernel.
    pub avx2: bool,
    /// AVX-512 F and BW: the int8 epilogue of the VNNI and AMX kernels.
    pub avx512: bool,
    /// AVX-512 VNNI (with F and BW): the int8 `vpdpbusd` kernel.
    pub avx512_vnni: bool,
    /// AVX-512 BF16 (with F): the bf16 kernel.
    pub avx512_bf16: bool,
    /// AMX tiles with int8 products, the OS granting their state to this process.
    pub amx_int8: bool,
    /// AMX tiles with bf16 products, the OS granting their state to this process.
    pub amx_bf16: bool,
}

impl Features {
    /// The names of the paths present, for logs and test output.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.avx2, "avx2"),
            (self.avx512, "avx512"),
            (self.avx512_vnni, "avx512-vnni"),
            (self.avx512_bf16, "avx512-bf16"),
            (self.amx_int8, "amx-int8"),
            (self.amx_bf16, "amx-bf16"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    /// These features less what `cpu` (a `FATHOM_CPU` value) and the per-kernel switches turn
    /// off; an unknown `cpu` value turns nothing off (and says so once, on stderr).
    fn capped(mut self, cpu: Option<&str>, amx_off: bool, vnni_off: bool) -> Self {
        match cpu.map(str::trim) {
            None | Some("" | "native") => {}
            Some("avx512") => self.no_amx(),
            Some("avx2") => {
                self.no_amx();
                self.avx512 = false;
                self.avx512_vnni = false;
                self.avx512_bf16 = false;
            }
            Some("portable") => self = Self::default(),
            Some(other) => eprintln!(
                "fathom: FATHOM_CPU=`{other}` is not one of native, avx512, avx2, portable; \
                 using every path this CPU has"
            ),
        }
        if amx_off {
            self.no_amx();
        }
        if vnni_off {
            self.avx512_vnni = false;
        }
        self
    }

    fn no_amx(&mut self) {
        self.amx_int8 = false;
        self.amx_bf16 = false;
    }
}

/// What this CPU and OS can run (the soundness condition of every SIMD call).
pub fn detected() -> Features {
    static DETECTED: OnceLock<Features> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

/// What the kernels dispatch to: [`detected`] less what `FATHOM_CPU`, `FATHOM_AMX=0` and
/// `FATHOM_INT8_VNNI=0` turn off.
pub fn enabled() -> Features {
    static ENABLED: OnceLock<Features> = OnceLock::new();
    *ENABLED.get_or_init(|| {
        let off = |name: &str| std::env::var(name).is_ok_and(|v| v == "0");
        detected().capped(
            std::env::var("FATHOM_CPU").ok().as_deref(),
            off("FATHOM_AMX"),
            off("FATHOM_INT8_VNNI"),
        )
    })
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Features {
    use std::arch::is_x86_feature_detected as has;
    let avx512 = has!("avx512f") && has!("avx512bw");
    let (amx_int8, amx_bf16) = amx();
    Features {
        avx2: has!("avx2") && has!("fma"),
        avx512,
        avx512_vnni: avx512 && has!("avx512vnni"),
        avx512_bf16: has!("avx512f") && has!("avx512bf16"),
        // The AMX kernels' epilogues are AVX-512 (every CPU with AMX has it).
        amx_int8: amx_int8 && avx512,
        amx_bf16: amx_bf16 && avx512,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Features {
    Features::default()
}

/// (AMX-INT8, AMX-BF16), each with AMX-TILE and the OS's permission to use tile data.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn amx() -> (bool, bool) {
    /// `ARCH_REQ_XCOMP_PERM` and `XFEATURE_XTILEDATA` (arch/x86/include/uapi/asm/prctl.h).
    const ARCH_REQ_XCOMP_PERM: libc::c_ulong = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_ulong = 18;
    // CPUID leaf 7 exists on every x86-64 CPU with AVX2; EDX bit 22 AMX-BF16, 24 AMX-TILE,
    // 25 AMX-INT8.
    if std::arch::x86_64::__cpuid(0).eax < 7 {
        return (false, false);
    }
    let edx = std::arch::x86_64::__cpuid_count(7, 0).edx;
    let (bf16, tile, int8) = (edx >> 22 & 1 == 1, edx >> 24 & 1 == 1, edx >> 25 & 1 == 1);
    if !tile || !(int8 || bf16) {
        return (false, false);
    }
    // SAFETY: arch_prctl with these arguments only asks the kernel for permission to use tile
    // data; it reads and writes no memory of ours.
    let granted = unsafe {
        libc::syscall(
            libc::SYS_arch_prctl,
            ARCH_REQ_XCOMP_PERM,
            XFEATURE_XTILEDATA,
        )
    } == 0;
    (granted && int8, granted && bf16)
}

#[cfg(all(target_arch = "x86_64", not(target_os = "linux")))]
fn amx() -> (bool, bool) {
    (false, false)
}

/// For the tests of one path: panics, naming the path, where this CPU cannot run it. The tests
/// that call it are marked `ignore` (with the reason) when the CPU the tests were built on
/// lacks the path (`build.rs`), so a run shows every path it did not test; run with
/// `--include-ignored` they fail here instead of passing without testing anything.
#[cfg(test)]
pub(crate) fn require(has: impl Fn(&Features) -> bool, path: &str) {
    assert!(
        has(&detected()),
        "this CPU cannot run the {path} path (it has: {:?})",
        detected().names()
    );
    assert!(
        has(&enabled()),
        "the {path} path is turned off by FATHOM_CPU, FATHOM_AMX or FATHOM_INT8_VNNI"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Features {
        Features {
            avx2: true,
            avx512: true,
            avx512_vnni: true,
            avx512_bf16: true,
            amx_int8: true,
            amx_bf16: true,
        }
    }

    #[test]
    fn the_switch_turns_paths_off_and_never_on() {
        assert_eq!(all().capped(None, false, false), all());
        assert_eq!(all().capped(Some("native"), false, false), all());
        assert_eq!(
            all().capped(Some("avx2"), false, false).names(),
            ["avx2"],
            "avx2 leaves only AVX2"
        );
        assert_eq!(
            all().capped(Some("avx512"), false, false).names(),
            ["avx2", "avx512", "avx512-vnni", "avx512-bf16"]
        );
        assert_eq!(
            all().capped(Some("portable"), false, false),
            Features::default()
        );
        assert_eq!(all().capped(Some("avx9"), false, false), all());
        let fewer = all().capped(None, true, true);
        assert!(!fewer.amx_int8 && !fewer.amx_bf16 && !fewer.avx512_vnni && fewer.avx512_bf16);
        // Capping never adds what the CPU lacks.
        assert_eq!(
            Features::default().capped(Some("avx512"), false, false),
            Features::default()
        );
    }

    #[test]
    fn detection_agrees_with_the_cpu_the_tests_were_built_on() {
        let here = detected();
        eprintln!("kernel paths on this CPU: {:?}", here.names());
        let built = [
            (cfg!(fathom_built_on = "avx2"), here.avx2, "avx2"),
            (
                cfg!(fathom_built_on = "avx512_vnni"),
                here.avx512_vnni,
                "avx512-vnni",
            ),
            (
                cfg!(fathom_built_on = "avx512_bf16"),
                here.avx512_bf16,
                "avx512-bf16",
            ),
            (
                cfg!(fathom_built_on = "amx_int8"),
                here.amx_int8,
                "amx-int8",
            ),
            (
                cfg!(fathom_built_on = "amx_bf16"),
                here.amx_bf16,
                "amx-bf16",
            ),
        ];
        for (at_build, now, path) in built {
            assert_eq!(
                at_build, now,
                "{path}: the build saw {at_build}, the run sees {now}: the tests were built on \
                 another CPU, so their per-path ignores are wrong here (touch build.rs and rerun)"
            );
        }
    }
}
