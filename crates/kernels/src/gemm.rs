//! Single-threaded `sgemm` on row-major slices: OpenBLAS with the `openblas` feature, else the
//! pure-Rust `gemm` crate. Callers parallelize around it (one rayon pool, never two).

#[cfg(feature = "openblas")]
mod blas {
    //! The two OpenBLAS entry points used; linked by build.rs.
    use std::ffi::c_int;

    pub const ROW_MAJOR: c_int = 101;
    pub const NO_TRANS: c_int = 111;
    pub const TRANS: c_int = 112;

    extern "C" {
        pub fn cblas_sgemm(
            layout: c_int,
            trans_a: c_int,
            trans_b: c_int,
            m: c_int,
            n: c_int,
            k: c_int,
            alpha: f32,
            a: *const f32,
            lda: c_int,
            b: *const f32,
            ldb: c_int,
            beta: f32,
            c: *mut f32,
            ldc: c_int,
        );
        pub fn openblas_set_num_threads(n: c_int);
    }

    /// OpenBLAS runs single-threaded inside our rayon tasks: one thread pool, not two competing
    /// for the same cores.
    pub fn init() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        // SAFETY: a plain setter that takes an integer and no pointers; called once, before any
        // sgemm.
        ONCE.call_once(|| unsafe { openblas_set_num_threads(1) });
    }
}

/// A row-major matrix operand: `data[row * ld + col]`, or its transpose when `trans`.
#[derive(Clone, Copy)]
pub(super) struct Mat<'a> {
    data: &'a [f32],
    ld: usize,
    trans: bool,
}

impl<'a> Mat<'a> {
    pub(super) fn new(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            ld,
            trans: false,
        }
    }

    pub(super) fn t(data: &'a [f32], ld: usize) -> Self {
        Self {
            data,
            ld,
            trans: true,
        }
    }

    /// Highest index element (r, c) of the operand with `rows × cols` reads, plus one.
    fn reach(&self, rows: usize, cols: usize) -> usize {
        let (r, c) = if self.trans {
            (cols, rows)
        } else {
            (rows, cols)
        };
        (r - 1) * self.ld + c
    }
}

/// `c = alpha · a·b + beta · c` for an m×k `a`, a k×n `b` and an m×n row-major `c` with leading
/// dimension `ldc`, on the calling thread. OpenBLAS with the `openblas` feature, else `gemm`.
#[allow(clippy::too_many_arguments)]
pub(super) fn sgemm(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: &mut [f32],
    ldc: usize,
) {
    assert!(m == 0 || c.len() >= (m - 1) * ldc + n);
    // SAFETY: the assert above puts the whole m×n block at row stride `ldc` inside `c`, and `c`
    // is an exclusive borrow, so no other thread can touch it during the call.
    unsafe { sgemm_raw(m, n, k, alpha, a, b, beta, c.as_mut_ptr(), ldc) }
}

/// [`sgemm`] into a raw destination.
///
/// # Safety
/// `c` must be valid for reads and writes of the m×n block at row stride `ldc`, and no other
/// thread may access that block during the call.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn sgemm_raw(
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    a: Mat,
    b: Mat,
    beta: f32,
    c: *mut f32,
    ldc: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!(k > 0 && a.data.len() >= a.reach(m, k) && b.data.len() >= b.reach(k, n) && ldc >= n);
    #[cfg(feature = "openblas")]
    {
        blas::init();
        let op = |t: bool| if t { blas::TRANS } else { blas::NO_TRANS };
        // SAFETY: the assert above bounds every element OpenBLAS reads (`a` up to
        // `a.reach(m, k)`, `b` up to `b.reach(k, n)`, both live borrows); the caller guarantees
        // the m×n block at stride `ldc` that it writes (`c`).
        unsafe {
            blas::cblas_sgemm(
                blas::ROW_MAJOR,
                op(a.trans),
                op(b.trans),
                m as i32,
                n as i32,
                k as i32,
                alpha,
                a.data.as_ptr(),
                a.ld as i32,
                b.data.as_ptr(),
                b.ld as i32,
                beta,
                c,
                ldc as i32,
            );
        }
    }
    #[cfg(not(feature = "openblas"))]
    {
        // gemm computes dst = alpha·dst + beta·lhs·rhs with explicit (column, row) strides.
        let strides = |m: &Mat| {
            if m.trans {
                (m.ld as isize, 1)
            } else {
                (1, m.ld as isize)
            }
        };
        let (a_cs, a_rs) = strides(&a);
        let (b_cs, b_rs) = strides(&b);
        // SAFETY: the assert above bounds every element gemm reads (`a` up to `a.reach(m, k)`,
        // `b` up to `b.reach(k, n)`, both live borrows); the caller guarantees the m×n block at
        // stride `ldc` that it writes (`c`). `Parallelism::None`: gemm stays on this thread.
        unsafe {
            ::gemm::gemm(
                m,
                n,
                k,
                c,
                1,
                ldc as isize,
                beta != 0.0,
                a.data.as_ptr(),
                a_cs,
                a_rs,
                b.data.as_ptr(),
                b_cs,
                b_rs,
                beta,
                alpha,
                false,
                false,
                false,
                ::gemm::Parallelism::None,
            );
        }
    }
}
