//! PyO3 bindings: the `kerox._core` extension module. No maths here: argument conversion,
//! one entry helper that releases the GIL and turns errors and panics into exceptions.

use std::panic::{catch_unwind, AssertUnwindSafe};

use kerox_core::dispatch::{self, Level};
use kerox_core::engine::{DType, Engine as CoreEngine, LayerSpec, View2};
use kerox_core::losses::LossSpec;
use kerox_core::metrics::{Metric, MetricSpec};
use kerox_core::optim::{Clip, Ema, OptimizerSpec, Rule};
use kerox_core::regularizers::L1L2;
use kerox_core::settings::Settings;
use kerox_core::{pool, Error};
use numpy::{
    PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyReadonlyArrayDyn,
    PyReadwriteArray2, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// Maps an engine error to the Python exception Keras would raise.
fn to_py(e: Error) -> PyErr {
    match e {
        Error::Shape(m) | Error::Value(m) => PyValueError::new_err(m),
        Error::Type(m) => PyTypeError::new_err(m),
        Error::State(m) => PyRuntimeError::new_err(m),
    }
}

/// The one way into the engine for long calls: releases the GIL, runs `f`, and turns an
/// engine error into the matching exception and a panic into a RuntimeError (never an abort).
fn run<T: Send>(py: Python<'_>, f: impl FnOnce() -> kerox_core::Result<T> + Send) -> PyResult<T> {
    let out = py.detach(|| catch_unwind(AssertUnwindSafe(f)));
    match out {
        Ok(r) => r.map_err(to_py),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(PyRuntimeError::new_err(format!(
                "internal error in the kerox engine (please report it): {msg}"
            )))
        }
    }
}

fn dtype_of(arr: &Bound<'_, PyUntypedArray>, what: &str) -> PyResult<DType> {
    let d = arr.dtype();
    if d.is_native_byteorder() == Some(false) {
        return Err(PyTypeError::new_err(format!(
            "{what} must have native byte order; convert it with .astype(...)"
        )));
    }
    let t = match (d.kind(), d.itemsize()) {
        (b'f', 4) => DType::F32,
        (b'f', 8) => DType::F64,
        (b'u', 1) => DType::U8,
        (b'u', 2) => DType::U16,
        (b'u', 4) => DType::U32,
        (b'u', 8) => DType::U64,
        (b'i', 1) => DType::I8,
        (b'i', 2) => DType::I16,
        (b'i', 4) => DType::I32,
        (b'i', 8) => DType::I64,
        (b'b', 1) => DType::Bool,
        _ => {
            return Err(PyTypeError::new_err(format!(
                "{what} has dtype {}, which the engine cannot read; expected a float, integer or bool array",
                d.str()?
            )))
        }
    };
    Ok(t)
}

/// A read-only 2-D view of a numpy array, borrowing `arr` (so it cannot outlive the Python
/// reference that keeps the buffer alive).
fn view2<'a>(arr: &'a Bound<'_, PyUntypedArray>, what: &str) -> PyResult<View2<'a>> {
    if arr.ndim() != 2 {
        return Err(PyValueError::new_err(format!(
            "{what} must be 2-D for the engine; received shape {:?}",
            arr.shape()
        )));
    }
    if !arr.is_aligned() {
        return Err(PyValueError::new_err(format!(
            "{what} is not aligned in memory; pass np.require({what}, requirements='A')"
        )));
    }
    let dtype = dtype_of(arr, what)?;
    let (shape, strides) = (arr.shape(), arr.strides());
    // SAFETY: `as_array_ptr` of a live `PyUntypedArray` is a valid `PyArrayObject`; reading
    // its `data` field (a plain pointer) is a read of initialised memory, done with the GIL.
    let data = unsafe { (*arr.as_array_ptr()).data as *const u8 };
    // SAFETY: numpy guarantees that for every (r, c) inside `shape`, data + r*strides[0] +
    // c*strides[1] is an element of the array's buffer, (checked above) aligned for `dtype`,
    // which matches the array's dtype; every bit pattern is a valid value of these number
    // types (bool is read as its byte), so even np.empty contents are fine. The view borrows `arr` for 'a, and `arr`
    // holds a reference to the array (and so to its buffer) for all of 'a, so the memory stays
    // allocated. Nothing in kerox writes it meanwhile: the engine only reads views, and the
    // entry points that write a numpy array (`out` of predict / forward_training) first check
    // with `check_disjoint` that it does not overlap the view. (As with any extension that
    // releases the GIL over a numpy buffer, another Python thread writing the same array
    // during the call would race; kerox's Python layer never does.)
    Ok(unsafe { View2::from_raw(data, dtype, shape[0], shape[1], strides[0], strides[1]) })
}

/// Refuses an output buffer that overlaps an input view: the engine would write memory it
/// reads through the view (and `out` is a `&mut` slice, which must not alias anything).
fn check_disjoint(x: &View2<'_>, out: &[f32]) -> PyResult<()> {
    let xr = x.addr_range();
    let start = out.as_ptr() as usize;
    let end = start + std::mem::size_of_val(out);
    if xr.start < end && start < xr.end {
        return Err(PyValueError::new_err(
            "out must not share memory with x; pass a separate output array",
        ));
    }
    Ok(())
}

fn get_item<'py, T>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T>
where
    T: pyo3::conversion::FromPyObjectOwned<'py>,
{
    match d.get_item(key)? {
        Some(v) => v.extract::<T>().map_err(|e| {
            let e: PyErr = e.into();
            PyTypeError::new_err(format!("spec key {key:?} has the wrong type: {e}"))
        }),
        None => Err(PyValueError::new_err(format!(
            "spec is missing key {key:?}"
        ))),
    }
}

/// A layer dict: `kind` (the engine's name for the layer kind) and its settings, which the
/// kind's own file reads.
fn layer_spec(d: &Bound<'_, PyDict>) -> PyResult<LayerSpec> {
    let kind: String = get_item(d, "kind")?;
    LayerSpec::from_name(&kind, &DictSettings(d)).map_err(to_py)
}

/// A loss dict: `kind` (the loss's Keras name) and the loss's settings.
fn loss_spec(d: &Bound<'_, PyDict>) -> PyResult<LossSpec> {
    let kind: String = get_item(d, "kind")?;
    LossSpec::from_name(&kind, &DictSettings(d)).map_err(to_py)
}

/// A metric dict: `kind` (the metric's Keras name) and its settings, and `weighted`
/// (optional, default False: one of compile's `weighted_metrics`, averaged with the sample
/// weights).
fn metric_spec(d: &Bound<'_, PyDict>) -> PyResult<Metric> {
    let kind: String = get_item(d, "kind")?;
    let spec = MetricSpec::from_name(&kind, &DictSettings(d)).map_err(to_py)?;
    let weighted = match d.get_item("weighted")? {
        Some(_) => get_item(d, "weighted")?,
        None => false,
    };
    Ok(Metric { spec, weighted })
}

/// `sample_weight` as a slice: a 1-D, contiguous float32 array, one weight per sample (its
/// length and values are checked by the engine).
fn sample_weights<'a>(sw: &'a Option<PyReadonlyArray1<'_, f32>>) -> PyResult<Option<&'a [f32]>> {
    match sw {
        Some(a) => a.as_slice().map(Some).map_err(|_| {
            PyValueError::new_err("sample_weight must be a contiguous 1-D float32 array")
        }),
        None => Ok(None),
    }
}

/// Takes `sample_weight` as a float32 1-D array (no conversion: the Python front converts),
/// refusing other dtypes and ranks with a message that names it.
fn sample_weight_arg<'py>(
    sw: Option<&Bound<'py, PyUntypedArray>>,
) -> PyResult<Option<PyReadonlyArray1<'py, f32>>> {
    let Some(a) = sw else {
        return Ok(None);
    };
    let d = a.dtype();
    if !(d.kind() == b'f' && d.itemsize() == 4 && d.is_native_byteorder() != Some(false)) {
        return Err(PyTypeError::new_err(format!(
            "sample_weight must be a float32 array; received dtype {}",
            d.str()?
        )));
    }
    if a.ndim() != 1 {
        return Err(PyValueError::new_err(format!(
            "sample_weight must be 1-D (one weight per sample); received shape {:?}",
            a.shape()
        )));
    }
    if !a.is_aligned() {
        return Err(PyValueError::new_err(
            "sample_weight is not aligned in memory; pass np.require(sample_weight, requirements='A')",
        ));
    }
    let arr = a.cast::<PyArray1<f32>>()?;
    Ok(Some(arr.readonly()))
}

/// A unit's settings read from its spec dict (missing or mistyped keys: ValueError).
struct DictSettings<'a, 'py>(&'a Bound<'py, PyDict>);

impl Settings for DictSettings<'_, '_> {
    fn f64(&self, key: &str) -> kerox_core::Result<f64> {
        get_item(self.0, key).map_err(|e| Error::Value(e.to_string()))
    }
    fn flag(&self, key: &str) -> kerox_core::Result<bool> {
        get_item(self.0, key).map_err(|e| Error::Value(e.to_string()))
    }
    fn text(&self, key: &str) -> kerox_core::Result<String> {
        get_item(self.0, key).map_err(|e| Error::Value(e.to_string()))
    }
    fn uint(&self, key: &str) -> kerox_core::Result<u64> {
        get_item(self.0, key).map_err(|e| Error::Value(e.to_string()))
    }
    fn floats(&self, key: &str) -> kerox_core::Result<Option<Vec<f32>>> {
        get_item(self.0, key).map_err(|e| Error::Value(e.to_string()))
    }
}

/// The optimizer dict built by `Optimizer._engine_spec()`: the rule by name with its own
/// settings, and the base's.
fn optimizer_spec(d: &Bound<'_, PyDict>) -> PyResult<OptimizerSpec> {
    let clip_kind: String = get_item(d, "clip")?;
    let clip_value: f32 = get_item(d, "clip_value")?;
    let clip = match clip_kind.as_str() {
        "none" => Clip::None,
        "norm" => Clip::Norm(clip_value),
        "global_norm" => Clip::GlobalNorm(clip_value),
        "value" => Clip::Value(clip_value),
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown clip kind {other:?}"
            )))
        }
    };
    let rule: String = get_item(d, "rule")?;
    let ema = match get_item::<Option<f32>>(d, "ema_momentum")? {
        None => None,
        Some(momentum) => Some(Ema {
            momentum,
            overwrite_frequency: get_item(d, "ema_overwrite_frequency")?,
        }),
    };
    Ok(OptimizerSpec {
        rule: Rule::from_name(&rule, &DictSettings(d)).map_err(to_py)?,
        learning_rate: get_item(d, "learning_rate")?,
        weight_decay: get_item(d, "weight_decay")?,
        clip,
        ema,
        accumulate: get_item(d, "gradient_accumulation_steps")?,
    })
}

/// A compiled Sequential stack living in Rust. Methods that train or predict release the GIL;
/// a second thread calling into the same engine meanwhile gets a RuntimeError ("Already
/// borrowed") instead of racing.
#[pyclass(module = "kerox._core", name = "Engine")]
struct Engine {
    inner: CoreEngine,
    /// Test hook: the next `train_steps` panics inside the engine call (see `_debug_panic`).
    panic_next_step: bool,
}

#[pymethods]
impl Engine {
    #[new]
    fn new(input_dim: usize, layers: &Bound<'_, PyList>) -> PyResult<Self> {
        let specs = layers
            .iter()
            .map(|l| layer_spec(l.cast::<PyDict>()?))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(Engine {
            inner: CoreEngine::new(input_dim, &specs).map_err(to_py)?,
            panic_next_step: false,
        })
    }

    /// `[(shape, trainable), ...]` in Keras's weight order.
    fn variables(&self) -> Vec<(Vec<usize>, bool)> {
        self.inner
            .variables()
            .iter()
            .map(|v| (v.shape.clone(), v.trainable))
            .collect()
    }

    #[getter]
    fn input_dim(&self) -> usize {
        self.inner.input_dim()
    }

    #[getter]
    fn output_dim(&self) -> usize {
        self.inner.output_dim()
    }

    /// A copy of variable `i`, shaped.
    fn get_var<'py>(&self, py: Python<'py>, i: usize) -> PyResult<Bound<'py, PyAny>> {
        let shape = self.inner.variables().get(i).map(|v| v.shape.clone());
        let data = self.inner.var(i).map_err(to_py)?;
        let arr = PyArray1::from_slice(py, data);
        Ok(arr.reshape(shape.unwrap_or_default())?.into_any())
    }

    /// Overwrites variable `i` from a float32 array of its size.
    fn set_var(&mut self, i: usize, values: PyReadonlyArrayDyn<'_, f32>) -> PyResult<()> {
        let v = values
            .as_slice()
            .map_err(|_| PyValueError::new_err("set_var needs a contiguous float32 array"))?;
        self.inner.set_var(i, v).map_err(to_py)
    }

    /// Optimizer slot buffers per trainable variable.
    #[getter]
    fn slot_count(&self) -> usize {
        self.inner.slot_count()
    }

    /// A copy of optimizer slot `k` of trainable variable `i`, shaped as the variable.
    fn get_slot<'py>(&self, py: Python<'py>, i: usize, k: usize) -> PyResult<Bound<'py, PyAny>> {
        let shape = self.inner.variables().get(i).map(|v| v.shape.clone());
        let s = self.inner.slot(i, k).map_err(to_py)?;
        Ok(PyArray1::from_slice(py, s)
            .reshape(shape.unwrap_or_default())?
            .into_any())
    }

    fn set_slot(
        &mut self,
        i: usize,
        k: usize,
        values: PyReadonlyArrayDyn<'_, f32>,
    ) -> PyResult<()> {
        let v = values
            .as_slice()
            .map_err(|_| PyValueError::new_err("set_slot needs a contiguous float32 array"))?;
        self.inner.set_slot(i, k, v).map_err(to_py)
    }

    /// The rule's optimizer-wide scalar (Nadam's `u_product`), or None.
    #[getter]
    fn rule_state(&self) -> Option<f32> {
        self.inner.rule_state()
    }

    #[setter]
    fn set_rule_state(&mut self, value: f32) -> PyResult<()> {
        self.inner.set_rule_state(value).map_err(to_py)
    }

    /// The weights become their moving averages (`use_ema`, end of `fit`).
    fn finalize_ema(&mut self) {
        self.inner.finalize_ema()
    }

    /// Sets loss, metrics and optimizer (dicts built by the Python front).
    fn compile(
        &mut self,
        loss: &Bound<'_, PyDict>,
        metrics: &Bound<'_, PyList>,
        optimizer: &Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let loss = loss_spec(loss)?;
        let metrics = metrics
            .iter()
            .map(|m| metric_spec(m.cast::<PyDict>()?))
            .collect::<PyResult<Vec<_>>>()?;
        let opt = optimizer_spec(optimizer)?;
        self.inner.compile(loss, metrics, opt).map_err(to_py)
    }

    /// Sets the weight regularizers: `(variable index, l1, l2)` triples, replacing any set
    /// before (ValueError for an unknown variable or a factor that is negative or not finite).
    fn set_regularizers(&mut self, regularizers: Vec<(usize, f32, f32)>) -> PyResult<()> {
        let regs = regularizers
            .into_iter()
            .map(|(i, l1, l2)| (i, L1L2 { l1, l2 }))
            .collect();
        self.inner.set_regularizers(regs).map_err(to_py)
    }

    fn set_learning_rate(&mut self, lr: f32) -> PyResult<()> {
        self.inner.set_learning_rate(lr).map_err(to_py)
    }

    #[getter]
    fn iterations(&self) -> u64 {
        self.inner.iterations()
    }

    #[setter]
    fn set_iterations(&mut self, it: u64) {
        self.inner.set_iterations(it)
    }

    fn reset_stats(&mut self) {
        self.inner.reset_stats()
    }

    /// `(loss_sum, count, [metric values])` since the last `reset_stats`: the loss is
    /// `loss_sum / count`; each metric's value comes from its own accumulators.
    fn stats(&self) -> (f64, u64, Vec<f64>) {
        let s = self.inner.stats();
        (s.loss_sum, s.count, self.inner.metric_results())
    }

    /// `(steps on one thread, steps on all threads)` chosen by the adaptive thread width.
    fn thread_widths(&self) -> (u64, u64) {
        let [one, all] = self.inner.thread_width_counts();
        (one, all)
    }

    /// Gradient-health counters: `{"steps", "clip_fired", "last_grad_norms"}`.
    fn clip_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.clip_stats();
        let d = PyDict::new(py);
        d.set_item("steps", s.steps)?;
        d.set_item("clip_fired", s.fired.clone())?;
        d.set_item("last_grad_norms", s.last_norms.clone())?;
        Ok(d)
    }

    /// Runs up to `n_batches` training steps; returns how many ran (fewer when the loss
    /// turned non-finite or the epoch ended). `sample_weight`: one float32 weight per row
    /// of `x`, or None.
    #[pyo3(signature = (x, y, order, batch_size, first_batch, n_batches, lrs=None, sample_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn train_steps<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyUntypedArray>,
        y: &Bound<'py, PyUntypedArray>,
        order: Option<PyReadonlyArray1<'py, usize>>,
        batch_size: usize,
        first_batch: usize,
        n_batches: usize,
        lrs: Option<PyReadonlyArray1<'py, f32>>,
        sample_weight: Option<&Bound<'py, PyUntypedArray>>,
    ) -> PyResult<usize> {
        let xv = view2(x, "x")?;
        let yv = view2(y, "y")?;
        let sw = sample_weight_arg(sample_weight)?;
        let sw = sample_weights(&sw)?;
        let lrs = match &lrs {
            Some(l) => Some(
                l.as_slice()
                    .map_err(|_| PyValueError::new_err("lrs must be contiguous"))?,
            ),
            None => None,
        };
        let order = match &order {
            Some(o) => Some(
                o.as_slice()
                    .map_err(|_| PyValueError::new_err("order must be contiguous"))?,
            ),
            None => None,
        };
        let pool = pool::pool().map_err(to_py)?;
        let engine = &mut self.inner;
        let panic_now = std::mem::take(&mut self.panic_next_step);
        run(py, move || {
            if panic_now {
                // Unwinds out of a pool worker, as a kernel bug would.
                pool.join(|| (), || panic!("debug hook: panic inside train_steps"));
            }
            engine.train_steps(
                &pool,
                &xv,
                &yv,
                order,
                batch_size,
                first_batch,
                n_batches,
                lrs,
                sw,
            )
        })
    }

    /// Test hook, refused unless `KEROX_DEBUG_HOOKS=1`: the next `train_steps` call panics
    /// in a pool worker before touching any variable.
    fn _debug_panic_next_step(&mut self) -> PyResult<()> {
        debug_hooks_enabled()?;
        self.panic_next_step = true;
        Ok(())
    }

    /// Evaluation batches in inference mode, accumulated into the running sums, weighted by
    /// `sample_weight` (one float32 weight per row of `x`) when given.
    #[pyo3(signature = (x, y, batch_size, first_batch, n_batches, sample_weight=None))]
    #[allow(clippy::too_many_arguments)]
    fn test_steps<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyUntypedArray>,
        y: &Bound<'py, PyUntypedArray>,
        batch_size: usize,
        first_batch: usize,
        n_batches: usize,
        sample_weight: Option<&Bound<'py, PyUntypedArray>>,
    ) -> PyResult<usize> {
        let xv = view2(x, "x")?;
        let yv = view2(y, "y")?;
        let sw = sample_weight_arg(sample_weight)?;
        let sw = sample_weights(&sw)?;
        let pool = pool::pool().map_err(to_py)?;
        let engine = &mut self.inner;
        run(py, move || {
            engine.test_steps(&pool, &xv, &yv, batch_size, first_batch, n_batches, sw)
        })
    }

    /// Inference outputs for rows `start ..` of `x` into `out` (float32, C-contiguous).
    fn predict(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyUntypedArray>,
        start: usize,
        chunk: usize,
        mut out: PyReadwriteArray2<'_, f32>,
    ) -> PyResult<()> {
        let xv = view2(x, "x")?;
        let out = out
            .as_slice_mut()
            .map_err(|_| PyValueError::new_err("out must be C-contiguous float32"))?;
        check_disjoint(&xv, out)?;
        let pool = pool::pool().map_err(to_py)?;
        let engine = &mut self.inner;
        run(py, move || engine.predict(&pool, &xv, start, chunk, out))
    }

    /// Training-mode forward of all rows of `x` as one batch into `out`.
    fn forward_training(
        &mut self,
        py: Python<'_>,
        x: &Bound<'_, PyUntypedArray>,
        mut out: PyReadwriteArray2<'_, f32>,
    ) -> PyResult<()> {
        let xv = view2(x, "x")?;
        let out = out
            .as_slice_mut()
            .map_err(|_| PyValueError::new_err("out must be C-contiguous float32"))?;
        check_disjoint(&xv, out)?;
        let pool = pool::pool().map_err(to_py)?;
        let engine = &mut self.inner;
        run(py, move || engine.forward_training(&pool, &xv, out))
    }

    /// The dispatch level this engine's kernels run at.
    #[getter]
    fn dispatch_level(&self) -> &'static str {
        self.inner.level().name()
    }

    /// Lowers (or restores) the dispatch level of this engine.
    #[setter]
    fn set_dispatch_level(&mut self, name: &str) -> PyResult<()> {
        let level = Level::parse(name).ok_or_else(|| {
            PyValueError::new_err(format!(
                "dispatch level must be one of 'scalar', 'avx2', 'avx512'. Received: {name:?}"
            ))
        })?;
        self.inner.set_level(level);
        Ok(())
    }
}

/// Sets the size of kerox's thread pool.
#[pyfunction]
fn set_num_threads(n: usize) -> PyResult<()> {
    pool::set_num_threads(n).map_err(to_py)
}

/// Threads in kerox's thread pool.
#[pyfunction]
fn get_num_threads() -> usize {
    pool::num_threads()
}

/// The best instruction-set level this CPU supports.
#[pyfunction]
fn cpu_level() -> &'static str {
    Level::detected().name()
}

/// The level new engines use (`KEROX_DISPATCH` may lower it).
#[pyfunction]
fn default_level() -> &'static str {
    Level::current().name()
}

/// Caps the level new engines use (None restores the default).
#[pyfunction]
#[pyo3(signature = (name=None))]
fn set_default_level(name: Option<&str>) -> PyResult<()> {
    let cap = match name {
        None => None,
        Some(n) => Some(Level::parse(n).ok_or_else(|| {
            PyValueError::new_err(format!(
                "dispatch level must be one of 'scalar', 'avx2', 'avx512'. Received: {n:?}"
            ))
        })?),
    };
    dispatch::set_max_level(cap);
    Ok(())
}

/// Drops the thread pool in a forked child (its worker threads were not copied).
#[pyfunction]
fn _after_fork_in_child() {
    pool::forget_after_fork()
}

/// Version of the compiled engine.
fn debug_hooks_enabled() -> PyResult<()> {
    if std::env::var("KEROX_DEBUG_HOOKS").as_deref() == Ok("1") {
        Ok(())
    } else {
        Err(PyRuntimeError::new_err(
            "kerox debug hooks are disabled; set KEROX_DEBUG_HOOKS=1 to enable them",
        ))
    }
}

/// Test hook, refused unless `KEROX_DEBUG_HOOKS=1`: panics inside the GIL-released entry
/// point, on the calling thread (`"caller"`) or in a worker of the engine's pool (`"pool"`),
/// to show that a Rust panic becomes a Python RuntimeError instead of an abort.
#[pyfunction]
fn _debug_panic(py: Python<'_>, place: &str) -> PyResult<()> {
    debug_hooks_enabled()?;
    match place {
        "caller" => run(py, || -> kerox_core::Result<()> {
            panic!("debug hook: panic on the calling thread")
        }),
        "pool" => {
            let pool = pool::pool().map_err(to_py)?;
            run(py, move || {
                pool.install(|| pool.join(|| (), || panic!("debug hook: panic in a pool worker")));
                Ok(())
            })
        }
        _ => Err(PyValueError::new_err(format!(
            "place must be 'caller' or 'pool'; received {place:?}"
        ))),
    }
}

#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[pymodule(name = "_core")]
mod core_module {
    #[pymodule_export]
    use super::{
        _after_fork_in_child, _debug_panic, cpu_level, default_level, get_num_threads,
        set_default_level, set_num_threads, version, Engine,
    };
}
