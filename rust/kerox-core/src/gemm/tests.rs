//! Tests of `gemm::matmul` against a naive f64 triple loop, at every available level.

use super::*;

/// Deterministic pseudo-random values in [-1, 1).
fn rand_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn at(x: &MatRef<'_>, r: usize, c: usize) -> f32 {
    x.data[r * x.row_stride + c * x.col_stride]
}

/// The stride patterns the engine uses, plus a generic padded/strided one.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    /// Transposed view of a row-major buffer (row stride 1).
    Transposed,
    /// Both strides > 1 (a strided sub-view of a larger buffer).
    Strided,
}

/// A rows×cols view with the given layout over a freshly filled buffer.
fn make(rows: usize, cols: usize, layout: Layout, seed: u64) -> (Vec<f32>, usize, usize) {
    match layout {
        Layout::RowMajor => (rand_vec(rows * cols, seed), cols, 1),
        Layout::Transposed => (rand_vec(rows * cols, seed), 1, rows),
        Layout::Strided => {
            let (rs, cs) = (2 * cols + 3, 2);
            let len = if rows == 0 || cols == 0 {
                0
            } else {
                (rows - 1) * rs + (cols - 1) * cs + 1
            };
            (rand_vec(len, seed), rs, cs)
        }
    }
}

fn view(data: &[f32], rows: usize, cols: usize, rs: usize, cs: usize) -> MatRef<'_> {
    MatRef {
        data,
        rows,
        cols,
        row_stride: rs,
        col_stride: cs,
    }
}

/// Runs one product at `level` and checks it against f64 within
/// `|err| <= 1e-5 * sqrt(k) * Σ_p |a_ip·b_pj| + 1e-30` (plus the original c when accumulating).
#[allow(clippy::too_many_arguments)]
fn check(
    level: Level,
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
    acc: bool,
    threads: usize,
) {
    let (ad, ars, acs) = make(m, k, la, 1 + m as u64 * 7 + k as u64);
    let (bd, brs, bcs) = make(k, n, lb, 2 + n as u64 * 11 + k as u64);
    let a = view(&ad, m, k, ars, acs);
    let b = view(&bd, k, n, brs, bcs);
    let rs_c = n + 5;
    let c0 = rand_vec(m * rs_c, 99);
    let mut c = if acc {
        c0.clone()
    } else {
        vec![f32::NAN; m * rs_c]
    };
    let mut scratch = GemmScratch::new();
    matmul(
        level,
        MatMut {
            data: &mut c,
            rows: m,
            cols: n,
            row_stride: rs_c,
        },
        a,
        b,
        acc,
        &mut scratch,
        threads,
    );
    let tol = 1e-5 * (k.max(1) as f64).sqrt();
    for i in 0..m {
        for j in 0..n {
            let mut s = if acc { c0[i * rs_c + j] as f64 } else { 0.0 };
            let mut mag = s.abs();
            for p in 0..k {
                let t = at(&a, i, p) as f64 * at(&b, p, j) as f64;
                s += t;
                mag += t.abs();
            }
            let got = c[i * rs_c + j] as f64;
            assert!(
                (got - s).abs() <= tol * mag + 1e-30,
                "{level:?} m={m} n={n} k={k} {la:?}/{lb:?} acc={acc} t={threads}: c[{i},{j}] = {got}, want {s}"
            );
        }
        // Padding columns of c are never touched.
        for j in n..rs_c {
            let got = c[i * rs_c + j];
            if acc {
                assert_eq!(got.to_bits(), c0[i * rs_c + j].to_bits(), "padding written");
            } else {
                assert!(got.is_nan(), "padding written");
            }
        }
    }
}

const SIZES: [usize; 13] = [1, 2, 3, 5, 7, 8, 15, 16, 17, 31, 33, 63, 65];

#[test]
fn matches_naive_at_every_level() {
    for level in Level::available() {
        for &m in &SIZES {
            for &n in &SIZES {
                for &k in &[1, 7, 16, 33] {
                    check(level, m, n, k, Layout::RowMajor, Layout::RowMajor, false, 1);
                }
            }
        }
    }
}

#[test]
fn matches_naive_for_every_stride_pattern() {
    use Layout::*;
    let layouts = [
        (RowMajor, RowMajor),
        (Transposed, RowMajor),
        (RowMajor, Transposed),
        (Strided, Strided),
        (Transposed, Transposed),
    ];
    for level in Level::available() {
        for (la, lb) in layouts {
            for &(m, n, k) in &[
                (1, 1, 1),
                (17, 33, 5),
                (13, 10, 65),
                (31, 17, 100),
                (65, 63, 257),
            ] {
                for acc in [false, true] {
                    check(level, m, n, k, la, lb, acc, 1);
                }
            }
        }
    }
}

#[test]
fn matches_naive_on_large_and_deep_shapes() {
    use Layout::*;
    // Several KC/MC blocks, k not a multiple of the block depth, n past one NR panel tail.
    for level in Level::available() {
        for &(m, n, k) in &[(257, 100, 600), (32, 256, 784), (300, 70, 1030)] {
            check(level, m, n, k, RowMajor, RowMajor, true, 1);
            check(level, m, n, k, Transposed, RowMajor, false, 1);
            check(level, m, n, k, RowMajor, Transposed, false, 1);
        }
    }
}

#[test]
fn matches_naive_with_cache_aliasing_strides() {
    use Layout::*;
    // Strides that are multiples of 512 floats switch A and B to the packed paths.
    for level in Level::available() {
        check(level, 20, 512, 512, RowMajor, RowMajor, false, 1);
        check(level, 512, 40, 30, Transposed, RowMajor, true, 1);
        check(level, 33, 37, 1024, RowMajor, Transposed, false, 1);
    }
}

#[test]
fn k_zero_zeroes_or_keeps_c() {
    for level in Level::available() {
        let mut scratch = GemmScratch::new();
        let mut c = vec![f32::NAN; 6];
        let a = MatRef::row_major(&[], 2, 0);
        let b = MatRef::row_major(&[], 0, 3);
        matmul(
            level,
            MatMut::row_major(&mut c, 2, 3),
            a,
            b,
            false,
            &mut scratch,
            1,
        );
        assert!(c.iter().all(|x| *x == 0.0));
        let mut c = vec![4.0; 6];
        matmul(
            level,
            MatMut::row_major(&mut c, 2, 3),
            a,
            b,
            true,
            &mut scratch,
            1,
        );
        assert!(c.iter().all(|x| *x == 4.0));
    }
}

#[test]
fn empty_m_or_n_is_a_no_op() {
    for level in Level::available() {
        let mut scratch = GemmScratch::new();
        let a = vec![1.0; 12];
        let mut c: Vec<f32> = vec![];
        matmul(
            level,
            MatMut::row_major(&mut c, 0, 3),
            MatRef::row_major(&[], 0, 4),
            MatRef::row_major(&a, 4, 3),
            false,
            &mut scratch,
            2,
        );
        matmul(
            level,
            MatMut::row_major(&mut c, 3, 0),
            MatRef::row_major(&a, 3, 4),
            MatRef::row_major(&[], 4, 0),
            false,
            &mut scratch,
            2,
        );
    }
}

#[test]
fn accumulate_false_ignores_nan_in_c() {
    for level in Level::available() {
        for &(m, n, k) in &[(1, 1, 1), (5, 17, 3), (40, 70, 300)] {
            check(level, m, n, k, Layout::RowMajor, Layout::RowMajor, false, 1);
        }
    }
}

/// Results for `threads` tasks, computed inside a pool of `threads` workers.
fn run_threads(
    level: Level,
    m: usize,
    n: usize,
    k: usize,
    la: Layout,
    lb: Layout,
    threads: usize,
) -> Vec<f32> {
    let (ad, ars, acs) = make(m, k, la, 5);
    let (bd, brs, bcs) = make(k, n, lb, 6);
    let mut c = rand_vec(m * n, 7);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let mut scratch = GemmScratch::new();
    pool.install(|| {
        matmul(
            level,
            MatMut::row_major(&mut c, m, n),
            view(&ad, m, k, ars, acs),
            view(&bd, k, n, brs, bcs),
            true,
            &mut scratch,
            threads,
        )
    });
    c
}

#[test]
fn bit_identical_for_any_thread_count() {
    use Layout::*;
    // Split every product, however small, so the odd shapes exercise uneven splits.
    super::set_par_min_fmas(1);
    let shapes = [
        (512, 256, 784),
        (32, 256, 784),
        (784, 256, 128),
        (128, 784, 256),
        (100, 10, 1030),
        (1000, 33, 64),
        (20, 1000, 70),
    ];
    for level in Level::available() {
        for &(m, n, k) in &shapes {
            for (la, lb) in [
                (RowMajor, RowMajor),
                (Transposed, RowMajor),
                (RowMajor, Transposed),
            ] {
                let one = run_threads(level, m, n, k, la, lb, 1);
                for threads in [2, 3, 4] {
                    let many = run_threads(level, m, n, k, la, lb, threads);
                    let same = one
                        .iter()
                        .zip(&many)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(
                        same,
                        "{level:?} {m}×{n}×{k} {la:?}/{lb:?}: threads={threads} differs"
                    );
                }
            }
        }
    }
}

#[test]
fn multithreaded_matches_naive() {
    for level in Level::available() {
        for threads in [2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                check(
                    level,
                    257,
                    130,
                    300,
                    Layout::Transposed,
                    Layout::RowMajor,
                    true,
                    threads,
                )
            });
        }
    }
}

#[test]
fn scratch_is_reused_and_grows_when_needed() {
    let level = Level::current();
    let mut scratch = GemmScratch::new();
    scratch.reserve(8, 8, 8, 1);
    // Larger than reserved: grows by itself and is still correct.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    pool.install(|| {
        check(
            level,
            200,
            200,
            300,
            Layout::RowMajor,
            Layout::RowMajor,
            false,
            2,
        )
    });
    let a = rand_vec(200 * 300, 1);
    let b = rand_vec(300 * 200, 2);
    let mut c1 = vec![0.0; 200 * 200];
    let mut c2 = vec![0.0; 200 * 200];
    for c in [&mut c1, &mut c2] {
        matmul(
            level,
            MatMut::row_major(c, 200, 200),
            MatRef::row_major(&a, 200, 300),
            MatRef::row_major(&b, 300, 200),
            false,
            &mut scratch,
            1,
        );
    }
    assert_eq!(c1, c2);
}

#[test]
#[should_panic(expected = "gemm")]
fn inconsistent_shapes_panic() {
    let a = vec![0.0; 6];
    let b = vec![0.0; 6];
    let mut c = vec![0.0; 4];
    matmul(
        Level::Scalar,
        MatMut::row_major(&mut c, 2, 2),
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 2, 3),
        false,
        &mut GemmScratch::new(),
        1,
    );
}

#[test]
#[should_panic(expected = "too short")]
fn short_slice_panics() {
    let a = vec![0.0; 5];
    let b = vec![0.0; 6];
    let mut c = vec![0.0; 4];
    matmul(
        Level::Scalar,
        MatMut::row_major(&mut c, 2, 2),
        MatRef::row_major(&a, 2, 3),
        MatRef::row_major(&b, 3, 2),
        false,
        &mut GemmScratch::new(),
        1,
    );
}

#[test]
fn transposed_view_swaps_strides() {
    let d = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let x = MatRef::row_major(&d, 2, 3).t();
    assert_eq!((x.rows, x.cols, x.row_stride, x.col_stride), (3, 2, 1, 3));
    assert_eq!(at(&x, 2, 1), 6.0);
}
