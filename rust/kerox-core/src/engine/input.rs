//! Borrowed views of the caller's arrays, read in place.
//!
//! `fit` never copies the whole input: each step gathers the rows of its batch straight from
//! the caller's buffer, whatever its dtype (converted to f32 on the fly, as Keras casts
//! inputs to the model dtype) and whatever its strides (C order, Fortran order, slices,
//! memory maps).

use crate::error::{Error, Result};

/// Element types the engine reads directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    F32,
    F64,
    U8,
    I8,
    I16,
    I32,
    I64,
    U16,
    U32,
    U64,
    Bool,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 | DType::Bool => 1,
            DType::I16 | DType::U16 => 2,
            DType::F32 | DType::I32 | DType::U32 => 4,
            DType::F64 | DType::I64 | DType::U64 => 8,
        }
    }

    /// Whether values are integers (valid as sparse class labels).
    pub fn is_integer(self) -> bool {
        !matches!(self, DType::F32 | DType::F64)
    }
}

/// A read-only 2-D strided view of someone else's memory: element (r, c) lives at
/// `ptr + r*row_stride + c*col_stride` (strides in bytes, possibly negative).
#[derive(Clone, Copy, Debug)]
pub struct View2 {
    ptr: *const u8,
    dtype: DType,
    rows: usize,
    cols: usize,
    row_stride: isize,
    col_stride: isize,
}

// SAFETY: a View2 is only a description of memory that its creator promised (in `from_raw`)
// stays valid and unmodified while the view is used; reading it from worker threads is fine.
unsafe impl Send for View2 {}
// SAFETY: see `Send`; the view is read-only.
unsafe impl Sync for View2 {}

impl View2 {
    /// Wraps a raw strided buffer.
    ///
    /// # Safety
    /// For every `r < rows`, `c < cols`, `ptr + r*row_stride + c*col_stride` must point to a
    /// readable, properly aligned element of type `dtype`, and that memory must stay valid
    /// (not freed) for as long as the view is used.
    pub unsafe fn from_raw(
        ptr: *const u8,
        dtype: DType,
        rows: usize,
        cols: usize,
        row_stride: isize,
        col_stride: isize,
    ) -> Self {
        View2 {
            ptr,
            dtype,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// A view of a row-major f32 slice (safe: the borrow keeps the memory alive).
    pub fn from_f32(data: &[f32], rows: usize, cols: usize) -> Result<Self> {
        if data.len() != rows * cols {
            return Err(Error::Shape(format!(
                "buffer of {} values cannot be viewed as {rows}x{cols}",
                data.len()
            )));
        }
        // SAFETY: every (r, c) < (rows, cols) indexes inside `data`, which outlives
        // the uses in tests and benches that call this.
        Ok(unsafe {
            View2::from_raw(
                data.as_ptr().cast(),
                DType::F32,
                rows,
                cols,
                (cols * 4) as isize,
                4,
            )
        })
    }

    pub fn rows(&self) -> usize {
        self.rows
    }
    pub fn cols(&self) -> usize {
        self.cols
    }
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    fn row_ptr(&self, r: usize) -> *const u8 {
        debug_assert!(r < self.rows);
        self.ptr.wrapping_offset(r as isize * self.row_stride)
    }

    /// Converts row `r` to f32 into `dst` (len = cols).
    pub fn read_row_f32(&self, r: usize, dst: &mut [f32]) {
        assert!(r < self.rows && dst.len() == self.cols);
        let base = self.row_ptr(r);
        let cs = self.col_stride;
        let contiguous = cs == self.dtype.size() as isize;
        macro_rules! convert {
            ($t:ty, $conv:expr) => {{
                if contiguous {
                    // SAFETY: `from_raw`'s contract makes `cols` contiguous aligned elements
                    // of this type readable from `base`.
                    let src = unsafe { std::slice::from_raw_parts(base.cast::<$t>(), self.cols) };
                    for (d, s) in dst.iter_mut().zip(src) {
                        *d = $conv(*s);
                    }
                } else {
                    for (c, d) in dst.iter_mut().enumerate() {
                        // SAFETY: (r, c) is in bounds, so this address is a readable element.
                        let s = unsafe { *base.wrapping_offset(c as isize * cs).cast::<$t>() };
                        *d = $conv(s);
                    }
                }
            }};
        }
        match self.dtype {
            DType::F32 => convert!(f32, |v: f32| v),
            DType::F64 => convert!(f64, |v: f64| v as f32),
            DType::U8 => convert!(u8, |v: u8| v as f32),
            DType::I8 => convert!(i8, |v: i8| v as f32),
            DType::I16 => convert!(i16, |v: i16| v as f32),
            DType::U16 => convert!(u16, |v: u16| v as f32),
            DType::I32 => convert!(i32, |v: i32| v as f32),
            DType::U32 => convert!(u32, |v: u32| v as f32),
            DType::I64 => convert!(i64, |v: i64| v as f32),
            DType::U64 => convert!(u64, |v: u64| v as f32),
            DType::Bool => convert!(u8, |v: u8| (v != 0) as u8 as f32),
        }
    }

    /// Reads element (r, 0) as an integer class label (floats are truncated, as a cast).
    pub fn read_label(&self, r: usize) -> i64 {
        assert!(r < self.rows && self.cols >= 1);
        let p = self.row_ptr(r);
        // SAFETY: (r, 0) is in bounds, so `p` is a readable, aligned element of `dtype`.
        unsafe {
            match self.dtype {
                DType::F32 => *p.cast::<f32>() as i64,
                DType::F64 => *p.cast::<f64>() as i64,
                DType::U8 | DType::Bool => *p as i64,
                DType::I8 => *p.cast::<i8>() as i64,
                DType::I16 => *p.cast::<i16>() as i64,
                DType::U16 => *p.cast::<u16>() as i64,
                DType::I32 => *p.cast::<i32>() as i64,
                DType::U32 => *p.cast::<u32>() as i64,
                DType::I64 => *p.cast::<i64>(),
                DType::U64 => *p.cast::<u64>() as i64,
            }
        }
    }

    /// Gathers rows `index[i]` into consecutive rows of `dst` (row-major, f32).
    pub fn gather_f32(&self, index: &[usize], dst: &mut [f32]) {
        let cols = self.cols;
        for (i, &r) in index.iter().enumerate() {
            self.read_row_f32(r, &mut dst[i * cols..(i + 1) * cols]);
        }
    }

    /// Gathers class labels of rows `index[i]`.
    pub fn gather_labels(&self, index: &[usize], dst: &mut [i64]) {
        for (d, &r) in dst.iter_mut().zip(index) {
            *d = self.read_label(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathers_fortran_order_f64_rows() {
        // A 3x2 matrix stored column-major as f64: [[1,4],[2,5],[3,6]].
        let data = [1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0];
        // SAFETY: all (r, c) < (3, 2) index inside `data`.
        let v = unsafe { View2::from_raw(data.as_ptr().cast(), DType::F64, 3, 2, 8, 24) };
        let mut out = [0f32; 4];
        v.gather_f32(&[2, 0], &mut out);
        assert_eq!(out, [3.0, 6.0, 1.0, 4.0]);
    }

    #[test]
    fn reads_labels_of_every_integer_width() {
        let l8 = [3u8, 7];
        let l64 = [-1i64, 9];
        // SAFETY: both views index inside their arrays.
        let (a, b) = unsafe {
            (
                View2::from_raw(l8.as_ptr(), DType::U8, 2, 1, 1, 1),
                View2::from_raw(l64.as_ptr().cast(), DType::I64, 2, 1, 8, 8),
            )
        };
        let mut out = [0i64; 2];
        a.gather_labels(&[1, 0], &mut out);
        assert_eq!(out, [7, 3]);
        b.gather_labels(&[0, 1], &mut out);
        assert_eq!(out, [-1, 9]);
    }
}
