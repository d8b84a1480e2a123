//! "No memory is allocated per step": after the first call has sized every buffer, further
//! training, evaluation and prediction calls make no heap allocation at all.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use kerox_core::engine::{BatchNormSpec, DenseSpec, DropoutSpec, View2};
use kerox_core::kernels::Activation;
use kerox_core::losses::CategoricalCrossentropy;
use kerox_core::metrics::CategoricalAccuracy;
use kerox_core::optim::{Adadelta, Adagrad, Adam, Adamax, Ema, Lion, Nadam, Rmsprop, Sgd};
use kerox_core::{Clip, Engine, LayerSpec, LossSpec, MetricSpec, OptimizerSpec};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards its arguments unchanged to `System` (a correct allocator),
// so blocks are allocated, resized and freed by `System` alone; counting touches only atomics
// (no allocation, no reentrancy).
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `layout` has a non-zero size (our caller's contract, passed on
        // unchanged to `System`, whose contract is the same).
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from this allocator, i.e. from `System`, with this `layout`
        // (our caller's contract, passed on unchanged).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from `System` with `layout`, and `new_size` is non-zero and
        // valid for its alignment (our caller's contract, passed on unchanged).
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn seed_model(opt: OptimizerSpec) -> Engine {
    let dense = |units, activation| {
        LayerSpec::Dense(DenseSpec {
            units,
            activation,
            use_bias: true,
            trainable: true,
        })
    };
    let specs = [
        dense(256, Activation::Relu),
        dense(64, Activation::Relu),
        LayerSpec::BatchNorm(BatchNormSpec {
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            trainable: true,
        }),
        LayerSpec::Dropout(DropoutSpec { rate: 0.1, seed: 3 }),
        dense(32, Activation::Relu),
        dense(10, Activation::Softmax),
    ];
    let mut e = Engine::new(784, &specs).unwrap();
    for i in 0..e.variables().len() {
        let n = e.variables()[i].len;
        let v: Vec<f32> = (0..n)
            .map(|j| ((j * 7919 % 113) as f32 - 56.0) * 1e-3)
            .collect();
        e.set_var(i, &v).unwrap();
    }
    e.compile(
        LossSpec::CategoricalCrossentropy(CategoricalCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        }),
        vec![
            MetricSpec::CategoricalAccuracy(CategoricalAccuracy).into(),
            MetricSpec::CategoricalAccuracy(CategoricalAccuracy).weighted(),
        ],
        opt,
    )
    .unwrap();
    e
}

#[test]
fn steps_after_the_first_allocate_nothing() {
    let n = 200;
    let dense_x: Vec<f32> = (0..n * 784).map(|i| (i % 255) as f32 / 255.0).collect();
    // Four values in five exactly 0, as MNIST's pixels: the first layer's sparse-input path.
    let sparse_x: Vec<f32> = (0..n * 784)
        .map(|i| {
            if (i * 7) % 5 == 0 {
                (i % 255) as f32 / 255.0
            } else {
                0.0
            }
        })
        .collect();
    let momentum = Sgd {
        momentum: 0.9,
        nesterov: false,
    };
    let momentum_clipnorm = OptimizerSpec {
        weight_decay: Some(1e-4),
        clip: Clip::Norm(1.0),
        ..OptimizerSpec::new(momentum, 0.01)
    };
    let plain = OptimizerSpec::new(Sgd::default(), 0.01);
    // One pool of each width serves every case: a dropped pool's threads exit on their own
    // time and free (and allocate, in crossbeam's thread-local destructors) while a later case
    // counts, and every new pool's threads bring one-off allocations of their own.
    let pools: Vec<rayon::ThreadPool> = [1, 2]
        .map(|threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            // Every worker has started (and made its one-off start-up allocation).
            pool.broadcast(|_| ());
            pool
        })
        .into();
    // Norm clipping with plain SGD at batch 32: the fused update with the scale from Gram
    // matrices.
    let clipnorm = OptimizerSpec {
        clip: Clip::Norm(1.0),
        ..plain
    };
    let global = OptimizerSpec {
        clip: Clip::GlobalNorm(1.0),
        ..plain
    };
    // Every rule's slots and the base's options (EMA, gradient accumulation, weight decay).
    let adam_all = OptimizerSpec {
        weight_decay: Some(0.004),
        clip: Clip::GlobalNorm(1.0),
        ema: Some(Ema {
            momentum: 0.99,
            overwrite_frequency: Some(3),
        }),
        accumulate: Some(2),
        ..OptimizerSpec::new(
            Adam {
                amsgrad: true,
                ..Adam::default()
            },
            1e-3,
        )
    };
    let rmsprop = Rmsprop {
        momentum: 0.5,
        centered: true,
        ..Rmsprop::default()
    };
    // Per-sample weights, on the dense path and the fused sparse-input path.
    let weights: Vec<f32> = (0..n).map(|i| (i % 4) as f32 * 0.5).collect();
    for (x, opt) in [(&dense_x, momentum_clipnorm), (&sparse_x, plain)] {
        steady_state_allocates_nothing(x, n, opt, Some(&weights), &pools);
    }
    for (x, opt) in [
        (&dense_x, momentum_clipnorm),
        (&sparse_x, momentum_clipnorm),
        (&sparse_x, plain),
        (&sparse_x, clipnorm),
        (&sparse_x, global),
        (&sparse_x, adam_all),
        (&sparse_x, OptimizerSpec::new(rmsprop, 1e-3)),
        (&sparse_x, OptimizerSpec::new(Adagrad::default(), 1e-2)),
        (&sparse_x, OptimizerSpec::new(Adadelta::default(), 1.0)),
        (&sparse_x, OptimizerSpec::new(Adamax::default(), 1e-3)),
        (&sparse_x, OptimizerSpec::new(Nadam::default(), 1e-3)),
        (&dense_x, OptimizerSpec::new(Lion::default(), 1e-4)),
    ] {
        steady_state_allocates_nothing(x, n, opt, None, &pools);
    }
}

fn steady_state_allocates_nothing(
    x: &[f32],
    n: usize,
    opt: OptimizerSpec,
    sw: Option<&[f32]>,
    pools: &[rayon::ThreadPool],
) {
    let mut y = vec![0f32; n * 10];
    for r in 0..n {
        y[r * 10 + r % 10] = 1.0;
    }
    let xv = View2::from_f32(x, n, 784).unwrap();
    let yv = View2::from_f32(&y, n, 10).unwrap();
    let order: Vec<usize> = (0..n).rev().collect();
    let mut out = vec![0f32; n * 10];
    for pool in pools {
        let threads = pool.current_num_threads();
        let mut e = seed_model(opt);
        // First calls size the buffers.
        e.train_steps(pool, &xv, &yv, Some(&order), 32, 0, 2, None, sw)
            .unwrap();
        e.test_steps(pool, &xv, &yv, 32, 0, 1, sw).unwrap();
        e.predict(pool, &xv, 0, 32, &mut out).unwrap();
        // A window of steps, an evaluation and a prediction allocates nothing. One retry, since
        // the thread pool's runtime may allocate now and then by itself (its queue of jobs
        // handed in from outside the pool grows by blocks); an allocation per step or per call
        // shows in both windows.
        let mut allocs = Vec::new();
        for window in 0..2 {
            ALLOCS.store(0, Ordering::SeqCst);
            COUNTING.store(true, Ordering::SeqCst);
            let steps = e
                .train_steps(pool, &xv, &yv, Some(&order), 32, 2, 5, None, sw)
                .unwrap();
            e.test_steps(pool, &xv, &yv, 32, 0, 7, sw).unwrap();
            e.predict(pool, &xv, 0, 32, &mut out).unwrap();
            COUNTING.store(false, Ordering::SeqCst);
            assert_eq!(steps, 5);
            allocs.push(ALLOCS.load(Ordering::SeqCst));
            if allocs[window] == 0 {
                break;
            }
        }
        assert_eq!(
            allocs.last(),
            Some(&0),
            "heap allocations during steady-state calls with {threads} thread(s), {opt:?}: {allocs:?}"
        );
    }
}
