//! PyO3 bindings: the `kerox._core` extension module. No maths here.

use pyo3::prelude::*;

#[pymodule(name = "_core")]
mod core_module {
    use super::*;

    /// Version of the compiled engine.
    #[pyfunction]
    fn version() -> &'static str {
        env!("CARGO_PKG_VERSION")
    }
}
