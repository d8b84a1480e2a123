//! [`Rect`]: some columns of every row of a row-major matrix, borrowed mutably.
//!
//! Parts of a team job that split a matrix by columns each write a column range of every row;
//! those ranges are not contiguous, so they cannot be handed out as sub-slices. A `Rect` hands
//! out one row's columns at a time instead.

use std::marker::PhantomData;
use std::ops::Range;

/// Columns `c0..c1` of `rows` rows of a row-major f32 matrix whose rows are `stride` apart.
pub struct Rect<'a> {
    ptr: *mut f32,
    rows: usize,
    cols: usize,
    stride: usize,
    _borrow: PhantomData<&'a mut [f32]>,
}

impl<'a> Rect<'a> {
    /// Columns `cols` of every row of `data` (rows of `stride` values).
    pub fn new(data: &'a mut [f32], stride: usize, cols: Range<usize>) -> Rect<'a> {
        assert!(
            cols.start <= cols.end && cols.end <= stride,
            "Rect: columns {cols:?} of rows of {stride}"
        );
        let rows = data.len().checked_div(stride).unwrap_or(0);
        assert_eq!(rows * stride, data.len(), "Rect: partial row");
        // SAFETY: rows·stride values of `data`, borrowed mutably for 'a; cols.end <= stride.
        unsafe { Rect::from_raw_parts(data.as_mut_ptr(), rows, stride, cols) }
    }

    /// Columns `cols` of the `rows` rows of `stride` values starting at `base`.
    ///
    /// # Safety
    /// For 'a, element `c` of row `r` (r < rows, c in cols) must be valid to read and write
    /// and used by nothing else, and `cols.end <= stride` (so rows do not overlap).
    pub unsafe fn from_raw_parts(
        base: *mut f32,
        rows: usize,
        stride: usize,
        cols: Range<usize>,
    ) -> Rect<'a> {
        debug_assert!(cols.start <= cols.end && cols.end <= stride);
        Rect {
            ptr: base.wrapping_add(cols.start),
            rows,
            cols: cols.len(),
            stride,
            _borrow: PhantomData,
        }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r`'s columns.
    #[inline]
    pub fn row(&mut self, r: usize) -> &mut [f32] {
        assert!(r < self.rows, "Rect: row {r} of {}", self.rows);
        // SAFETY: row r's columns are inside the borrowed rectangle (constructor contract),
        // and `&mut self` keeps this the only reference handed out.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.wrapping_add(r * self.stride), self.cols) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_the_named_columns() {
        let mut m: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut r = Rect::new(&mut m, 4, 1..3);
        assert_eq!((r.rows(), r.cols()), (3, 2));
        assert_eq!(r.row(2), &[9.0, 10.0]);
        r.row(0).fill(-1.0);
        assert_eq!(&m[..4], &[0.0, -1.0, -1.0, 3.0]);
    }

    #[test]
    #[should_panic]
    fn a_row_past_the_end_panics() {
        let mut m = vec![0f32; 8];
        Rect::new(&mut m, 4, 0..4).row(2);
    }
}
