//! Whole-network checks: backprop against finite differences, SGD against a hand-written
//! step, and bit-identical training for any thread count.

use super::*;
use crate::losses::*;
use crate::metrics::*;

/// Tiny deterministic generator for test data (xorshift64*).
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let v = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        v as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
    fn vec(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.next() * scale).collect()
    }
}

/// A rayon pool of `threads` threads (the engine's teams come from the pool it runs in).
pub(super) fn pool_of(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

fn dense(units: usize, act: Activation) -> LayerSpec {
    LayerSpec::Dense(DenseSpec {
        units,
        activation: act,
        use_bias: true,
        trainable: true,
    })
}

fn bn(center: bool, scale: bool) -> LayerSpec {
    LayerSpec::BatchNorm(BatchNormSpec {
        momentum: 0.9,
        epsilon: 1e-3,
        center,
        scale,
        trainable: true,
    })
}

fn sgd(lr: f32) -> OptimizerSpec {
    OptimizerSpec::new(optim::Sgd::default(), lr)
}

/// SGD at `lr` with momentum `mu` (Nesterov or not).
fn momentum_sgd(lr: f32, mu: f32, nesterov: bool) -> OptimizerSpec {
    let rule = optim::Sgd {
        momentum: mu,
        nesterov,
    };
    OptimizerSpec::new(rule, lr)
}

/// [`sgd`] at learning rate 0.1 with `clip`.
fn clipped(clip: Clip) -> OptimizerSpec {
    OptimizerSpec { clip, ..sgd(0.1) }
}

/// An engine with random weights (gamma near 1, moving variance 1).
fn engine(input: usize, specs: &[LayerSpec], seed: u64) -> Engine {
    let mut e = Engine::new(input, specs).unwrap();
    let mut rng = Rng(seed);
    for i in 0..e.variables().len() {
        let n = e.variables()[i].len;
        let v = rng.vec(n, 0.5);
        e.set_var(i, &v).unwrap();
    }
    e
}

fn one_hot(rows: usize, classes: usize, rng: &mut Rng) -> (Vec<f32>, Vec<f32>) {
    let mut y = vec![0.0; rows * classes];
    let mut labels = vec![0.0; rows];
    for r in 0..rows {
        let c = ((rng.next() + 1.0) * 0.5 * classes as f32) as usize % classes;
        y[r * classes + c] = 1.0;
        labels[r] = c as f32;
    }
    (y, labels)
}

/// Mean batch loss of the loaded batch with the current variables (training mode).
fn batch_loss(e: &mut Engine, rows: usize) -> f64 {
    e.forward(rows, true, e.fused_output, &Team::solo());
    e.loss_and_grad(rows, false, &Team::solo()) / rows as f64
}

/// Checks every trainable variable's gradient (a few coordinates each) against central
/// finite differences of the mean batch loss.
fn check_gradients(e: &mut Engine, x: &[f32], y: &[f32], rows: usize) {
    check_weighted_gradients(e, x, y, rows, None);
}

/// [`check_gradients`] of the batch loss `Σ w_i·l_i / rows` with sample weights `w`.
fn check_weighted_gradients(e: &mut Engine, x: &[f32], y: &[f32], rows: usize, w: Option<&[f32]>) {
    let xv = View2::from_f32(x, rows, e.input_dim()).unwrap();
    let ycols = y.len() / rows;
    let yv = View2::from_f32(y, rows, ycols).unwrap();
    let loss = e.compiled.as_ref().unwrap().loss;
    e.ensure_capacity(rows);
    e.load_batch(&Team::solo(), &xv, &yv, None, w, 0, rows, loss, false)
        .unwrap();
    e.forward(rows, true, e.fused_output, &Team::solo());
    e.loss_and_grad(rows, true, &Team::solo());
    e.backward(rows, &Team::solo());
    let analytic = e.grads.to_vec();
    let infos = e.variables().to_vec();
    let mut checked = 0;
    for info in infos.iter().filter(|v| v.trainable) {
        for j in [0, info.len / 3, info.len / 2, info.len - 1] {
            let idx = info.offset + j;
            let orig = e.vars[idx];
            let h = 1e-2f32;
            e.vars[idx] = orig + h;
            let lp = batch_loss(e, rows);
            e.vars[idx] = orig - h;
            let lm = batch_loss(e, rows);
            e.vars[idx] = orig;
            let fd = (lp - lm) / (2.0 * h as f64);
            let an = analytic[idx] as f64;
            assert!(
                (fd - an).abs() <= 2e-3 + 3e-2 * fd.abs(),
                "var {:?} elem {j}: finite difference {fd} vs backprop {an}",
                info.shape
            );
            checked += 1;
        }
    }
    assert!(checked > 0);
}

#[test]
fn backprop_matches_finite_differences_softmax_ce() {
    let specs = [
        dense(7, Activation::Tanh),
        bn(true, true),
        LayerSpec::Activation(Activation::Elu),
        dense(5, Activation::Sigmoid),
        dense(4, Activation::Softmax),
    ];
    let mut e = engine(6, &specs, 1);
    e.compile(
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.1,
        }),
        vec![MetricSpec::CategoricalAccuracy(CategoricalAccuracy)],
        sgd(0.1),
    )
    .unwrap();
    assert!(e.fused_output);
    let mut rng = Rng(7);
    let x = rng.vec(9 * 6, 1.0);
    let (y, _) = one_hot(9, 4, &mut rng);
    check_gradients(&mut e, &x, &y, 9);
}

#[test]
fn backprop_matches_finite_differences_sparse_and_unfused() {
    let mut rng = Rng(3);
    let x = rng.vec(8 * 5, 1.0);
    let (y, labels) = one_hot(8, 3, &mut rng);
    for (loss, targets) in [
        (
            LossSpec::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy {
                from_logits: false,
            }),
            &labels,
        ),
        (
            LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                from_logits: true,
                label_smoothing: 0.0,
            }),
            &y,
        ),
    ] {
        let last = if matches!(
            loss,
            LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                from_logits: true,
                ..
            })
        ) {
            Activation::Linear
        } else {
            Activation::Softmax
        };
        let specs = [
            dense(6, Activation::Gelu),
            bn(false, true),
            dense(5, Activation::Selu),
            dense(3, last),
        ];
        let mut e = engine(5, &specs, 11);
        let metric = if loss.sparse_targets() {
            MetricSpec::SparseCategoricalAccuracy(SparseCategoricalAccuracy)
        } else {
            MetricSpec::CategoricalAccuracy(CategoricalAccuracy)
        };
        e.compile(loss, vec![metric], sgd(0.1)).unwrap();
        check_gradients(&mut e, &x, targets, 8);
    }
}

#[test]
fn backprop_matches_finite_differences_bce_and_mse() {
    let mut rng = Rng(5);
    let x = rng.vec(10 * 4, 1.0);
    let y: Vec<f32> = (0..10 * 2).map(|i| (i % 3 == 0) as u8 as f32).collect();
    for (loss, act) in [
        (
            LossSpec::BinaryCrossentropy(BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.2,
            }),
            Activation::Sigmoid,
        ),
        (
            LossSpec::BinaryCrossentropy(BinaryCrossentropy {
                from_logits: true,
                label_smoothing: 0.0,
            }),
            Activation::Linear,
        ),
        (
            LossSpec::MeanSquaredError(MeanSquaredError),
            Activation::Softplus,
        ),
    ] {
        let specs = [dense(5, Activation::Silu), bn(true, false), dense(2, act)];
        let mut e = engine(4, &specs, 21);
        e.compile(
            loss,
            vec![MetricSpec::BinaryAccuracy(BinaryAccuracy {
                threshold: 0.5,
            })],
            sgd(0.1),
        )
        .unwrap();
        check_gradients(&mut e, &x, &y, 10);
    }
}

#[test]
fn plain_sgd_step_is_w_minus_lr_times_gradient() {
    let specs = [dense(3, Activation::Relu), dense(2, Activation::Softmax)];
    let mut e = engine(4, &specs, 2);
    e.compile(
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }),
        Vec::<MetricSpec>::new(),
        sgd(0.5),
    )
    .unwrap();
    let mut rng = Rng(9);
    let x = rng.vec(6 * 4, 1.0);
    let (y, _) = one_hot(6, 2, &mut rng);
    let xv = View2::from_f32(&x, 6, 4).unwrap();
    let yv = View2::from_f32(&y, 6, 2).unwrap();
    // Gradient at the starting point, computed separately.
    let loss = e.compiled.as_ref().unwrap().loss;
    e.ensure_capacity(6);
    e.load_batch(&Team::solo(), &xv, &yv, None, None, 0, 6, loss, false)
        .unwrap();
    e.forward(6, true, e.fused_output, &Team::solo());
    e.loss_and_grad(6, true, &Team::solo());
    e.backward(6, &Team::solo());
    let expected: Vec<f32> = e
        .vars
        .iter()
        .zip(e.grads.iter())
        .map(|(w, g)| w - 0.5 * g)
        .collect();
    let pool = crate::pool::pool().unwrap();
    assert_eq!(
        e.train_steps(&pool, &xv, &yv, None, 6, 0, 1, None, None)
            .unwrap(),
        1
    );
    assert_eq!(e.iterations(), 1);
    for (a, b) in e.vars.iter().zip(&expected) {
        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{a} vs {b}");
    }
}

#[test]
fn training_is_bit_identical_for_any_thread_count() {
    // Split every product, however small (the default only splits big ones).
    crate::gemm::set_par_min_fmas(1);
    let specs = [
        dense(96, Activation::Relu),
        bn(true, true),
        LayerSpec::Dropout(DropoutSpec {
            rate: 0.25,
            seed: 5,
        }),
        dense(40, Activation::Relu),
        dense(10, Activation::Softmax),
    ];
    let mut rng = Rng(17);
    let n = 300;
    let x = rng.vec(n * 70, 1.0);
    let (y, _) = one_hot(n, 10, &mut rng);
    let order: Vec<usize> = (0..n).rev().collect();
    let mut results = Vec::new();
    for threads in [1, 2, 3] {
        let pool = pool_of(threads);
        let mut e = engine(70, &specs, 4);
        e.compile(
            LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            }),
            vec![MetricSpec::CategoricalAccuracy(CategoricalAccuracy)],
            OptimizerSpec {
                weight_decay: Some(0.01),
                clip: Clip::GlobalNorm(1.0),
                ..momentum_sgd(0.05, 0.9, true)
            },
        )
        .unwrap();
        let xv = View2::from_f32(&x, n, 70).unwrap();
        let yv = View2::from_f32(&y, n, 10).unwrap();
        let steps = e
            .train_steps(&pool, &xv, &yv, Some(&order), 64, 0, 100, None, None)
            .unwrap();
        assert_eq!(steps, 5);
        results.push((e.vars.to_vec(), e.stats().clone()));
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
}

#[test]
fn the_loss_of_a_large_batch_is_its_chunks_summed_in_order_for_any_thread_count() {
    // 300 rows: five loss chunks, split over the team with 2 and 3 threads.
    let (n, cols) = (300, 20);
    let mut rng = Rng(53);
    let x = rng.vec(n * cols, 1.0);
    let (y, labels) = one_hot(n, 10, &mut rng);
    let losses = [
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.1,
        }),
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: true,
            label_smoothing: 0.0,
        }),
        LossSpec::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy {
            from_logits: false,
        }),
        LossSpec::BinaryCrossentropy(BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }),
        LossSpec::MeanSquaredError(MeanSquaredError),
    ];
    for loss in losses {
        let out_act = match loss {
            LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                from_logits: true,
                ..
            }) => Activation::Linear,
            LossSpec::BinaryCrossentropy(BinaryCrossentropy { .. }) => Activation::Sigmoid,
            _ => Activation::Softmax,
        };
        let specs = [dense(16, Activation::Relu), dense(10, out_act)];
        let targets = if loss.sparse_targets() { &labels } else { &y };
        let t_cols = targets.len() / n;
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            let pool = pool_of(threads);
            let mut e = engine(cols, &specs, 6);
            e.compile(loss, Vec::<MetricSpec>::new(), sgd(0.1)).unwrap();
            let xv = View2::from_f32(&x, n, cols).unwrap();
            let yv = View2::from_f32(targets, n, t_cols).unwrap();
            // The loss of the first step, from the batch's chunks computed one by one.
            let mut want = 0.0f64;
            let mut probe = engine(cols, &specs, 6);
            probe
                .compile(loss, Vec::<MetricSpec>::new(), sgd(0.1))
                .unwrap();
            let mut c0 = 0;
            while c0 < n {
                let rows = LOSS_CHUNK.min(n - c0);
                let xc = View2::from_f32(&x[c0 * cols..(c0 + rows) * cols], rows, cols).unwrap();
                let yc = &targets[c0 * t_cols..(c0 + rows) * t_cols];
                let yc = View2::from_f32(yc, rows, t_cols).unwrap();
                probe.ensure_capacity(rows);
                probe
                    .load_batch(&Team::solo(), &xc, &yc, None, None, 0, rows, loss, false)
                    .unwrap();
                probe.forward(rows, true, probe.fused_output, &Team::solo());
                want += probe.loss_and_grad(rows, false, &Team::solo());
                c0 += rows;
            }
            e.train_steps(&pool, &xv, &yv, None, n, 0, 1, None, None)
                .unwrap();
            let got = e.stats().loss_sum;
            assert_eq!(got.to_bits(), want.to_bits(), "{loss:?}, {threads} threads");
            results.push(e.vars.to_vec());
        }
        assert!(results.windows(2).all(|w| w[0] == w[1]), "{loss:?}");
    }
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let specs = [dense(3, Activation::Softmax)];
    let mut e = engine(4, &specs, 2);
    let pool = crate::pool::pool().unwrap();
    let x = vec![0.0; 8];
    let y = vec![0.0; 6];
    let xv = View2::from_f32(&x, 2, 4).unwrap();
    let yv = View2::from_f32(&y, 2, 3).unwrap();
    assert!(matches!(
        e.train_steps(&pool, &xv, &yv, None, 2, 0, 1, None, None),
        Err(Error::State(_))
    ));
    e.compile(
        LossSpec::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy {
            from_logits: false,
        }),
        Vec::<MetricSpec>::new(),
        sgd(0.1),
    )
    .unwrap();
    // Sparse loss with 3-column targets.
    assert!(matches!(
        e.train_steps(&pool, &xv, &yv, None, 2, 0, 1, None, None),
        Err(Error::Shape(_))
    ));
    // Label out of range.
    let labels = vec![1.0f32, 3.0];
    let lv = View2::from_f32(&labels, 2, 1).unwrap();
    assert!(matches!(
        e.train_steps(&pool, &xv, &lv, None, 2, 0, 1, None, None),
        Err(Error::Value(_))
    ));
    // Wrong input width.
    let x5 = vec![0.0; 10];
    let xv5 = View2::from_f32(&x5, 2, 5).unwrap();
    assert!(matches!(
        e.predict(&pool, &xv5, 0, 2, &mut [0.0; 6]),
        Err(Error::Shape(_))
    ));
    assert!(Engine::new(4, &[dense(0, Activation::Relu)]).is_err());
}

/// Inputs with about `density` of their values nonzero (the rest exactly 0), as MNIST's pixels;
/// feature 0 is 0 in every row.
pub(super) fn mostly_zeros(rng: &mut Rng, rows: usize, cols: usize, density: f32) -> Vec<f32> {
    let mut x = Vec::with_capacity(rows * cols);
    for _ in 0..rows {
        for c in 0..cols {
            let keep = (rng.next() + 1.0) * 0.5 < density;
            let v = rng.next();
            x.push(if keep && c > 0 { v } else { 0.0 });
        }
    }
    x
}

fn sparse_specs(units: usize) -> [LayerSpec; 3] {
    [
        dense(units, Activation::Relu),
        bn(true, true),
        dense(10, Activation::Softmax),
    ]
}

/// 200 rows of 130 features, ~80 % exact zeros, one-hot over 10 classes; every product may
/// split over threads (so thread counts are really exercised).
fn mostly_zeros_task(seed: u64) -> (Vec<f32>, Vec<f32>) {
    crate::gemm::set_par_min_fmas(1);
    let mut rng = Rng(seed);
    let x = mostly_zeros(&mut rng, 200, 130, 0.2);
    let (y, _) = one_hot(200, 10, &mut rng);
    (x, y)
}

/// How [`trained_on_mostly_zeros`] runs besides the optimizer and thread count.
#[derive(Clone, Copy)]
struct RunOpts {
    sparse_on: bool,
    fuse_sgd: bool,
    /// Switch between all threads and one after every step.
    alternate_width: bool,
    /// Units of the first layer.
    units: usize,
    batch: usize,
    /// Norm clipping fused, through pair products (`Engine::fuse_norm_clip`).
    gram: Option<bool>,
    /// Train with the sample weights [`task_weights`].
    weighted: bool,
}

const SPARSE: RunOpts = RunOpts {
    sparse_on: true,
    fuse_sgd: true,
    alternate_width: false,
    units: 48,
    batch: 32,
    gram: None,
    weighted: false,
};

/// Sample weights 0, 0.5, 1, 1.5, 2, 0, … for `n` samples.
fn task_weights(n: usize) -> Vec<f32> {
    (0..n).map(|i| (i % 5) as f32 * 0.5).collect()
}

/// Trains `steps` batches of 32 with `threads` threads, the sparse-input path on or off;
/// returns the variables and whether the last batch took the sparse path.
fn train_mostly_zeros(
    opt: OptimizerSpec,
    sparse_on: bool,
    threads: usize,
    x: &[f32],
    y: &[f32],
    steps: usize,
) -> (Vec<f32>, bool) {
    let run = RunOpts {
        sparse_on,
        ..SPARSE
    };
    let (vars, was_sparse, _) = outcome(&trained_on_mostly_zeros(opt, run, threads, x, y, steps));
    (vars, was_sparse)
}

/// What a run of [`trained_on_mostly_zeros`] left: the variables, whether the last batch took
/// the sparse path, and whether its kernel update was fused into its weight gradient.
fn outcome(e: &Engine) -> (Vec<f32>, bool, bool) {
    (e.vars.to_vec(), sparse_batch(e), e.last_fused)
}

/// Whether the batch `e` loaded last takes the first layer's sparse-input path.
fn sparse_batch(e: &Engine) -> bool {
    e.layers[0].input_fast_path_taken()
}

/// [`train_mostly_zeros`] with [`RunOpts`]: the trained engine ([`outcome`] reads it).
fn trained_on_mostly_zeros(
    opt: OptimizerSpec,
    run: RunOpts,
    threads: usize,
    x: &[f32],
    y: &[f32],
    steps: usize,
) -> Engine {
    let (n, cols) = (y.len() / 10, x.len() / (y.len() / 10));
    let pool = pool_of(threads);
    let mut e = engine(cols, &sparse_specs(run.units), 8);
    e.set_sparse_input(run.sparse_on);
    e.fuse_sgd = run.fuse_sgd;
    e.fuse_norm_clip = run.gram;
    if run.alternate_width {
        e.adaptive = true;
        e.tuner = Some(crate::tune::WidthTuner::alternating(threads));
    }
    e.compile(
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }),
        Vec::<MetricSpec>::new(),
        opt,
    )
    .unwrap();
    let xv = View2::from_f32(x, n, cols).unwrap();
    let yv = View2::from_f32(y, n, 10).unwrap();
    let order: Vec<usize> = (0..n).rev().collect();
    let w = run.weighted.then(|| task_weights(n));
    e.train_steps(
        &pool,
        &xv,
        &yv,
        Some(&order),
        run.batch,
        0,
        steps,
        None,
        w.as_deref(),
    )
    .unwrap();
    if run.alternate_width {
        let counts = e.tuner.as_ref().unwrap().counts();
        assert!(counts[0] > 0 && counts[1] > 0, "widths used: {counts:?}");
    }
    e
}

#[test]
fn fused_plain_sgd_and_switching_widths_change_no_bit() {
    let (x, y) = mostly_zeros_task(31);
    let unfused = RunOpts {
        fuse_sgd: false,
        ..SPARSE
    };
    for opt in [sgd(0.1), clipped(Clip::Value(0.01))] {
        let (want, was_sparse, fused) =
            outcome(&trained_on_mostly_zeros(opt, unfused, 1, &x, &y, 7));
        assert!(was_sparse && !fused);
        for threads in [1, 2, 3] {
            let (got, _, fused) =
                outcome(&trained_on_mostly_zeros(opt, SPARSE, threads, &x, &y, 7));
            assert!(fused, "{opt:?}: the update should have been fused");
            assert!(
                got == want,
                "{opt:?}, {threads} threads: fused update differs"
            );
            if threads == 1 {
                continue;
            }
            let alternating = RunOpts {
                alternate_width: true,
                ..SPARSE
            };
            let (got, _, _) = outcome(&trained_on_mostly_zeros(
                opt,
                alternating,
                threads,
                &x,
                &y,
                7,
            ));
            assert!(
                got == want,
                "{opt:?}, {threads} threads: switching widths differs"
            );
        }
    }
    // Momentum is not fused; norm clipping only where the pair products cost less than the
    // stored gradient (not here: 130 features, 48 units, batches of 32).
    for opt in [momentum_sgd(0.1, 0.9, false), clipped(Clip::Norm(0.5))] {
        let (_, was_sparse, fused) = outcome(&trained_on_mostly_zeros(opt, SPARSE, 2, &x, &y, 3));
        assert!(was_sparse && !fused, "{opt:?}");
    }
}

#[test]
fn norm_clipping_fused_through_pair_products_changes_only_rounding() {
    let (x, y) = mostly_zeros_task(41);
    let stored = RunOpts {
        gram: Some(false),
        ..SPARSE
    };
    let gram = RunOpts {
        gram: Some(true),
        ..SPARSE
    };
    let (unclipped, _, _) = outcome(&trained_on_mostly_zeros(sgd(0.1), SPARSE, 1, &x, &y, 7));
    for clip in [Clip::Norm(0.2), Clip::GlobalNorm(0.3)] {
        let opt = clipped(clip);
        let want = trained_on_mostly_zeros(opt, stored, 1, &x, &y, 7);
        assert!(sparse_batch(&want) && !want.last_fused);
        let base = trained_on_mostly_zeros(opt, gram, 1, &x, &y, 7);
        assert!(
            base.last_fused,
            "{clip:?}: the update should have been fused"
        );
        // The clip acted, and on the same steps with the same norms up to rounding.
        let (ws, bs) = (want.clip_stats(), base.clip_stats());
        assert!(
            ws.fired[0] > 0,
            "{clip:?}: the data should make the clip fire"
        );
        assert_eq!(ws.fired, bs.fired, "{clip:?}");
        for (a, b) in ws.last_norms.iter().zip(&bs.last_norms) {
            assert!(
                (a - b).abs() <= 1e-6 * a.abs(),
                "{clip:?}: norms {a} vs {b}"
            );
        }
        let far = want
            .vars
            .iter()
            .zip(&unclipped)
            .filter(|(a, b)| (*a - *b).abs() > 1e-3);
        assert!(
            far.count() > 100,
            "{clip:?}: clipping should change the result"
        );
        for (i, (a, b)) in base.vars.iter().zip(want.vars.iter()).enumerate() {
            assert!(
                (a - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "{clip:?}: variable element {i}: pair products {a}, stored gradient {b}"
            );
        }
        // The same bits for any thread count, also switching widths between steps.
        for threads in [2, 3] {
            for alternate_width in [false, true] {
                let run = RunOpts {
                    alternate_width,
                    ..gram
                };
                let (got, _, fused) =
                    outcome(&trained_on_mostly_zeros(opt, run, threads, &x, &y, 7));
                assert!(fused);
                assert!(
                    got == base.vars.to_vec(),
                    "{clip:?}, {threads} threads (alternating: {alternate_width}): results differ"
                );
            }
        }
    }
}

#[test]
fn sparse_input_path_matches_the_dense_path_for_any_thread_count() {
    let (x, y) = mostly_zeros_task(23);
    let opts = [
        sgd(0.1),
        clipped(Clip::Value(0.01)),
        OptimizerSpec {
            weight_decay: Some(0.01),
            clip: Clip::Norm(0.5),
            ..momentum_sgd(0.05, 0.9, false)
        },
        clipped(Clip::GlobalNorm(0.3)),
    ];
    // Batches of 80 (above `HALVES_MAX_ROWS`) list their columns in parts balanced by the
    // previous batch's lists, with the cuts counted while loading.
    for (opt, batch) in opts.into_iter().flat_map(|o| [(o, 32), (o, 80)]) {
        let run = |sparse_on, threads| {
            let run = RunOpts {
                sparse_on,
                batch,
                ..SPARSE
            };
            let (vars, was_sparse, _) =
                outcome(&trained_on_mostly_zeros(opt, run, threads, &x, &y, 7));
            (vars, was_sparse)
        };
        let (dense_path, was_sparse) = run(false, 1);
        assert!(!was_sparse);
        let mut runs = Vec::new();
        for threads in [1, 2, 3] {
            let (vars, was_sparse) = run(true, threads);
            assert!(
                was_sparse,
                "the batches should have taken the sparse-input path"
            );
            runs.push(vars);
        }
        assert!(
            runs.windows(2).all(|w| w[0] == w[1]),
            "{opt:?}, batch {batch}: thread count changed results"
        );
        let moved = dense_path
            .iter()
            .zip(engine(130, &sparse_specs(48), 8).vars.iter())
            .filter(|(a, b)| a != b)
            .count();
        assert!(
            moved > dense_path.len() / 2,
            "training should move most variables"
        );
        for (i, (a, b)) in runs[0].iter().zip(&dense_path).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{opt:?}, batch {batch}: variable element {i}: sparse path {a}, dense path {b}"
            );
        }
    }
}

#[test]
fn small_batches_split_by_columns_and_match_the_dense_path() {
    // 100 features and batches of 5: too few rows (and kernel rows) to split by rows, so with
    // 2 and 3 threads the sparse path's products and update split the 200 columns instead
    // (see `small_batches_split_by_columns` in `layers/dense/sparse.rs`).
    let mut rng = Rng(37);
    let x = mostly_zeros(&mut rng, 60, 100, 0.2);
    let (y, _) = one_hot(60, 10, &mut rng);
    let small = RunOpts {
        units: 200,
        batch: 5,
        ..SPARSE
    };
    for opt in [
        sgd(0.1),
        clipped(Clip::Value(0.01)),
        clipped(Clip::Norm(0.5)),
        OptimizerSpec {
            weight_decay: Some(0.01),
            ..momentum_sgd(0.05, 0.9, false)
        },
    ] {
        let dense_run = RunOpts {
            sparse_on: false,
            ..small
        };
        let (dense_path, was_sparse, _) =
            outcome(&trained_on_mostly_zeros(opt, dense_run, 1, &x, &y, 9));
        assert!(!was_sparse);
        let (want, was_sparse, _) = outcome(&trained_on_mostly_zeros(opt, small, 1, &x, &y, 9));
        assert!(was_sparse);
        for threads in [2, 3] {
            let (got, _, _) = outcome(&trained_on_mostly_zeros(opt, small, threads, &x, &y, 9));
            assert!(got == want, "{opt:?}, {threads} threads: results differ");
        }
        for (i, (a, b)) in want.iter().zip(&dense_path).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 + 1e-4 * b.abs(),
                "{opt:?}: variable element {i}: sparse path {a}, dense path {b}"
            );
        }
    }
}

#[test]
fn a_dense_batch_takes_the_dense_path() {
    let mut rng = Rng(29);
    let x = mostly_zeros(&mut rng, 64, 40, 0.9);
    let (y, _) = one_hot(64, 10, &mut rng);
    let (_, was_sparse) = train_mostly_zeros(sgd(0.1), true, 1, &x, &y, 2);
    assert!(!was_sparse);
}

#[test]
fn sparse_input_path_keeps_non_finite_values_where_the_dense_path_puts_them() {
    let mut rng = Rng(31);
    let (n, cols) = (64, 50);
    let x = mostly_zeros(&mut rng, n, cols, 0.15);
    let (y, _) = one_hot(n, 10, &mut rng);
    let xv = View2::from_f32(&x, n, cols).unwrap();
    let pool = crate::pool::pool().unwrap();
    // A NaN in the kernel row of feature 0, which is 0 in every row: 0·NaN is NaN, so every
    // output is NaN, as in Keras.
    let mut e = engine(cols, &sparse_specs(48), 8);
    let mut k = e.var(0).unwrap().to_vec();
    k[3] = f32::NAN;
    e.set_var(0, &k).unwrap();
    let mut out = vec![0f32; n * 10];
    e.predict(&pool, &xv, 0, 32, &mut out).unwrap();
    assert!(out.iter().all(|v| v.is_nan()));
    // Diverging training: which variables end non-finite does not depend on the path.
    let masks: Vec<Vec<bool>> = [false, true]
        .into_iter()
        .map(|on| {
            let (vars, _) = train_mostly_zeros(sgd(1e30), on, 2, &x, &y, 2);
            vars.iter().map(|v| v.is_finite()).collect()
        })
        .collect();
    assert!(masks[0].iter().any(|f| !f), "training should have diverged");
    assert_eq!(masks[0], masks[1]);
}

/// `x·w + b` of one row, naively: the terms of the nonzero inputs of features `k` in
/// `ks` in increasing order, from +0, for each output column.
fn naive_sums(x: &[f32], w: &[f32], n: usize, ks: std::ops::Range<usize>) -> Vec<f32> {
    let mut z = vec![0f32; n];
    for k in ks {
        if x[k] != 0.0 {
            for (zj, &wj) in z.iter_mut().zip(&w[k * n..(k + 1) * n]) {
                *zj += x[k] * wj;
            }
        }
    }
    z
}

#[test]
fn sparse_training_forward_of_a_small_batch_sums_two_halves_of_the_kernel() {
    // A linear first layer, so its output is `z` itself. A small training batch (Keras's
    // default 32 rows) sums the kernel's rows below and above cols/2 apart and adds the two
    // sums; a larger batch (64), and inference at any size, sum all terms in order.
    let (rows, cols, n) = (64, 130, 48);
    let mut rng = Rng(43);
    let x = mostly_zeros(&mut rng, rows, cols, 0.2);
    let mut e = engine(cols, &[dense(n, Activation::Linear)], 9);
    let (w, b) = (e.var(0).unwrap().to_vec(), e.var(1).unwrap().to_vec());
    let mid = cols / 2;
    let expect = |r: usize, halves: bool| -> Vec<f32> {
        let xr = &x[r * cols..(r + 1) * cols];
        let z = if halves {
            let (lo, hi) = (
                naive_sums(xr, &w, n, 0..mid),
                naive_sums(xr, &w, n, mid..cols),
            );
            lo.iter().zip(&hi).map(|(a, b)| a + b).collect()
        } else {
            naive_sums(xr, &w, n, 0..cols)
        };
        z.iter().zip(&b).map(|(z, b)| z + b).collect()
    };
    for threads in [1, 2, 3] {
        let pool = pool_of(threads);
        for (batch, halves) in [(5, true), (32, true), (rows, false)] {
            let xv = View2::from_f32(&x[..batch * cols], batch, cols).unwrap();
            let mut got = vec![f32::NAN; batch * n];
            e.forward_training(&pool, &xv, &mut got).unwrap();
            assert!(sparse_batch(&e), "the batch should take the sparse path");
            let mut pred = vec![f32::NAN; batch * n];
            e.predict(&pool, &xv, 0, batch, &mut pred).unwrap();
            for r in 0..batch {
                let row = |v: &[f32]| v[r * n..(r + 1) * n].iter().map(|v| v.to_bits()).collect();
                let bits = |v: Vec<f32>| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let (train, infer): (Vec<u32>, Vec<u32>) = (row(&got), row(&pred));
                assert_eq!(
                    train,
                    bits(expect(r, halves)),
                    "training, {threads} threads, batch {batch}, row {r}"
                );
                assert_eq!(
                    infer,
                    bits(expect(r, false)),
                    "inference, {threads} threads, batch {batch}, row {r}"
                );
            }
        }
    }
}

// ---- sample weights ---------------------------------------------------------------------------

/// A loss, the output activation it is tested with (covering every loss kernel, fused and
/// not) and a metric of its targets' form.
fn weight_cases() -> [(LossSpec, Activation, MetricSpec); 7] {
    let cce = |label_smoothing| {
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing,
        })
    };
    let bce = |from_logits, label_smoothing| {
        LossSpec::BinaryCrossentropy(BinaryCrossentropy {
            from_logits,
            label_smoothing,
        })
    };
    let scce = |from_logits| {
        LossSpec::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy { from_logits })
    };
    let binary = MetricSpec::BinaryAccuracy(BinaryAccuracy { threshold: 0.5 });
    [
        (
            cce(0.1),
            Activation::Softmax,
            MetricSpec::CategoricalAccuracy(CategoricalAccuracy),
        ),
        (
            cce(0.0),
            Activation::Sigmoid,
            MetricSpec::CategoricalAccuracy(CategoricalAccuracy),
        ),
        (
            scce(false),
            Activation::Softmax,
            MetricSpec::SparseCategoricalAccuracy(SparseCategoricalAccuracy),
        ),
        (
            scce(true),
            Activation::Linear,
            MetricSpec::SparseCategoricalAccuracy(SparseCategoricalAccuracy),
        ),
        (bce(false, 0.1), Activation::Sigmoid, binary),
        (bce(false, 0.0), Activation::Softmax, binary),
        (
            LossSpec::MeanSquaredError(MeanSquaredError),
            Activation::Linear,
            binary,
        ),
    ]
}

/// The targets of `loss` (labels as a column, else one-hot rows) and their width.
fn targets_for<'a>(loss: LossSpec, y: &'a [f32], labels: &'a [f32]) -> (&'a [f32], usize) {
    if loss.sparse_targets() {
        (labels, 1)
    } else {
        (y, y.len() / labels.len())
    }
}

#[test]
fn weights_of_one_change_no_bit() {
    let (n, d, classes) = (45, 6, 4);
    let mut rng = Rng(61);
    let x = rng.vec(n * d, 1.0);
    let (y, labels) = one_hot(n, classes, &mut rng);
    let order: Vec<usize> = (0..n).map(|i| (i * 7) % n).collect();
    let ones = vec![1.0f32; n];
    let pool = pool_of(2);
    for (loss, act, metric) in weight_cases() {
        let specs = [
            dense(8, Activation::Tanh),
            bn(true, true),
            LayerSpec::Dropout(DropoutSpec { rate: 0.2, seed: 3 }),
            dense(classes, act),
        ];
        let (t, cols) = targets_for(loss, &y, &labels);
        let xv = View2::from_f32(&x, n, d).unwrap();
        let yv = View2::from_f32(t, n, cols).unwrap();
        let run = |w: Option<&[f32]>| {
            let mut e = engine(d, &specs, 12);
            // A positive moving variance, for the evaluation.
            e.set_var(5, &[1.0; 8]).unwrap();
            let metrics = vec![metric.into(), metric.weighted()];
            e.compile(loss, metrics, momentum_sgd(0.05, 0.9, false))
                .unwrap();
            // Batches of 16: two full ones and a last one of 13.
            e.train_steps(&pool, &xv, &yv, Some(&order), 16, 0, 3, None, w)
                .unwrap();
            let train = e.stats().clone();
            e.reset_stats();
            e.test_steps(&pool, &xv, &yv, 16, 0, 3, w).unwrap();
            (e.vars.to_vec(), train, e.stats().clone())
        };
        let plain = run(None);
        assert!(plain.2.loss_sum.is_finite());
        assert!(
            plain == run(Some(&ones)),
            "{loss:?}: weights of 1 changed results"
        );
        assert_eq!(plain.1.count, n as u64);
        assert_eq!(
            [plain.1.metric_states[0][1], plain.1.metric_states[1][1]],
            [n as f64; 2]
        );
        assert_eq!(plain.1.metric_states[0][0], plain.1.metric_states[1][0]);
    }
}

#[test]
fn weighted_gradients_match_finite_differences() {
    let mut rng = Rng(67);
    let rows = 10;
    let x = rng.vec(rows * 4, 1.0);
    let (y, labels) = one_hot(rows, 3, &mut rng);
    let w = [0.0, 2.5, 1.0, 0.3, 0.0, 1.7, 3.0, 0.9, 1.2, 0.6];
    for (loss, act, metric) in weight_cases() {
        // Batch normalization's statistics take every row, zero weights included.
        let specs = [dense(5, Activation::Silu), bn(true, true), dense(3, act)];
        let mut e = engine(4, &specs, 21);
        e.compile(loss, vec![metric], sgd(0.1)).unwrap();
        let (t, _) = targets_for(loss, &y, &labels);
        check_weighted_gradients(&mut e, &x, t, rows, Some(&w));
    }
}

/// Per-sample loss and its gradient w.r.t. the pre-activation `z` of a softmax + categorical
/// crossentropy (`mse == false`) or linear + mean squared error output, in f64.
fn loss_and_dz64(z: &[f64], y: &[f64], mse: bool) -> (f64, Vec<f64>) {
    let cols = z.len() as f64;
    if mse {
        let l = z.iter().zip(y).map(|(a, t)| (a - t).powi(2)).sum::<f64>() / cols;
        (
            l,
            z.iter().zip(y).map(|(a, t)| 2.0 * (a - t) / cols).collect(),
        )
    } else {
        let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let s: f64 = z.iter().map(|v| (v - m).exp()).sum();
        let p: Vec<f64> = z.iter().map(|v| (v - m).exp() / s).collect();
        let l = -p.iter().zip(y).map(|(p, t)| t * p.ln()).sum::<f64>();
        (l, p.iter().zip(y).map(|(p, t)| p - t).collect())
    }
}

#[test]
fn weighted_sgd_steps_match_an_f64_reference() {
    let (n, d, units, batch, lr) = (10, 4, 3, 4, 0.5);
    let mut rng = Rng(71);
    let x = rng.vec(n * d, 1.0);
    let (y, _) = one_hot(n, units, &mut rng);
    let w = [1.0f32, 0.0, 2.5, 0.5, 3.0, 1.0, 0.25, 0.0, 1.5, 2.0];
    let order = [3usize, 7, 1, 9, 0, 5, 8, 2, 6, 4];
    let pool = pool_of(2);
    for mse in [false, true] {
        let (loss, act) = if mse {
            (
                LossSpec::MeanSquaredError(MeanSquaredError),
                Activation::Linear,
            )
        } else {
            (
                LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                    from_logits: false,
                    label_smoothing: 0.0,
                }),
                Activation::Softmax,
            )
        };
        let mut e = engine(d, &[dense(units, act)], 5);
        e.compile(loss, Vec::<MetricSpec>::new(), sgd(lr)).unwrap();
        // The reference: each batch's loss Σ w_i·l_i / rows at the weights before its step.
        let mut kernel: Vec<f64> = e.var(0).unwrap().iter().map(|&v| v as f64).collect();
        let mut bias: Vec<f64> = e.var(1).unwrap().iter().map(|&v| v as f64).collect();
        let mut loss_sum = 0.0;
        for rows in order.chunks(batch) {
            let nb = rows.len() as f64;
            let (mut gk, mut gb) = (vec![0.0; d * units], vec![0.0; units]);
            for &i in rows {
                let xi: Vec<f64> = x[i * d..(i + 1) * d].iter().map(|&v| v as f64).collect();
                let yi: Vec<f64> = y[i * units..(i + 1) * units]
                    .iter()
                    .map(|&v| v as f64)
                    .collect();
                let z: Vec<f64> = (0..units)
                    .map(|k| bias[k] + (0..d).map(|j| xi[j] * kernel[j * units + k]).sum::<f64>())
                    .collect();
                let (l, dz) = loss_and_dz64(&z, &yi, mse);
                loss_sum += w[i] as f64 * l;
                let c = w[i] as f64 / nb;
                for k in 0..units {
                    gb[k] += c * dz[k];
                    for j in 0..d {
                        gk[j * units + k] += c * xi[j] * dz[k];
                    }
                }
            }
            kernel
                .iter_mut()
                .zip(&gk)
                .for_each(|(v, g)| *v -= lr as f64 * g);
            bias.iter_mut()
                .zip(&gb)
                .for_each(|(v, g)| *v -= lr as f64 * g);
        }
        let xv = View2::from_f32(&x, n, d).unwrap();
        let yv = View2::from_f32(&y, n, units).unwrap();
        let steps = e
            .train_steps(&pool, &xv, &yv, Some(&order), batch, 0, 3, None, Some(&w))
            .unwrap();
        assert_eq!(steps, 3);
        let got = [e.var(0).unwrap(), e.var(1).unwrap()].concat();
        for (i, (a, b)) in got.iter().zip(kernel.iter().chain(&bias)).enumerate() {
            assert!(
                (*a as f64 - b).abs() <= 1e-6 + 1e-5 * b.abs(),
                "mse={mse}: variable element {i}: engine {a}, f64 reference {b}"
            );
        }
        let s = e.stats();
        assert_eq!(s.count, n as u64);
        assert!(
            (s.loss_sum - loss_sum).abs() <= 1e-5 * loss_sum.abs(),
            "mse={mse}: loss sum {} vs reference {loss_sum}",
            s.loss_sum
        );
    }
}

/// Per-sample loss of outputs `a` (after the output activation, or logits for a loss
/// `from_logits` with a linear output) against targets `t` (a label or a row), in f64.
fn sample_loss64(loss: LossSpec, a: &[f32], t: &[f32]) -> f64 {
    let a: Vec<f64> = a.iter().map(|&v| v as f64).collect();
    let cols = a.len() as f64;
    let row = |ls: f64| -> Vec<f64> {
        if t.len() == 1 {
            (0..a.len())
                .map(|c| (c == t[0] as usize) as u8 as f64)
                .collect()
        } else {
            t.iter()
                .map(|&v| v as f64 * (1.0 - ls) + ls / cols)
                .collect()
        }
    };
    match loss {
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            label_smoothing, ..
        }) => {
            let s: f64 = a.iter().sum();
            let y = row(label_smoothing as f64);
            -a.iter().zip(&y).map(|(p, y)| y * (p / s).ln()).sum::<f64>()
        }
        LossSpec::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy {
            from_logits: true,
        }) => {
            let m = a.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = m + a.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            lse - a[t[0] as usize]
        }
        LossSpec::SparseCategoricalCrossentropy(SparseCategoricalCrossentropy {
            from_logits: false,
        }) => {
            let s: f64 = a.iter().sum();
            -(a[t[0] as usize] / s).ln()
        }
        LossSpec::BinaryCrossentropy(BinaryCrossentropy {
            label_smoothing, ..
        }) => {
            let y: Vec<f64> = t
                .iter()
                .map(|&v| v as f64 * (1.0 - label_smoothing as f64) + 0.5 * label_smoothing as f64)
                .collect();
            let terms = a.iter().zip(&y);
            -terms
                .map(|(p, y)| y * p.ln() + (1.0 - y) * (1.0 - p).ln())
                .sum::<f64>()
                / cols
        }
        LossSpec::MeanSquaredError(MeanSquaredError) => {
            a.iter()
                .zip(t)
                .map(|(p, &y)| (p - y as f64).powi(2))
                .sum::<f64>()
                / cols
        }
        other => panic!("no reference for {other:?} here (each loss file tests its own)"),
    }
}

/// The per-sample value of `metric` for outputs `a` against targets `t`.
fn sample_metric64(metric: MetricSpec, a: &[f32], t: &[f32]) -> f64 {
    let argmax = |v: &[f32]| {
        let mut best = 0;
        for i in 1..v.len() {
            if v[i] > v[best] {
                best = i;
            }
        }
        best
    };
    match metric {
        MetricSpec::CategoricalAccuracy(CategoricalAccuracy) => {
            (argmax(a) == argmax(t)) as u8 as f64
        }
        MetricSpec::SparseCategoricalAccuracy(SparseCategoricalAccuracy) => {
            (argmax(a) == t[0] as usize) as u8 as f64
        }
        MetricSpec::BinaryAccuracy(BinaryAccuracy { threshold }) => {
            let hits = a
                .iter()
                .zip(t)
                .filter(|(p, &y)| ((**p > threshold) as u8 as f32) == y);
            hits.count() as f64 / a.len() as f64
        }
        other => panic!("no reference for {other:?} here"),
    }
}

#[test]
fn weighted_evaluation_matches_a_reference_and_plain_metrics_ignore_weights() {
    let (n, d, classes) = (23, 5, 3);
    let mut rng = Rng(73);
    let x = rng.vec(n * d, 1.5);
    let (y, labels) = one_hot(n, classes, &mut rng);
    let w: Vec<f32> = (0..n).map(|i| [0.0, 0.5, 2.0, 1.25, 3.0][i % 5]).collect();
    let wsum: f64 = w.iter().map(|&v| v as f64).sum();
    let pool = pool_of(2);
    for (loss, act, metric) in weight_cases() {
        let specs = [dense(6, Activation::Tanh), dense(classes, act)];
        let mut e = engine(d, &specs, 29);
        e.compile(loss, vec![metric.into(), metric.weighted()], sgd(0.1))
            .unwrap();
        let (t, cols) = targets_for(loss, &y, &labels);
        let xv = View2::from_f32(&x, n, d).unwrap();
        let yv = View2::from_f32(t, n, cols).unwrap();
        let mut out = vec![0.0f32; n * classes];
        e.predict(&pool, &xv, 0, n, &mut out).unwrap();
        let (mut want_loss, mut plain, mut weighted) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let (a, ti) = (
                &out[i * classes..(i + 1) * classes],
                &t[i * cols..(i + 1) * cols],
            );
            want_loss += w[i] as f64 * sample_loss64(loss, a, ti);
            let m = sample_metric64(metric, a, ti);
            plain += m;
            weighted += w[i] as f64 * m;
        }
        // Batches of 7: three full ones and a last one of 2.
        assert_eq!(e.test_steps(&pool, &xv, &yv, 7, 0, 4, Some(&w)).unwrap(), 4);
        let s = e.stats().clone();
        assert_eq!(s.count, n as u64, "{loss:?}");
        assert!(
            (s.loss_sum - want_loss).abs() <= 1e-5 * want_loss.abs(),
            "{loss:?}: loss sum {} vs reference {want_loss}",
            s.loss_sum
        );
        assert!(
            (s.metric_states[0][0] - plain).abs() < 1e-9,
            "{loss:?}: {s:?} vs {plain}"
        );
        assert!(
            (s.metric_states[1][0] - weighted).abs() < 1e-9,
            "{loss:?}: {s:?} vs {weighted}"
        );
        assert_eq!(s.metric_states[0][1], n as f64);
        assert!((s.metric_states[1][1] - wsum).abs() < 1e-9);
        // Without weights a weighted metric is the plain mean.
        e.reset_stats();
        e.test_steps(&pool, &xv, &yv, 7, 0, 4, None).unwrap();
        let s = e.stats();
        assert_eq!(s.metric_states[0][0], s.metric_states[1][0]);
        assert_eq!(
            [s.metric_states[0][1], s.metric_states[1][1]],
            [n as f64; 2]
        );
    }
}

#[test]
fn bad_sample_weights_are_value_errors_that_name_them() {
    let mut e = engine(4, &[dense(3, Activation::Softmax)], 2);
    e.compile(
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }),
        vec![MetricSpec::CategoricalAccuracy(CategoricalAccuracy).weighted()],
        sgd(0.1),
    )
    .unwrap();
    let pool = pool_of(1);
    let x = vec![0.5; 12];
    let y = vec![0.0, 1.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0];
    let xv = View2::from_f32(&x, 3, 4).unwrap();
    let yv = View2::from_f32(&y, 3, 3).unwrap();
    for (w, what) in [
        (vec![1.0, 1.0], "expected 3 values, received 2"),
        (vec![1.0, 1.0, 1.0, 1.0], "expected 3 values, received 4"),
        (vec![1.0, -0.5, 1.0], "sample_weight[1] = -0.5"),
        (vec![1.0, 1.0, f32::NAN], "sample_weight[2] = NaN"),
        (vec![f32::INFINITY, 1.0, 1.0], "sample_weight[0] = inf"),
    ] {
        let train = e.train_steps(&pool, &xv, &yv, None, 2, 0, 2, None, Some(&w));
        let test = e.test_steps(&pool, &xv, &yv, 2, 0, 2, Some(&w));
        for r in [train, test] {
            match r {
                Err(Error::Value(m)) => {
                    assert!(m.contains("sample_weight") && m.contains(what), "{m}")
                }
                other => panic!("{w:?}: expected a value error, got {other:?}"),
            }
        }
    }
    assert_eq!(e.iterations(), 0);
    assert_eq!(e.stats().count, 0);
    // Zero weights are fine.
    let zeros = [0.0f32; 3];
    e.train_steps(&pool, &xv, &yv, None, 2, 0, 2, None, Some(&zeros))
        .unwrap();
    assert_eq!(e.stats().loss_sum, 0.0);
    assert_eq!(e.stats().metric_states[0][1], 0.0);
}

#[test]
fn sample_weights_on_the_sparse_input_path_and_its_fused_update() {
    let (x, y) = mostly_zeros_task(79);
    let weighted = RunOpts {
        weighted: true,
        ..SPARSE
    };
    let run = |opt, run, threads| outcome(&trained_on_mostly_zeros(opt, run, threads, &x, &y, 7));
    let close = |a: &[f32], b: &[f32], what: &str| {
        for (i, (p, q)) in a.iter().zip(b).enumerate() {
            assert!(
                (p - q).abs() <= 1e-5 + 1e-4 * q.abs(),
                "{what}: variable element {i}: {p} vs {q}"
            );
        }
    };
    let unfused = RunOpts {
        fuse_sgd: false,
        ..weighted
    };
    let (want, was_sparse, fused) = run(sgd(0.1), unfused, 1);
    assert!(was_sparse && !fused);
    for threads in [1, 2] {
        let (got, was_sparse, fused) = run(sgd(0.1), weighted, threads);
        assert!(was_sparse && fused, "the update should have been fused");
        assert!(got == want, "{threads} threads: the fused update differs");
    }
    let dense_path = RunOpts {
        sparse_on: false,
        ..weighted
    };
    let (dense, was_sparse, _) = run(sgd(0.1), dense_path, 1);
    assert!(!was_sparse);
    close(&want, &dense, "sparse vs dense path");
    let (plain, _, _) = run(sgd(0.1), SPARSE, 1);
    let moved = plain
        .iter()
        .zip(&want)
        .filter(|(a, b)| (*a - *b).abs() > 1e-4)
        .count();
    assert!(moved > want.len() / 4, "the weights should change training");
    // Norm clipping measured from pair products, with weighted gradient rows.
    let opt = clipped(Clip::Norm(0.2));
    let stored = run(
        opt,
        RunOpts {
            gram: Some(false),
            ..weighted
        },
        1,
    );
    let gram = run(
        opt,
        RunOpts {
            gram: Some(true),
            ..weighted
        },
        1,
    );
    assert!(gram.2 && !stored.2);
    close(&gram.0, &stored.0, "pair products vs stored gradient");
}

// ---- Monte-Carlo dropout --------------------------------------------------------------------

#[test]
fn every_forward_training_call_draws_fresh_dropout_masks() {
    let (rows, cols, rate) = (40, 500, 0.3f32);
    let mut e = engine(
        cols,
        &[LayerSpec::Dropout(DropoutSpec { rate, seed: 9 })],
        1,
    );
    let pool = pool_of(2);
    let x = vec![1.0f32; rows * cols];
    let xv = View2::from_f32(&x, rows, cols).unwrap();
    let outs: Vec<Vec<f32>> = (0..3)
        .map(|_| {
            let mut out = vec![0.0f32; rows * cols];
            e.forward_training(&pool, &xv, &mut out).unwrap();
            out
        })
        .collect();
    let len = (rows * cols) as f64;
    for out in &outs {
        // 20 000 draws: the dropped fraction's standard deviation is about 0.0032.
        let dropped = out.iter().filter(|&&v| v == 0.0).count() as f64 / len;
        assert!((dropped - rate as f64).abs() < 0.015, "dropped {dropped}");
        let kept = 1.0 / (1.0 - rate);
        assert!(out.iter().all(|&v| v == 0.0 || v == kept));
    }
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        // Independent masks disagree on about 2·rate·(1 − rate) of the units.
        let differ = outs[a].iter().zip(&outs[b]).filter(|(p, q)| p != q).count() as f64 / len;
        let expected = 2.0 * (rate * (1.0 - rate)) as f64;
        assert!(
            (differ - expected).abs() < 0.02,
            "calls {a}, {b}: {differ} differ"
        );
    }
    assert_eq!(e.iterations(), 0);
}

#[test]
fn forward_training_calls_leave_the_training_masks_alone() {
    let specs = [
        dense(16, Activation::Relu),
        LayerSpec::Dropout(DropoutSpec { rate: 0.5, seed: 4 }),
        dense(3, Activation::Softmax),
    ];
    let mut rng = Rng(83);
    let (n, d) = (24, 5);
    let x = rng.vec(n * d, 1.0);
    let (y, _) = one_hot(n, 3, &mut rng);
    let xv = View2::from_f32(&x, n, d).unwrap();
    let yv = View2::from_f32(&y, n, 3).unwrap();
    let pool = pool_of(1);
    let train = |calls: usize| {
        let mut e = engine(d, &specs, 6);
        e.compile(
            LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            }),
            vec![MetricSpec::CategoricalAccuracy(CategoricalAccuracy)],
            sgd(0.1),
        )
        .unwrap();
        let mut out = vec![0.0f32; n * 3];
        for b in 0..3 {
            for _ in 0..calls {
                e.forward_training(&pool, &xv, &mut out).unwrap();
            }
            e.train_steps(&pool, &xv, &yv, None, 8, b, 1, None, None)
                .unwrap();
        }
        (e.vars.to_vec(), e.stats().clone())
    };
    assert!(train(0) == train(2));
}

/// One plain-SGD step with regularizers on a kernel and a bias: each regularized weight
/// moves by −lr·(g + l1·sign(w) + 2·l2·w), the others by −lr·g, and the step's loss (and
/// evaluation's) is the data loss plus the penalty at the weights before the step.
#[test]
fn regularizers_add_their_gradient_and_penalty() {
    use crate::regularizers::L1L2;
    let specs = [dense(3, Activation::Relu), dense(2, Activation::Softmax)];
    let mut e = engine(4, &specs, 2);
    let cce = LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.0,
    });
    e.compile(cce, Vec::<MetricSpec>::new(), sgd(0.5)).unwrap();
    let regs = [
        (0, L1L2 { l1: 0.01, l2: 0.2 }),
        (3, L1L2 { l1: 0.0, l2: 0.05 }),
    ];
    e.set_regularizers(regs.to_vec()).unwrap();
    let mut rng = Rng(19);
    let x = rng.vec(6 * 4, 1.0);
    let (y, _) = one_hot(6, 2, &mut rng);
    let xv = View2::from_f32(&x, 6, 4).unwrap();
    let yv = View2::from_f32(&y, 6, 2).unwrap();
    e.ensure_capacity(6);
    e.load_batch(&Team::solo(), &xv, &yv, None, None, 0, 6, cce, false)
        .unwrap();
    e.forward(6, true, e.fused_output, &Team::solo());
    let data_loss = e.loss_and_grad(6, true, &Team::solo()) / 6.0;
    e.backward(6, &Team::solo());
    let w0 = e.vars.to_vec();
    let mut penalty = 0.0f64;
    let mut expected: Vec<f64> = w0
        .iter()
        .zip(e.grads.iter())
        .map(|(&w, &g)| w as f64 - 0.5 * g as f64)
        .collect();
    for (i, r) in regs {
        let v = &e.infos[i];
        for j in v.offset..v.offset + v.len {
            let w = w0[j] as f64;
            penalty += r.l1 as f64 * w.abs() + r.l2 as f64 * w * w;
            expected[j] -= 0.5 * (r.l1 as f64 * w.signum() + 2.0 * r.l2 as f64 * w);
        }
    }
    e.reset_stats();
    let pool = crate::pool::pool().unwrap();
    e.train_steps(&pool, &xv, &yv, None, 6, 0, 1, None, None)
        .unwrap();
    for (a, b) in e.vars.iter().zip(&expected) {
        assert!(
            (*a as f64 - b).abs() <= 1e-6 * b.abs().max(1.0),
            "{a} vs {b}"
        );
    }
    let s = e.stats();
    let got = s.loss_sum / s.count as f64;
    assert!(
        (got - (data_loss + penalty)).abs() < 1e-6,
        "{got} vs {data_loss} + {penalty}"
    );
    // Evaluation adds the penalty at the current weights.
    let mut penalty_now = 0.0f64;
    for (i, r) in regs {
        let v = &e.infos[i];
        for &w in &e.vars[v.offset..v.offset + v.len] {
            penalty_now += r.l1 as f64 * (w as f64).abs() + r.l2 as f64 * (w as f64).powi(2);
        }
    }
    e.reset_stats();
    e.test_steps(&pool, &xv, &yv, 6, 0, 1, None).unwrap();
    let with = e.stats().loss_sum / 6.0;
    e.set_regularizers(Vec::new()).unwrap();
    e.reset_stats();
    e.test_steps(&pool, &xv, &yv, 6, 0, 1, None).unwrap();
    let without = e.stats().loss_sum / 6.0;
    assert!((with - without - penalty_now).abs() < 1e-9);
    // Bad settings.
    assert!(e
        .set_regularizers(vec![(9, L1L2 { l1: 0.0, l2: 0.1 })])
        .is_err());
    assert!(e
        .set_regularizers(vec![(0, L1L2 { l1: -1.0, l2: 0.1 })])
        .is_err());
}

/// A regularized first-layer kernel on mostly-zero inputs: its gradient is nonzero on every
/// row, so the sparse-input path must neither fuse the update nor skip untouched rows; it
/// matches the dense path to rounding, with and without norm clipping.
#[test]
fn a_regularized_kernel_on_the_sparse_input_path_matches_the_dense_path() {
    use crate::regularizers::L1L2;
    let (x, y) = mostly_zeros_task(41);
    for opt in [
        sgd(0.05),
        clipped(Clip::Norm(0.5)),
        momentum_sgd(0.05, 0.9, false),
    ] {
        let run = |sparse_on: bool| {
            let (n, cols) = (y.len() / 10, x.len() / (y.len() / 10));
            let mut e = engine(cols, &sparse_specs(48), 8);
            e.set_sparse_input(sparse_on);
            let cce = LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            });
            e.compile(cce, Vec::<MetricSpec>::new(), opt).unwrap();
            e.set_regularizers(vec![(
                0,
                L1L2 {
                    l1: 0.001,
                    l2: 0.01,
                },
            )])
            .unwrap();
            let xv = View2::from_f32(&x, n, cols).unwrap();
            let yv = View2::from_f32(&y, n, 10).unwrap();
            e.train_steps(&pool_of(2), &xv, &yv, None, 32, 0, 6, None, None)
                .unwrap();
            assert!(!e.last_fused);
            (e.vars.to_vec(), sparse_batch(&e))
        };
        let ((sparse, took), (dense, _)) = (run(true), run(false));
        assert!(took, "the sparse path was not taken");
        for (a, b) in sparse.iter().zip(&dense) {
            assert!(
                (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                "{opt:?}: {a} vs {b}"
            );
        }
    }
}
