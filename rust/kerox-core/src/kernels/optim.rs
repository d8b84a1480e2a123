//! Optimizer update steps (spec §4.2–4.3, Keras 3 order: clip → decoupled weight decay →
//! update), one fused vectorisable pass over the variable.

/// Per-element gradient transform applied before the update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ClipElem {
    None,
    /// g·s, for clipnorm / global_clipnorm (the caller computes s from the norm).
    Scale(f32),
    /// clamp(g, −v, v) (NaN passes through).
    Value(f32),
}

/// Hyper-parameters of one SGD step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdStep {
    pub lr: f32,
    pub momentum: f32,
    pub nesterov: bool,
    pub weight_decay: Option<f32>,
}

#[inline(always)]
fn sgd_inner<C: Fn(f32) -> f32>(
    w: &mut [f32],
    g: &[f32],
    m: Option<&mut [f32]>,
    step: &SgdStep,
    clip: C,
) {
    let lr = step.lr;
    let mu = step.momentum;
    let (decay, wd) = match step.weight_decay {
        Some(wd) => (true, wd),
        None => (false, 0.0),
    };
    // w ← w − w·wd·lr (Keras: variable − variable·wd·lr), skipped exactly when disabled.
    let decayed = |wv: f32| if decay { wv - wv * wd * lr } else { wv };
    match m {
        None => {
            for (wv, &gv) in w.iter_mut().zip(g) {
                let gc = clip(gv);
                *wv = decayed(*wv) - gc * lr;
            }
        }
        Some(m) => {
            assert_eq!(m.len(), w.len(), "momentum slot length");
            if step.nesterov {
                for ((wv, mv), &gv) in w.iter_mut().zip(m.iter_mut()).zip(g) {
                    let gc = clip(gv);
                    let mn = -gc * lr + *mv * mu;
                    *mv = mn;
                    *wv = decayed(*wv) + (-gc * lr + mn * mu);
                }
            } else {
                for ((wv, mv), &gv) in w.iter_mut().zip(m.iter_mut()).zip(g) {
                    let gc = clip(gv);
                    let mn = -gc * lr + *mv * mu;
                    *mv = mn;
                    *wv = decayed(*wv) + mn;
                }
            }
        }
    }
}

#[inline(always)]
fn sgd_body(w: &mut [f32], g: &[f32], m: Option<&mut [f32]>, clip: ClipElem, step: &SgdStep) {
    assert_eq!(w.len(), g.len(), "w/g length");
    assert_eq!(
        m.is_some(),
        step.momentum != 0.0,
        "sgd_update: the momentum slot must be given iff momentum != 0"
    );
    match clip {
        ClipElem::None => sgd_inner(w, g, m, step, |x| x),
        ClipElem::Scale(s) => sgd_inner(w, g, m, step, move |x| x * s),
        ClipElem::Value(v) => sgd_inner(w, g, m, step, move |x| {
            if x < -v {
                -v
            } else if x > v {
                v
            } else {
                x
            }
        }),
    }
}

multiversion! {
    /// g' = clip(g); if weight_decay: w ← w − w·wd·lr; then momentum == 0: w ← w − lr·g';
    /// else m ← μ·m − lr·g' (computed as −g'·lr + m·μ), w ← w + m;
    /// nesterov: w ← w + (−g'·lr + m_new·μ). `m` is Some iff momentum != 0 (asserted).
    pub fn sgd_update(w: &mut [f32], g: &[f32], m: Option<&mut [f32]>, clip: ClipElem, step: &SgdStep)
        => sgd_body;
}
