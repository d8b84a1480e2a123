//! One check shared by every rule's tests: the rule's update against a float64 reference of
//! its formula, at every dispatch level, on lengths that hit the SIMD tails, with each clip
//! kind, with and without weight decay and the finiteness check, over several steps.

use super::{ClipElem, Step, UpdateRule};
use crate::dispatch::Level;
use crate::kernels::testutil::{levels, Rng};

/// A rule's element update in f64: `(w after weight decay, clipped g, slots, step) → new w`.
pub(crate) type Elem64<'a> = &'a dyn Fn(f64, f64, &mut [f64], &Step) -> f64;

/// `x` rounded to f32, as Keras casts a Python float to the variable's dtype.
pub(crate) fn f32_of(x: f64) -> f64 {
    x as f32 as f64
}

const LENGTHS: [usize; 9] = [0, 1, 7, 15, 16, 17, 33, 257, 1000];
const STEPS: u64 = 4;

fn clip64(clip: ClipElem, g: f32) -> f64 {
    match clip {
        ClipElem::None => g as f64,
        ClipElem::Scale(s) => g as f64 * s as f64,
        ClipElem::Value(v) => (g as f64).clamp(-v as f64, v as f64),
    }
}

/// Runs `rule` for [`STEPS`] steps and compares weights and slots with `elem`'s, within
/// `rtol` (relative, with an absolute floor of `rtol·1e-2`); every level must give the
/// scalar level's bits.
pub(crate) fn check_rule<R: UpdateRule>(rule: R, elem: Elem64<'_>, rtol: f64) {
    let ns = rule.slots().len();
    let mut rng = Rng::new(0xA11CE);
    for &n in &LENGTHS {
        // Built per kind rather than held in an array, where `ClipElem::None`'s unused payload
        // bytes are left uninitialised and a vectorised compare of the array trips valgrind.
        for kind in 0..3 {
            let clip = match kind {
                0 => ClipElem::None,
                1 => ClipElem::Scale(0.7),
                _ => ClipElem::Value(0.5),
            };
            for wd in [None, Some(0.01f32)] {
                let w0 = rng.vec(n, -1.0, 1.0);
                let gs: Vec<Vec<f32>> = (0..STEPS).map(|_| rng.vec(n, -2.0, 2.0)).collect();
                let mut bits: Option<Vec<u32>> = None;
                for level in levels() {
                    let ctx = format!("{rule:?} {level:?} n={n} {clip:?} wd={wd:?}");
                    let (w, slots) = run(rule, level, &w0, &gs, clip, wd);
                    let (w64, slots64) = reference(rule, elem, &w0, &gs, clip, wd);
                    close(&w, &w64, rtol, &ctx);
                    for k in 0..ns {
                        close(&slots[k], &slots64[k], rtol, &format!("{ctx} slot {k}"));
                    }
                    let got: Vec<u32> = w
                        .iter()
                        .chain(slots.iter().flatten())
                        .map(|v| v.to_bits())
                        .collect();
                    match &bits {
                        None => bits = Some(got),
                        Some(b) => assert!(*b == got, "{ctx}: not the scalar level's bits"),
                    }
                }
            }
        }
    }
    check_finite_flag(rule);
}

fn steps<R: UpdateRule>(rule: R, wd: Option<f32>) -> impl Iterator<Item = Step> {
    let mut state = rule.state_init().unwrap_or(0.0);
    (0..STEPS).map(move |it| {
        state = rule.begin_step(state, it);
        Step {
            lr: 0.01,
            iteration: it,
            weight_decay: wd,
            state,
        }
    })
}

fn run<R: UpdateRule>(
    rule: R,
    level: Level,
    w0: &[f32],
    gs: &[Vec<f32>],
    clip: ClipElem,
    wd: Option<f32>,
) -> (Vec<f32>, Vec<Vec<f32>>) {
    let n = w0.len();
    let mut w = w0.to_vec();
    let mut slots: Vec<Vec<f32>> = (0..rule.slots().len())
        .map(|k| vec![rule.slot_init(k); n])
        .collect();
    for (i, (step, g)) in steps(rule, wd).zip(gs).enumerate() {
        let mut s: Vec<&mut [f32]> = slots.iter_mut().map(|s| &mut s[..]).collect();
        let ok = rule.update(level, &mut w, g, &mut s, clip, &step, i % 2 == 1);
        assert!(ok, "{rule:?}: finite weights reported as not finite");
    }
    (w, slots)
}

fn reference<R: UpdateRule>(
    rule: R,
    elem: Elem64<'_>,
    w0: &[f32],
    gs: &[Vec<f32>],
    clip: ClipElem,
    wd: Option<f32>,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let ns = rule.slots().len();
    let mut w: Vec<f64> = w0.iter().map(|&v| v as f64).collect();
    let mut slots: Vec<Vec<f64>> = (0..ns)
        .map(|k| vec![rule.slot_init(k) as f64; w.len()])
        .collect();
    let mut s = vec![0.0f64; ns];
    for (step, g) in steps(rule, wd).zip(gs) {
        for (i, wv) in w.iter_mut().enumerate() {
            let mut x = *wv;
            if let Some(wd) = step.weight_decay {
                x -= x * wd as f64 * step.lr as f64;
            }
            for k in 0..ns {
                s[k] = slots[k][i];
            }
            *wv = elem(x, clip64(clip, g[i]), &mut s, &step);
            for k in 0..ns {
                slots[k][i] = s[k];
            }
        }
    }
    (w, slots)
}

#[track_caller]
fn close(got: &[f32], want: &[f64], rtol: f64, ctx: &str) {
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = rtol * 1e-2 + rtol * w.abs();
        assert!(
            (g as f64 - w).abs() <= tol,
            "{ctx}: element {i}: got {g}, want {w}"
        );
    }
}

/// With the check on, a weight made infinite is reported; with it off, nothing is.
fn check_finite_flag<R: UpdateRule>(rule: R) {
    for level in levels() {
        for n in [1usize, 300] {
            let mut w = vec![0.5f32; n];
            w[n - 1] = f32::INFINITY;
            let g = vec![0.25f32; n];
            let mut slots: Vec<Vec<f32>> = (0..rule.slots().len())
                .map(|k| vec![rule.slot_init(k); n])
                .collect();
            let mut s: Vec<&mut [f32]> = slots.iter_mut().map(|s| &mut s[..]).collect();
            let step = steps(rule, None).next().unwrap();
            let ok = rule.update(level, &mut w, &g, &mut s, ClipElem::None, &step, true);
            assert!(
                !ok,
                "{rule:?} {level:?} n={n}: an infinite weight passed the check"
            );
        }
    }
}
