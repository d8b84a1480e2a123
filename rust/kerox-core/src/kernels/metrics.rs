//! Accuracy metrics (Keras 3 `accuracy_metrics.py`).

use super::loss::Targets;

/// Index of the first maximum (NaNs never win; 0 for an all-NaN row).
#[inline(always)]
fn argmax_first(x: &[f32]) -> usize {
    let mut best = 0;
    let mut bv = f32::NEG_INFINITY;
    for (i, &v) in x.iter().enumerate() {
        if v > bv {
            bv = v;
            best = i;
        }
    }
    best
}

/// Row `r`'s weight: `weights[r]`, or 1 unweighted.
#[inline(always)]
fn row_weight(weights: Option<&[f32]>, r: usize) -> f64 {
    weights.map_or(1.0, |w| w[r] as f64)
}

/// Asserts the lengths of `preds` and `weights`; false when there is nothing to count.
#[inline(always)]
fn check_lengths(preds: &[f32], rows: usize, cols: usize, weights: Option<&[f32]>) -> bool {
    assert_eq!(preds.len(), rows * cols, "preds length");
    if let Some(w) = weights {
        assert_eq!(w.len(), rows, "weights length");
    }
    rows * cols != 0
}

#[inline(always)]
fn hits_body(
    preds: &[f32],
    rows: usize,
    cols: usize,
    targets: Targets<'_>,
    weights: Option<&[f32]>,
) -> f64 {
    if !check_lengths(preds, rows, cols, weights) {
        return 0.0;
    }
    let mut total = 0.0f64;
    match targets {
        Targets::Dense(y) => {
            assert_eq!(y.len(), rows * cols, "targets length");
            let rows = preds.chunks_exact(cols).zip(y.chunks_exact(cols));
            for (r, (pr, yr)) in rows.enumerate() {
                if argmax_first(pr) == argmax_first(yr) {
                    total += row_weight(weights, r);
                }
            }
        }
        Targets::Sparse(l) => {
            assert_eq!(l.len(), rows, "labels length");
            for (r, (pr, &c)) in preds.chunks_exact(cols).zip(l).enumerate() {
                if argmax_first(pr) as i64 == c {
                    total += row_weight(weights, r);
                }
            }
        }
    }
    total
}

multiversion! {
    /// Σ of `weights[r]` (1 with `None`, i.e. the count, exact as f64) over the rows where
    /// argmax(preds row) == argmax(target row) (Dense) or == label (Sparse). First max wins
    /// on ties.
    pub fn categorical_hits(
        preds: &[f32],
        rows: usize,
        cols: usize,
        targets: Targets<'_>,
        weights: Option<&[f32]>,
    ) -> f64 => hits_body;
}

#[inline(always)]
fn binary_acc_body(
    preds: &[f32],
    rows: usize,
    cols: usize,
    y: &[f32],
    threshold: f32,
    weights: Option<&[f32]>,
) -> f64 {
    assert_eq!(y.len(), rows * cols, "y length");
    if !check_lengths(preds, rows, cols, weights) {
        return 0.0;
    }
    let mut total = 0.0f64;
    for (r, (pr, yr)) in preds
        .chunks_exact(cols)
        .zip(y.chunks_exact(cols))
        .enumerate()
    {
        let mut count = 0u32;
        for (&p, &t) in pr.iter().zip(yr) {
            let pred = if p > threshold { 1.0f32 } else { 0.0 };
            count += (t == pred) as u32;
        }
        total += row_weight(weights, r) * (count as f64 / cols as f64);
    }
    total
}

multiversion! {
    /// Σ over rows of `weights[r]` (1 with `None`) times the mean over cols of
    /// [y == (p > threshold) as f32] (Keras BinaryAccuracy).
    pub fn binary_accuracy_sum(
        preds: &[f32],
        rows: usize,
        cols: usize,
        y: &[f32],
        threshold: f32,
        weights: Option<&[f32]>,
    ) -> f64 => binary_acc_body;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testutil::*;

    fn argmax_ref(x: &[f32]) -> usize {
        let mut best = 0;
        for i in 1..x.len() {
            if x[i] > x[best] {
                best = i;
            }
        }
        best
    }

    #[test]
    fn categorical_hits_match_reference() {
        let mut rng = Rng::new(20);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    // coarse values so ties happen
                    let p: Vec<f32> = (0..rows * cols).map(|_| rng.below(4) as f32).collect();
                    let y: Vec<f32> = (0..rows * cols).map(|_| rng.below(3) as f32).collect();
                    let lab: Vec<i64> = (0..rows).map(|_| rng.below(cols) as i64).collect();
                    let mut want_d = 0.0;
                    let mut want_s = 0.0;
                    for r in 0..rows {
                        let pr = &p[r * cols..(r + 1) * cols];
                        let am = argmax_ref(pr);
                        want_d += f64::from(am == argmax_ref(&y[r * cols..(r + 1) * cols]));
                        want_s += f64::from(am as i64 == lab[r]);
                    }
                    assert_eq!(
                        categorical_hits(level, &p, rows, cols, Targets::Dense(&y), None),
                        want_d
                    );
                    assert_eq!(
                        categorical_hits(level, &p, rows, cols, Targets::Sparse(&lab), None),
                        want_s
                    );
                }
            }
        }
    }

    #[test]
    fn first_max_wins_on_ties() {
        for level in levels() {
            let p = [0.5f32, 0.5, 0.1, 0.2, 0.7, 0.7];
            assert_eq!(
                categorical_hits(level, &p, 2, 3, Targets::Sparse(&[0, 1]), None),
                2.0
            );
            assert_eq!(
                categorical_hits(level, &p, 2, 3, Targets::Sparse(&[1, 2]), None),
                0.0
            );
            let y = [0.0f32, 1.0, 0.0, 0.0, 1.0, 0.0];
            assert_eq!(
                categorical_hits(level, &p, 2, 3, Targets::Dense(&y), None),
                1.0
            );
            // works on logits too
            let z = [-3.0f32, -1.0, -2.0];
            assert_eq!(
                categorical_hits(level, &z, 1, 3, Targets::Sparse(&[1]), None),
                1.0
            );
        }
    }

    #[test]
    fn binary_accuracy_matches_reference() {
        let mut rng = Rng::new(21);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let mut p = rng.vec(n, 0.0, 1.0);
                    p[0] = 0.5; // exactly at the threshold → predicted 0
                    let y: Vec<f32> = (0..n).map(|_| (rng.next_u64() & 1) as f32).collect();
                    let mut want = 0.0f64;
                    for r in 0..rows {
                        let mut c = 0;
                        for j in 0..cols {
                            let i = r * cols + j;
                            let pred = if p[i] > 0.5 { 1.0 } else { 0.0 };
                            c += (y[i] == pred) as usize;
                        }
                        want += c as f64 / cols as f64;
                    }
                    let got = binary_accuracy_sum(level, &p, rows, cols, &y, 0.5, None);
                    assert!(
                        (got - want).abs() < 1e-12,
                        "{level:?} {rows}x{cols}: {got} vs {want}"
                    );
                }
            }
            // strict threshold, and non-0/1 targets never match
            let got =
                binary_accuracy_sum(level, &[0.5, 0.6, 0.9], 1, 3, &[0.0, 1.0, 0.7], 0.5, None);
            assert!((got - 2.0 / 3.0).abs() < 1e-12);
        }
    }

    #[test]
    fn weighted_sums_weigh_each_row() {
        let mut rng = Rng::new(22);
        for level in levels() {
            for &rows in &ROWS {
                for &cols in &COLS {
                    let n = rows * cols;
                    let p: Vec<f32> = (0..n).map(|_| rng.below(4) as f32).collect();
                    let y: Vec<f32> = (0..n).map(|_| rng.below(2) as f32).collect();
                    let lab: Vec<i64> = (0..rows).map(|_| rng.below(cols) as i64).collect();
                    let w: Vec<f32> = (0..rows).map(|_| rng.below(5) as f32 * 0.75).collect();
                    let (mut dense, mut sparse, mut binary) = (0.0f64, 0.0f64, 0.0f64);
                    for r in 0..rows {
                        let (pr, yr) = (&p[r * cols..(r + 1) * cols], &y[r * cols..(r + 1) * cols]);
                        let wr = w[r] as f64;
                        let one = |t: Targets<'_>| categorical_hits(level, pr, 1, cols, t, None);
                        dense += wr * one(Targets::Dense(yr));
                        sparse += wr * one(Targets::Sparse(&lab[r..r + 1]));
                        binary += wr * binary_accuracy_sum(level, pr, 1, cols, yr, 1.5, None);
                    }
                    let got = categorical_hits(level, &p, rows, cols, Targets::Dense(&y), Some(&w));
                    assert_eq!(got, dense, "{level:?} {rows}x{cols}");
                    let t = Targets::Sparse(&lab);
                    assert_eq!(categorical_hits(level, &p, rows, cols, t, Some(&w)), sparse);
                    let got = binary_accuracy_sum(level, &p, rows, cols, &y, 1.5, Some(&w));
                    assert!((got - binary).abs() < 1e-12, "{level:?} {rows}x{cols}");
                    // Weights of 1: the plain sums.
                    let ones = vec![1.0f32; rows];
                    assert_eq!(
                        binary_accuracy_sum(level, &p, rows, cols, &y, 1.5, Some(&ones)),
                        binary_accuracy_sum(level, &p, rows, cols, &y, 1.5, None)
                    );
                }
            }
        }
    }
}
