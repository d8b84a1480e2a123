//! GEMM throughput on the dense-layer shapes of an MLP (784→256→64→32→10), batch B ∈
//! {32, 128, 512, 1024}, for the forward pass (`X·W`), the weight gradient (`Xᵀ·dY`) and the
//! input gradient (`dY·Wᵀ`), at the AVX-512 and AVX2 levels with 1 and 2 tasks.
//!
//! `cargo bench -p kerox-core --bench gemm` — the `item/s` column is FLOP/s (2·m·n·k per call).
//! Filter with e.g. `cargo bench -p kerox-core --bench gemm -- avx512_1t`.

use divan::counter::ItemsCount;
use divan::Bencher;
use kerox_core::dispatch::Level;
use kerox_core::gemm::{matmul, GemmScratch, MatMut, MatRef};
use std::fmt;
use std::sync::OnceLock;

fn main() {
    divan::main();
}

const BATCHES: [usize; 4] = [32, 128, 512, 1024];
const LAYERS: [(usize, usize); 4] = [(784, 256), (256, 64), (64, 32), (32, 10)];

#[derive(Clone, Copy)]
enum Pass {
    /// `Y(B×out) = X(B×in) · W(in×out)`.
    Fwd,
    /// `dW(in×out) = Xᵀ · dY`.
    WGrad,
    /// `dX(B×in) = dY(B×out) · Wᵀ`.
    XGrad,
}

#[derive(Clone, Copy)]
struct Case {
    pass: Pass,
    batch: usize,
    fan_in: usize,
    fan_out: usize,
}

impl Case {
    /// (m, n, k).
    fn mnk(&self) -> (usize, usize, usize) {
        let (b, i, o) = (self.batch, self.fan_in, self.fan_out);
        match self.pass {
            Pass::Fwd => (b, o, i),
            Pass::WGrad => (i, o, b),
            Pass::XGrad => (b, i, o),
        }
    }
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.pass {
            Pass::Fwd => "fwd",
            Pass::WGrad => "wgrad",
            Pass::XGrad => "xgrad",
        };
        let (m, n, k) = self.mnk();
        write!(
            f,
            "{p} B={} {}→{} ({m}×{n}×{k})",
            self.batch, self.fan_in, self.fan_out
        )
    }
}

fn cases() -> Vec<Case> {
    let mut v = Vec::new();
    for pass in [Pass::Fwd, Pass::WGrad, Pass::XGrad] {
        for (fan_in, fan_out) in LAYERS {
            for batch in BATCHES {
                v.push(Case {
                    pass,
                    batch,
                    fan_in,
                    fan_out,
                });
            }
        }
    }
    v
}

fn pool(threads: usize) -> &'static rayon::ThreadPool {
    static POOLS: [OnceLock<rayon::ThreadPool>; 3] =
        [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    POOLS[threads].get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("rayon pool")
    })
}

fn run(bencher: Bencher, case: &Case, level: Level, threads: usize) {
    if !Level::available().contains(&level) {
        return;
    }
    let (batch, fi, fo) = (case.batch, case.fan_in, case.fan_out);
    let x: Vec<f32> = (0..batch * fi).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..fi * fo).map(|i| (i % 5) as f32 * 0.1).collect();
    let dy: Vec<f32> = (0..batch * fo).map(|i| (i % 3) as f32 * 0.1).collect();
    let (m, n, k) = case.mnk();
    let mut c = vec![0.0f32; m * n];
    let (a, b) = match case.pass {
        Pass::Fwd => (
            MatRef::row_major(&x, batch, fi),
            MatRef::row_major(&w, fi, fo),
        ),
        Pass::WGrad => (
            MatRef::row_major(&x, batch, fi).t(),
            MatRef::row_major(&dy, batch, fo),
        ),
        Pass::XGrad => (
            MatRef::row_major(&dy, batch, fo),
            MatRef::row_major(&w, fi, fo).t(),
        ),
    };
    let mut scratch = GemmScratch::new();
    scratch.reserve(m, n, k, threads);
    let flops = 2 * m * n * k;
    if threads == 1 {
        bencher.counter(ItemsCount::new(flops)).bench_local(|| {
            matmul(
                level,
                MatMut::row_major(&mut c, m, n),
                a,
                b,
                false,
                &mut scratch,
                1,
            )
        });
    } else {
        // The engine calls matmul from inside `pool.install`; amortize the install round trip
        // (a few µs) over enough calls to make ~1 ms of work per sample.
        let reps = (50_000_000 / flops).max(1);
        let pool = pool(threads);
        bencher
            .counter(ItemsCount::new(flops * reps))
            .bench_local(|| {
                pool.install(|| {
                    for _ in 0..reps {
                        let c = MatMut::row_major(&mut c, m, n);
                        matmul(level, c, a, b, false, &mut scratch, threads);
                    }
                })
            });
    }
}

#[divan::bench(args = cases())]
fn avx512_1t(bencher: Bencher, case: &Case) {
    run(bencher, case, Level::Avx512, 1);
}

#[divan::bench(args = cases())]
fn avx512_2t(bencher: Bencher, case: &Case) {
    run(bencher, case, Level::Avx512, 2);
}

#[divan::bench(args = cases())]
fn avx2_1t(bencher: Bencher, case: &Case) {
    run(bencher, case, Level::Avx2, 1);
}

#[divan::bench(args = cases())]
fn avx2_2t(bencher: Bencher, case: &Case) {
    run(bencher, case, Level::Avx2, 2);
}
