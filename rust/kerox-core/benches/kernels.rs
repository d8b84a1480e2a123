//! Kernel microbenchmarks for the seed model (784→256→64→BN→32→10, softmax output,
//! categorical crossentropy, clipped SGD), calling the same public kernels, in the same order
//! and with the same arguments, as the engine's layers (`src/engine/layers/`) and optimizer
//! step (`src/engine/mod.rs`). Batch B ∈ {32, 128, 512, 1024}.
//!
//! | bench | what one call does (as the engine does it) | throughput |
//! |---|---|---|
//! | `dense_fwd` | `Z = X·W` (GEMM) + `bias_act_forward` (bias, relu; softmax on the last layer) | FLOP/s |
//! | `dense_dw` | `dW = Xᵀ·dZ` (GEMM) + `col_sums` (bias gradient) | FLOP/s |
//! | `dense_dx` | `dX = dZ·Wᵀ` (GEMM) | FLOP/s |
//! | `dense_act_bwd` | `act_backward` (relu mask, layers 1–3; the softmax is folded into the loss) | B/s |
//! | `bn_fwd_train` | `bn_forward_train` (batch stats + normalize) + `bn_update_moving`, 64 features | B/s |
//! | `bn_bwd_train` | `bn_backward_train` (dx, dgamma, dbeta), 64 features | B/s |
//! | `softmax_ce` | `softmax_ce_from_logits` (probs + loss + gradient), 10 classes, one-hot or sparse labels | B/s |
//! | `sgd_step` | the whole optimizer step over the model's trainable variables: clip (none, clipnorm, clipvalue, global_clipnorm) + `sgd_update`, momentum 0 or 0.9 | B/s |
//! | `sparse_fwd` | the first layer's forward on MNIST-like rows: `compress` + `combine_many` | FLOP/s done |
//! | `sparse_dw_sgd` | the first layer's weight gradient fused with plain SGD: `combine_many_sgd` | FLOP/s done |
//! | `sparse_dw_clipnorm` | its weight gradient (stored, with block squares), norm and clipnorm-scaled plain-SGD update of the touched rows: `combine_many_grad` + `sum_f64` + `sgd_update` per row | FLOP/s done |
//! | `sparse_dw_gram` | the same step as the engine takes it at small batches: the norm from the batch's pair products (`gram_rows`), then the scaled update fused into the weight gradient (`combine_many_sgd`) | FLOP/s done |
//! | `gram` | `gram_rows` alone (the first layer's gradient norm² from pair products), batches of 16–64 | FLOP/s |
//!
//! Counters, read from divan's throughput column:
//! - `item/s` is FLOP/s: `2·m·n·k` per GEMM plus one FLOP per element for the bias add
//!   (`dense_fwd`) or the bias-gradient sum (`dense_dw`); activation math is not counted.
//! - `B/s` counts the compulsory memory traffic of one call: each f32 array read or written
//!   once per pass over it (e.g. clipnorm reads the gradient twice: its norm, then the update).
//!   Everything here fits in L2, so these are cache bandwidths, not DRAM bandwidths.
//!
//! Every bench runs single-threaded (`threads = 1`, as the engine does with one thread; the
//! GEMM's thread scaling is in `benches/gemm.rs`) at the engine's level, `Level::current()`:
//! the best the CPU has, capped by `KEROX_DISPATCH`. Buffers are prepared outside the timed
//! closure, which allocates nothing.
//!
//! ```sh
//! cargo bench -p kerox-core --bench kernels                          # detected level (AVX-512 where present)
//! KEROX_DISPATCH=avx2 cargo bench -p kerox-core --bench kernels      # force AVX2+FMA
//! KEROX_DISPATCH=scalar cargo bench -p kerox-core --bench kernels    # force the scalar kernels
//! cargo bench -p kerox-core --bench kernels -- bn_ softmax_ce        # filter by bench name
//! cargo bench -p kerox-core --bench kernels -- --sample-count 10     # quick run
//! ```

use divan::counter::{BytesCount, ItemsCount};
use divan::Bencher;
use kerox_core::dispatch::Level;
use kerox_core::gemm::{matmul, GemmScratch, MatMut, MatRef};
use kerox_core::kernels::sparse::{chunk_words, ListsBuf, Product, SQ_BLOCK};
use kerox_core::kernels::{
    act_backward, bias_act_forward, bn_backward_train, bn_forward_train, bn_update_moving,
    col_sums, combine_many, combine_many_grad, combine_many_sgd, compress, gram_rows, sum_f64,
    sum_squares, Activation, Rect,
};
use kerox_core::losses::{softmax_ce_from_logits, Targets};
use kerox_core::optim::{sgd_update, ClipElem, SgdStep};
use std::fmt;

fn main() {
    eprintln!(
        "kerox kernels bench: dispatch level {} (KEROX_DISPATCH caps it)",
        level().name()
    );
    divan::main();
}

const BATCHES: [usize; 4] = [32, 128, 512, 1024];
/// The seed model's Dense layers: (fan_in, fan_out, activation).
const LAYERS: [(usize, usize, Activation); 4] = [
    (784, 256, Activation::Relu),
    (256, 64, Activation::Relu),
    (64, 32, Activation::Relu),
    (32, 10, Activation::Softmax),
];
/// Features of the seed model's BatchNormalization (after the 64-unit Dense).
const BN_FEATURES: usize = 64;
/// Classes of the seed model's output.
const CLASSES: usize = 10;
const F32: usize = std::mem::size_of::<f32>();

/// The engine's level: detected, capped by `KEROX_DISPATCH`.
fn level() -> Level {
    Level::current()
}

/// Deterministic values in [-1, 1] (set-up only, outside the timed closures).
fn data(n: usize, seed: usize) -> Vec<f32> {
    (0..n)
        .map(|i| {
            ((i.wrapping_mul(2_654_435_761).wrapping_add(seed * 97)) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

// ---- Dense layers ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct DenseCase {
    batch: usize,
    fan_in: usize,
    fan_out: usize,
    act: Activation,
}

impl fmt::Display for DenseCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "B={} {}→{} {}",
            self.batch,
            self.fan_in,
            self.fan_out,
            self.act.name()
        )
    }
}

fn dense_cases() -> Vec<DenseCase> {
    let mut v = Vec::new();
    for (fan_in, fan_out, act) in LAYERS {
        for batch in BATCHES {
            v.push(DenseCase {
                batch,
                fan_in,
                fan_out,
                act,
            });
        }
    }
    v
}

/// The layers whose activation is differentiated by `act_backward` (the softmax output is
/// folded into the crossentropy, so the engine skips it).
fn act_bwd_cases() -> Vec<DenseCase> {
    dense_cases()
        .into_iter()
        .filter(|c| c.act != Activation::Softmax)
        .collect()
}

/// One Dense layer's buffers, as the engine holds them.
struct DenseBufs {
    x: Vec<f32>,
    w: Vec<f32>,
    bias: Vec<f32>,
    z: Vec<f32>,
    a: Vec<f32>,
    /// dL/dZ (the gradient after the activation's backward).
    g: Vec<f32>,
    dw: Vec<f32>,
    db: Vec<f32>,
    dx: Vec<f32>,
    scratch: GemmScratch,
}

impl DenseBufs {
    fn new(c: &DenseCase) -> Self {
        let (b, i, o) = (c.batch, c.fan_in, c.fan_out);
        let mut scratch = GemmScratch::new();
        // The engine reserves for all three products of the layer.
        scratch.reserve(b, o, i, 1);
        scratch.reserve(i, o, b, 1);
        scratch.reserve(b, i, o, 1);
        let mut bufs = DenseBufs {
            x: data(b * i, 1).iter().map(|v| v.max(0.0)).collect(),
            w: data(i * o, 2).iter().map(|v| v * 0.1).collect(),
            bias: data(o, 3).iter().map(|v| v * 0.1).collect(),
            z: vec![0.0; b * o],
            a: vec![0.0; b * o],
            g: data(b * o, 4).iter().map(|v| v * 0.01).collect(),
            dw: vec![0.0; i * o],
            db: vec![0.0; o],
            dx: vec![0.0; b * i],
            scratch,
        };
        // Realistic z/a for the activation backward.
        dense_forward(level(), c, &mut bufs);
        bufs
    }
}

/// `layers/dense.rs` forward: Z = X·W, then Z += bias and A = act(Z).
fn dense_forward(level: Level, c: &DenseCase, d: &mut DenseBufs) {
    let (b, i, o) = (c.batch, c.fan_in, c.fan_out);
    matmul(
        level,
        MatMut::row_major(&mut d.z, b, o),
        MatRef::row_major(&d.x, b, i),
        MatRef::row_major(&d.w, i, o),
        false,
        &mut d.scratch,
        1,
    );
    bias_act_forward(level, &mut d.z, &mut d.a, b, o, Some(&d.bias), c.act);
}

#[divan::bench(args = dense_cases())]
fn dense_fwd(bencher: Bencher, c: &DenseCase) {
    let level = level();
    let mut d = DenseBufs::new(c);
    let (b, i, o) = (c.batch, c.fan_in, c.fan_out);
    let flops = 2 * b * i * o + b * o;
    bencher
        .counter(ItemsCount::new(flops))
        .bench_local(|| dense_forward(level, c, &mut d));
}

#[divan::bench(args = dense_cases())]
fn dense_dw(bencher: Bencher, c: &DenseCase) {
    let level = level();
    let mut d = DenseBufs::new(c);
    let (b, i, o) = (c.batch, c.fan_in, c.fan_out);
    let flops = 2 * b * i * o + b * o;
    bencher.counter(ItemsCount::new(flops)).bench_local(|| {
        matmul(
            level,
            MatMut::row_major(&mut d.dw, i, o),
            MatRef::row_major(&d.x, b, i).t(),
            MatRef::row_major(&d.g, b, o),
            false,
            &mut d.scratch,
            1,
        );
        col_sums(level, &d.g, b, o, &mut d.db);
    });
}

#[divan::bench(args = dense_cases())]
fn dense_dx(bencher: Bencher, c: &DenseCase) {
    let level = level();
    let mut d = DenseBufs::new(c);
    let (b, i, o) = (c.batch, c.fan_in, c.fan_out);
    let flops = 2 * b * i * o;
    bencher.counter(ItemsCount::new(flops)).bench_local(|| {
        matmul(
            level,
            MatMut::row_major(&mut d.dx, b, i),
            MatRef::row_major(&d.g, b, o),
            MatRef::row_major(&d.w, i, o).t(),
            false,
            &mut d.scratch,
            1,
        );
    });
}

#[divan::bench(args = act_bwd_cases())]
fn dense_act_bwd(bencher: Bencher, c: &DenseCase) {
    let level = level();
    let mut d = DenseBufs::new(c);
    let (b, o) = (c.batch, c.fan_out);
    // g read + written, z and a read. In place and idempotent for relu (g ← g·[z > 0]).
    let bytes = 4 * b * o * F32;
    bencher
        .counter(BytesCount::new(bytes))
        .bench_local(|| act_backward(level, &mut d.g, &d.z, &d.a, b, o, c.act));
}

// ---- BatchNormalization ---------------------------------------------------------------------

/// BatchNormalization (center and scale, Keras defaults) over `rows × BN_FEATURES`.
struct BnBufs {
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    moving_mean: Vec<f32>,
    moving_var: Vec<f32>,
    mean: Vec<f32>,
    var: Vec<f32>,
    inv_std: Vec<f32>,
    y: Vec<f32>,
    dy: Vec<f32>,
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
}

const BN_EPS: f32 = 1e-3;
const BN_MOMENTUM: f32 = 0.99;

impl BnBufs {
    fn new(rows: usize) -> Self {
        let c = BN_FEATURES;
        let mut bn = BnBufs {
            x: data(rows * c, 5).iter().map(|v| v.max(0.0) * 2.0).collect(),
            gamma: vec![1.0; c],
            beta: vec![0.0; c],
            moving_mean: vec![0.0; c],
            moving_var: vec![1.0; c],
            mean: vec![0.0; c],
            var: vec![0.0; c],
            inv_std: vec![0.0; c],
            y: vec![0.0; rows * c],
            dy: data(rows * c, 6).iter().map(|v| v * 0.01).collect(),
            dx: vec![0.0; rows * c],
            dgamma: vec![0.0; c],
            dbeta: vec![0.0; c],
        };
        bn_forward(level(), rows, &mut bn);
        bn
    }
}

/// `layers/batchnorm.rs` forward in training mode.
fn bn_forward(level: Level, rows: usize, b: &mut BnBufs) {
    bn_forward_train(
        level,
        &b.x,
        rows,
        BN_FEATURES,
        Some(&b.gamma),
        Some(&b.beta),
        BN_EPS,
        &mut b.mean,
        &mut b.var,
        &mut b.inv_std,
        &mut b.y,
    );
    bn_update_moving(
        level,
        &mut b.moving_mean,
        &mut b.moving_var,
        &b.mean,
        &b.var,
        BN_MOMENTUM,
    );
}

/// A batch of `BN_FEATURES`-wide BatchNormalization input.
#[derive(Clone, Copy)]
struct BnCase(usize);

impl fmt::Display for BnCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "B={} ×{BN_FEATURES}", self.0)
    }
}

fn bn_cases() -> Vec<BnCase> {
    BATCHES.into_iter().map(BnCase).collect()
}

#[divan::bench(args = bn_cases())]
fn bn_fwd_train(bencher: Bencher, case: &BnCase) {
    let (level, rows) = (level(), case.0);
    let mut b = BnBufs::new(rows);
    let c = BN_FEATURES;
    // x read twice (mean, then variance) and once more to normalize, y written; per feature:
    // gamma, beta read, mean/var/inv_std written, moving mean/var read + written, batch
    // mean/var read again by the moving update.
    let bytes = (4 * rows * c + 11 * c) * F32;
    bencher
        .counter(BytesCount::new(bytes))
        .bench_local(|| bn_forward(level, rows, &mut b));
}

#[divan::bench(args = bn_cases())]
fn bn_bwd_train(bencher: Bencher, case: &BnCase) {
    let (level, rows) = (level(), case.0);
    let mut b = BnBufs::new(rows);
    let c = BN_FEATURES;
    // Two passes over (dy, x) — the column sums, then dx — and dx written; per feature:
    // mean, inv_std, gamma read, dgamma, dbeta written.
    let bytes = (5 * rows * c + 5 * c) * F32;
    bencher.counter(BytesCount::new(bytes)).bench_local(|| {
        bn_backward_train(
            level,
            &b.dy,
            &b.x,
            rows,
            c,
            &b.mean,
            &b.inv_std,
            Some(&b.gamma),
            &mut b.dx,
            Some(&mut b.dgamma),
            Some(&mut b.dbeta),
        )
    });
}

// ---- softmax + crossentropy -----------------------------------------------------------------

#[derive(Clone, Copy)]
struct CeCase {
    batch: usize,
    /// Sparse integer labels (`sparse_categorical_crossentropy`) instead of one-hot targets.
    sparse: bool,
}

impl fmt::Display for CeCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = if self.sparse { "sparse" } else { "onehot" };
        write!(f, "B={} {CLASSES} classes {t}", self.batch)
    }
}

fn ce_cases() -> Vec<CeCase> {
    let mut v = Vec::new();
    for sparse in [false, true] {
        for batch in BATCHES {
            v.push(CeCase { batch, sparse });
        }
    }
    v
}

/// The engine's fused output path (`loss_and_grad` with a softmax Dense output): probabilities,
/// summed loss and dL/dlogits scaled by 1/B, in one call.
#[divan::bench(args = ce_cases())]
fn softmax_ce(bencher: Bencher, c: &CeCase) {
    let level = level();
    let (rows, cols) = (c.batch, CLASSES);
    let n = rows * cols;
    let z: Vec<f32> = data(n, 7).iter().map(|v| v * 3.0).collect();
    let labels: Vec<i64> = (0..rows).map(|r| ((r * 7 + 3) % cols) as i64).collect();
    let mut onehot = vec![0.0f32; n];
    for (r, &l) in labels.iter().enumerate() {
        onehot[r * cols + l as usize] = 1.0;
    }
    let mut probs = vec![0.0f32; n];
    let mut grad = vec![0.0f32; n];
    let scale = 1.0 / rows as f32;
    // z read twice (softmax, loss), probs written, grad written; one-hot targets read (twice:
    // loss, gradient) or one label per row.
    let bytes = if c.sparse {
        3 * n * F32 + rows * std::mem::size_of::<i64>()
    } else {
        5 * n * F32
    };
    bencher.counter(BytesCount::new(bytes)).bench_local(|| {
        let targets = if c.sparse {
            Targets::Sparse(&labels)
        } else {
            Targets::Dense(&onehot)
        };
        softmax_ce_from_logits(
            level,
            &z,
            rows,
            cols,
            targets,
            0.0,
            &mut probs,
            Some(&mut grad),
            scale,
            None,
        )
    });
}

// ---- clipped SGD update ---------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum ClipKind {
    None,
    /// Per variable `clipnorm`: a norm pass over each gradient, then the scaled update.
    Norm,
    /// `clipvalue`: element-wise clamp fused into the update.
    Value,
    /// `global_clipnorm`: one norm pass over all gradients, then the scaled update.
    GlobalNorm,
}

#[derive(Clone, Copy)]
struct SgdCase {
    clip: ClipKind,
    momentum: f32,
}

impl fmt::Display for SgdCase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = match self.clip {
            ClipKind::None => "noclip",
            ClipKind::Norm => "clipnorm",
            ClipKind::Value => "clipvalue",
            ClipKind::GlobalNorm => "global_clipnorm",
        };
        write!(f, "{c} momentum={} n={}", self.momentum, trainable_count())
    }
}

fn sgd_cases() -> Vec<SgdCase> {
    let mut v = Vec::new();
    for momentum in [0.0, 0.9] {
        for clip in [
            ClipKind::None,
            ClipKind::Norm,
            ClipKind::Value,
            ClipKind::GlobalNorm,
        ] {
            v.push(SgdCase { clip, momentum });
        }
    }
    v
}

/// Lengths of the seed model's trainable variables, in the engine's order: (kernel, bias) per
/// Dense, (gamma, beta) for the BatchNormalization after the 64-unit layer.
fn trainable_lens() -> Vec<usize> {
    let mut v = Vec::new();
    for (fan_in, fan_out, _) in LAYERS {
        v.push(fan_in * fan_out);
        v.push(fan_out);
        if fan_out == BN_FEATURES {
            v.push(BN_FEATURES);
            v.push(BN_FEATURES);
        }
    }
    v
}

fn trainable_count() -> usize {
    trainable_lens().iter().sum()
}

/// `Engine::apply_gradients` over all trainable variables (contiguous, as in the engine).
#[divan::bench(args = sgd_cases())]
fn sgd_step(bencher: Bencher, c: &SgdCase) {
    let level = level();
    let lens = trainable_lens();
    let n: usize = lens.iter().sum();
    let mut w = data(n, 8).iter().map(|v| v * 0.1).collect::<Vec<f32>>();
    let g = data(n, 9).iter().map(|v| v * 0.05).collect::<Vec<f32>>();
    let mut m = vec![0.0f32; n];
    let step = SgdStep {
        lr: 0.01,
        momentum: c.momentum,
        nesterov: false,
        weight_decay: None,
    };
    let (clip, momentum) = (c.clip, c.momentum != 0.0);
    let cn = 1.0f32;
    let cv = 0.01f32;
    // Per element: g read, w read + written, m read + written with momentum; the norm
    // (clipnorm, global_clipnorm) reads g once more.
    let passes = 3
        + if momentum { 2 } else { 0 }
        + usize::from(matches!(clip, ClipKind::Norm | ClipKind::GlobalNorm));
    let bytes = passes * n * F32;
    bencher.counter(BytesCount::new(bytes)).bench_local(|| {
        let global_scale = if clip == ClipKind::GlobalNorm {
            let mut sq = 0.0f64;
            let mut off = 0;
            for &len in &lens {
                sq += sum_squares(level, &g[off..off + len]);
                off += len;
            }
            let gnorm = sq.sqrt() as f32;
            // As the engine (Keras): c·min(1/G, 1/c) + (G − G).
            #[allow(clippy::eq_op)]
            {
                cn * (1.0 / gnorm).min(1.0 / cn) + (gnorm - gnorm)
            }
        } else {
            1.0
        };
        let mut off = 0;
        for &len in &lens {
            let r = off..off + len;
            off += len;
            let gv = &g[r.clone()];
            let ce = match clip {
                ClipKind::None => ClipElem::None,
                ClipKind::Value => ClipElem::Value(cv),
                ClipKind::GlobalNorm => ClipElem::Scale(global_scale),
                ClipKind::Norm => {
                    let norm = sum_squares(level, gv).sqrt() as f32;
                    ClipElem::Scale(cn / norm.max(cn))
                }
            };
            let mv = if momentum {
                Some(&mut m[r.clone()])
            } else {
                None
            };
            sgd_update(level, &mut w[r], gv, mv, ce, &step);
        }
    });
}

// ---- Sparse-input first layer ---------------------------------------------------------------

/// MNIST-like rows: ~19 % nonzero, the nonzeros clustered in the middle of the row as a
/// digit's pixels are in the middle of the image (deterministic).
fn sparse_rows(rows: usize, cols: usize) -> Vec<f32> {
    let vals = data(rows * cols, 7);
    (0..rows * cols)
        .map(|p| {
            let (r, c) = (p / cols, p % cols);
            let centre = cols / 2 + (r * 37) % 41;
            let near = c.abs_diff(centre) < cols / 6;
            let keep = (p.wrapping_mul(2_654_435_761) >> 7) % 100 < 55;
            if near && keep {
                vals[p].abs()
            } else {
                0.0
            }
        })
        .collect()
}

/// The batch's rows listed as the gather lists them (`compress` into fixed slots).
fn listed(level: Level, x: &[f32], rows: usize, cols: usize) -> ListsBuf {
    use kerox_core::kernels::sparse::COMPRESS_PAD;
    let stride = cols + COMPRESS_PAD;
    let mut l = ListsBuf {
        start: (0..rows).map(|r| r * stride).collect(),
        len: vec![0; rows],
        idx: vec![0; rows * stride],
        val: vec![0.0; rows * stride],
    };
    relist(&mut l, level, x, cols);
    l
}

/// Lists the rows of `x` again into the slots of `l` (what the gather does every batch).
fn relist(l: &mut ListsBuf, level: Level, x: &[f32], cols: usize) {
    for (r, n) in l.len.iter_mut().enumerate() {
        let s = l.start[r];
        let slot = s..s + cols + kerox_core::kernels::sparse::COMPRESS_PAD;
        let src = &x[r * cols..(r + 1) * cols];
        let mut marks = [0u64; chunk_words(784)];
        let marks = &mut marks[..chunk_words(cols)];
        *n = compress(
            level,
            src,
            &mut l.idx[slot.clone()],
            &mut l.val[slot],
            marks,
        ) as u32;
    }
}

/// `engine/layers/dense/sparse.rs` forward of the 784→256 layer on sparse input, one thread:
/// each row's nonzeros are listed (`compress`, as the gather does) and `combine_many` sums
/// their kernel rows, 32 rows at a time (each chunk of kernel rows reused from L1 by the whole
/// group).
/// `item/s` is the FLOP/s of the multiply-adds actually done (2 per nonzero per column).
#[divan::bench(args = BATCHES)]
fn sparse_fwd(bencher: Bencher, batch: usize) {
    let level = level();
    let (i, o, _) = LAYERS[0];
    let x = sparse_rows(batch, i);
    let w: Vec<f32> = data(i * o, 2).iter().map(|v| v * 0.1).collect();
    let mut listed = listed(level, &x, batch, i);
    let mut z = vec![0f32; batch * o];
    let total = x.iter().filter(|v| **v != 0.0).count();
    bencher
        .counter(ItemsCount::new(2 * total * o))
        .bench_local(|| {
            relist(&mut listed, level, &x, i);
            let mut out = Rect::new(&mut z, o, 0..o);
            let p = Product {
                lists: listed.lists(),
                b: &w,
                n: o,
                cols: 0..o,
            };
            combine_many(level, p, &mut out);
        });
}

/// The sparse-input weight gradient fused with plain SGD (what the engine runs for the seed
/// model's first layer without momentum or norm clipping), one thread: the batch's nonzeros
/// listed by feature (given), then each kernel row's gradient `Σ x[r,k]·g[r]` summed in
/// registers and applied. `item/s` as in `sparse_fwd`.
/// The first layer's weight-gradient operands for a batch of MNIST-like rows: the batch's
/// nonzeros listed by feature (as `list_columns` lists them), an output gradient `g` and the
/// kernel `w`.
struct DwCase {
    /// The batch, dense (rows of `k`), and its rows' chunk marks (`compress`).
    x: Vec<f32>,
    marks: Vec<u64>,
    cols: ListsBuf,
    g: Vec<f32>,
    w: Vec<f32>,
    /// Kernel rows (features) and columns (units).
    k: usize,
    n: usize,
}

impl DwCase {
    fn new(batch: usize) -> DwCase {
        let (k, n, _) = LAYERS[0];
        let x = sparse_rows(batch, k);
        let mut cols = ListsBuf::default();
        for f in 0..k {
            cols.start.push(cols.idx.len());
            let rows: Vec<usize> = (0..batch).filter(|&r| x[r * k + f] != 0.0).collect();
            cols.idx.extend(rows.iter().map(|&r| r as u32));
            cols.val.extend(rows.iter().map(|&r| x[r * k + f]));
            cols.len.push(rows.len() as u32);
        }
        let words = chunk_words(k);
        let mut marks = vec![0u64; batch * words];
        let (mut idx, mut val) = (vec![0u32; k + 16], vec![0f32; k + 16]);
        for r in 0..batch {
            let m = &mut marks[r * words..(r + 1) * words];
            compress(level(), &x[r * k..(r + 1) * k], &mut idx, &mut val, m);
        }
        DwCase {
            x,
            marks,
            cols,
            g: data(batch * n, 3).iter().map(|v| v * 1e-3).collect(),
            w: data(k * n, 2).iter().map(|v| v * 0.1).collect(),
            k,
            n,
        }
    }

    /// Multiply-adds of the gradient, times 2.
    fn flops(&self) -> ItemsCount {
        ItemsCount::new(2 * self.cols.idx.len() * self.n)
    }
}

/// Plain SGD at a learning rate that keeps the weights where they are for many runs.
const TINY_SGD: SgdStep = SgdStep {
    lr: 1e-6,
    momentum: 0.0,
    nesterov: false,
    weight_decay: None,
};

#[divan::bench(args = BATCHES)]
fn sparse_dw_sgd(bencher: Bencher, batch: usize) {
    let level = level();
    let case = DwCase::new(batch);
    let flops = case.flops();
    let DwCase {
        cols, g, mut w, n, ..
    } = case;
    let lists = cols.lists();
    bencher.counter(flops).bench_local(|| {
        let mut wr = Rect::new(&mut w, n, 0..n);
        let p = Product {
            lists,
            b: &g,
            n,
            cols: 0..n,
        };
        combine_many_sgd(level, p, &mut wr, ClipElem::None, &TINY_SGD)
    });
}

/// The first layer's weight gradient and clipnorm-scaled plain-SGD update, one thread, as the
/// engine runs them: the gradient written with its block squares (`combine_many_grad`), the
/// norm from the squares (`sum_f64`), then the scaled update of the touched rows read back
/// (`sgd_update` per row). `item/s` as in `sparse_dw_sgd`, so the two compare directly. (Computing the
/// gradient twice instead, its squares only and then fused into the update, measured slower:
/// 40.7 µs against 34.4 at batch 32 on Zen 5, 1.9x at 128-1024: the products are compute-bound.)
#[divan::bench(args = BATCHES)]
fn sparse_dw_clipnorm(bencher: Bencher, batch: usize) {
    let level = level();
    let case = DwCase::new(batch);
    let flops = case.flops();
    let DwCase {
        cols,
        g,
        mut w,
        k,
        n,
        ..
    } = case;
    let mut dw = vec![0f32; k * n];
    let nb = n.div_ceil(SQ_BLOCK);
    let mut sq = vec![0f32; k * nb];
    let touched: Vec<bool> = cols.len.iter().map(|&c| c > 0).collect();
    let lists = cols.lists();
    bencher.counter(flops).bench_local(|| {
        let p = Product {
            lists,
            b: &g,
            n,
            cols: 0..n,
        };
        let mut out = Rect::new(&mut dw, n, 0..n);
        let mut sqr = Rect::new(&mut sq, nb, 0..nb);
        combine_many_grad(level, p, &mut out, true, Some(&mut sqr));
        let norm = sum_f64(level, &sq).sqrt() as f32;
        let clip = ClipElem::Scale(1.0 / norm.max(1.0));
        for r in (0..k).rev().filter(|&r| touched[r]) {
            let span = r * n..(r + 1) * n;
            sgd_update(
                level,
                &mut w[span.clone()],
                &dw[span],
                None,
                clip,
                &TINY_SGD,
            );
        }
    });
}

/// Batches small enough for the Gram norm (`gram_rows` needs at most 64 rows).
const GRAM_BATCHES: &[usize] = &[16, 32, 48, 64];

/// `sparse_dw_clipnorm` with the norm taken first from the batch's pair products
/// (`gram_rows`: `Σ_ij (x_i·x_j)(g_i·g_j)`), so the scaled update is fused into the weight
/// gradient as in `sparse_dw_sgd` and the gradient is never stored. `item/s` as there.
#[divan::bench(args = GRAM_BATCHES)]
fn sparse_dw_gram(bencher: Bencher, batch: usize) {
    let level = level();
    let case = DwCase::new(batch);
    let flops = case.flops();
    let DwCase {
        x,
        marks,
        cols,
        g,
        mut w,
        k,
        n,
    } = case;
    let lists = cols.lists();
    let mut out = vec![[0f64; 2]; batch];
    bencher.counter(flops).bench_local(|| {
        gram_rows(level, &x, k, &marks, &g, n, 0..batch, &mut out);
        let norm = out.iter().map(|p| p[0]).sum::<f64>().sqrt() as f32;
        let clip = ClipElem::Scale(1.0 / norm.max(1.0));
        let mut wr = Rect::new(&mut w, n, 0..n);
        let p = Product {
            lists,
            b: &g,
            n,
            cols: 0..n,
        };
        combine_many_sgd(level, p, &mut wr, clip, &TINY_SGD)
    });
}

/// `gram_rows` alone over a whole batch: the first layer's gradient norm² from the pair
/// products. `item/s` counts the products' multiply-adds, `rows·(rows+1)/2·(k + n)`, times 2.
#[divan::bench(args = GRAM_BATCHES)]
fn gram(bencher: Bencher, batch: usize) {
    let level = level();
    let DwCase {
        x, marks, g, k, n, ..
    } = DwCase::new(batch);
    let mut out = vec![[0f64; 2]; batch];
    let flops = ItemsCount::new(batch * (batch + 1) * (k + n));
    bencher.counter(flops).bench_local(|| {
        gram_rows(level, &x, k, &marks, &g, n, 0..batch, &mut out);
        out.iter().map(|p| p[0]).sum::<f64>()
    });
}
