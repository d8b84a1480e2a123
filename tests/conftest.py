"""Shared fixtures and helpers for the kerox test-suite.

Real Keras 3 (JAX backend) is the oracle. Every expected value in these tests comes from real
Keras, from a hand computation stated in a comment, or from `/work/shared/keras-spec.md`;
never from kerox's own output.

* `keras_or_skip()` / the `keras_ref` fixture return the real `keras` module. A missing Keras
  skips the test, unless `KEROX_REQUIRE_ORACLE=1`, in which case it is a failure.
* `kx` is `kerox.keras` (the library under test; importing it must never be skipped).
* `build_model(lib, spec, input_shape)` builds the same Sequential from one spec in either
  library; `twin_models(...)` builds both and copies kerox's initial weights into Keras.
"""

from __future__ import annotations

import os

# Must happen before anything imports keras (keras reads it once, at import time).
os.environ["KERAS_BACKEND"] = "jax"
# Keep JAX quiet and on the CPU.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import importlib  # noqa: E402
import re  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REQUIRE_ORACLE = os.environ.get("KEROX_REQUIRE_ORACLE", "") not in ("", "0")

# Tolerances for kerox-vs-Keras comparisons after training (float32 everywhere).
RTOL = 1e-4
ATOL = 1e-6

# --------------------------------------------------------------------------------------------
# The two libraries
# --------------------------------------------------------------------------------------------


def keras_or_skip():
    """Return the real Keras 3 module (JAX backend); skip if it is not installed.

    With KEROX_REQUIRE_ORACLE=1 a missing oracle is a failure instead of a skip.
    """
    try:
        keras = importlib.import_module("keras")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if REQUIRE_ORACLE:
            pytest.fail(f"KEROX_REQUIRE_ORACLE=1 but real keras cannot be imported: {exc}")
        pytest.skip(f"real keras (the oracle) is not installed: {exc}")
    version = getattr(keras, "__version__", "0")
    if not version.startswith("3."):
        msg = f"the oracle must be Keras 3, found keras {version}"
        if REQUIRE_ORACLE:
            pytest.fail(msg)
        pytest.skip(msg)
    if keras.backend.backend() != "jax":
        msg = f"the oracle must run on the JAX backend, found {keras.backend.backend()}"
        if REQUIRE_ORACLE:
            pytest.fail(msg)
        pytest.skip(msg)
    return keras


def kerox_keras():
    """The library under test: `kerox.keras` (an import failure is a test failure)."""
    from kerox import keras as kx

    return kx


@pytest.fixture(scope="session")
def keras_ref():
    return keras_or_skip()


@pytest.fixture(scope="session")
def kx():
    return kerox_keras()


@pytest.fixture(autouse=True)
def _quiet_warnings():
    # Keras warns about `input_dim`, saturated losses etc.; tests that care use pytest.warns.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------------------------
# Model specs: one description, built identically in both libraries
# --------------------------------------------------------------------------------------------
# A spec is a list of (layer class name, kwargs). Only strings/numbers in kwargs so that the
# same spec can be instantiated in either library.


def make_layer(lib, kind: str, kwargs: dict):
    return getattr(lib.layers, kind)(**kwargs)


def build_model(lib, spec, input_shape, name=None):
    """`Sequential([Input(input_shape), *layers])` in `lib` (kerox.keras or keras)."""
    layers = [lib.Input(shape=tuple(input_shape))]
    layers += [make_layer(lib, kind, dict(kw)) for kind, kw in spec]
    if name is None:
        return lib.Sequential(layers)
    return lib.Sequential(layers, name=name)


def weight_layout(spec, input_shape):
    """Expected (layer_index, variable name, shape) of `get_weights()` in Keras order.

    Derived from the spec (keras-spec §1.5 / §3.2): Dense -> kernel, bias; BatchNormalization ->
    gamma (if scale), beta (if center), moving_mean, moving_variance.
    """
    out = []
    width = int(np.prod(input_shape))
    if len(input_shape) == 1:
        width = input_shape[0]
    flat_done = len(input_shape) == 1
    for i, (kind, kw) in enumerate(spec):
        if kind == "Dense":
            units = kw["units"]
            if not flat_done:
                # Dense on rank>2 input contracts the last axis only; not used in our specs.
                raise AssertionError("use Flatten before Dense in specs")
            out.append((i, "kernel", (width, units)))
            if kw.get("use_bias", True):
                out.append((i, "bias", (units,)))
            width = units
        elif kind == "BatchNormalization":
            if kw.get("scale", True):
                out.append((i, "gamma", (width,)))
            if kw.get("center", True):
                out.append((i, "beta", (width,)))
            out.append((i, "moving_mean", (width,)))
            out.append((i, "moving_variance", (width,)))
        elif kind == "Flatten":
            flat_done = True
    return out


def randomize_bn(lib_model, spec, input_shape, seed=0):
    """Give every BatchNormalization non-default gamma/beta/moving statistics (via set_weights)."""
    rng = np.random.default_rng(seed)
    weights = lib_model.get_weights()
    for j, (_, name, shape) in enumerate(weight_layout(spec, input_shape)):
        if name == "gamma":
            weights[j] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif name == "beta":
            weights[j] = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
        elif name == "moving_mean":
            weights[j] = rng.uniform(-0.5, 0.5, shape).astype(np.float32)
        elif name == "moving_variance":
            weights[j] = rng.uniform(0.5, 2.0, shape).astype(np.float32)
    lib_model.set_weights(weights)


def initial_weights(spec, input_shape, seed=0, randomize_bn_stats=False):
    """Deterministic start weights in Keras order, from seeded NumPy only.

    Kernels are glorot-uniform-like draws, biases small, BatchNormalization at its defaults (or
    random gamma/beta/moving statistics with `randomize_bn_stats`). Using our own draws keeps
    every parity case reproducible and independent of kerox's random generator.
    """
    rng = np.random.default_rng(1000 + seed)
    out = []
    layout = weight_layout(spec, input_shape)
    for _, name, shape in layout:
        if name == "kernel":
            limit = np.sqrt(6.0 / (shape[0] + shape[1]))
            w = rng.uniform(-limit, limit, shape)
        elif name == "bias":
            w = rng.uniform(-0.05, 0.05, shape)
        elif name == "gamma":
            w = rng.uniform(0.5, 1.5, shape) if randomize_bn_stats else np.ones(shape)
        elif name == "beta":
            w = rng.uniform(-0.5, 0.5, shape) if randomize_bn_stats else np.zeros(shape)
        elif name == "moving_mean":
            w = rng.uniform(-0.5, 0.5, shape) if randomize_bn_stats else np.zeros(shape)
        else:  # moving_variance
            w = rng.uniform(0.5, 2.0, shape) if randomize_bn_stats else np.ones(shape)
        out.append(np.asarray(w, dtype=np.float32))
    return out


def twin_models(kx, keras, spec, input_shape, randomize_bn_stats=False, seed=None):
    """Build `spec` in kerox and in Keras; Keras gets kerox's initial weights.

    With `seed` the kerox model first gets deterministic weights from `initial_weights`
    (through kerox's `set_weights`); otherwise kerox's own initialization is used (with BN
    statistics randomized if asked).
    """
    km = build_model(kx, spec, input_shape)
    if seed is not None:
        km.set_weights(initial_weights(spec, input_shape, seed, randomize_bn_stats))
    elif randomize_bn_stats:
        randomize_bn(km, spec, input_shape)
    rm = build_model(keras, spec, input_shape)
    rm.set_weights([np.asarray(w) for w in km.get_weights()])
    return km, rm


def make_loss(lib, loss):
    """A loss spec is a string, or (class name, kwargs) for `lib.losses.<Class>(**kwargs)`."""
    if isinstance(loss, str):
        return loss
    cls, kw = loss
    return getattr(lib.losses, cls)(**kw)


def make_optimizer(lib, opt):
    """An optimizer spec is a string ("sgd") or the kwargs of `lib.optimizers.SGD`."""
    if isinstance(opt, str):
        return opt
    return lib.optimizers.SGD(**opt)


# --------------------------------------------------------------------------------------------
# Synthetic data (seeded NumPy only)
# --------------------------------------------------------------------------------------------


def make_data(n, d, target, seed=0, classes=10, input_shape=None):
    """Learnable synthetic data.

    target: "onehot" (n, classes) float32, "sparse" (n,) int, "sparse_col" (n, 1) int,
    "binary" (n, 1) float32 in {0,1}, "binary_flat" (n,) float32, "multilabel" (n, 3) float32,
    "regression" (n, 3) float32.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if target in ("onehot", "sparse", "sparse_col"):
        w = rng.standard_normal((d, classes)) / np.sqrt(d)
        logits = 3.0 * (x @ w) + 0.7 * rng.standard_normal((n, classes))
        labels = logits.argmax(axis=1)
        if target == "onehot":
            y = np.eye(classes, dtype=np.float32)[labels]
        elif target == "sparse":
            y = labels.astype(np.int64)
        else:
            y = labels.astype(np.int64).reshape(-1, 1)
    elif target in ("binary", "binary_flat", "multilabel"):
        k = 3 if target == "multilabel" else 1
        w = rng.standard_normal((d, k)) / np.sqrt(d)
        y = ((x @ w + 0.3 * rng.standard_normal((n, k))) > 0).astype(np.float32)
        if target == "binary_flat":
            y = y.reshape(-1)
    elif target == "regression":
        w = rng.standard_normal((d, 3)) / np.sqrt(d)
        y = (np.tanh(x @ w) + 0.1 * rng.standard_normal((n, 3))).astype(np.float32)
    else:
        raise ValueError(target)
    if input_shape is not None:
        x = x.reshape((n, *input_shape))
    return x, y


# --------------------------------------------------------------------------------------------
# Comparison helpers
# --------------------------------------------------------------------------------------------


def assert_weights_close(actual, expected, rtol=RTOL, atol=ATOL, labels=None, what="weights"):
    actual = [np.asarray(a) for a in actual]
    expected = [np.asarray(e) for e in expected]
    assert len(actual) == len(expected), f"{what}: {len(actual)} arrays vs {len(expected)}"
    problems = []
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        label = labels[i] if labels else f"#{i}"
        if a.shape != e.shape:
            problems.append(f"{label}: shape {a.shape} != expected {e.shape}")
            continue
        a64 = a.astype(np.float64)
        e64 = e.astype(np.float64)
        bad = ~np.isclose(a64, e64, rtol=rtol, atol=atol)
        if bad.any():
            err = np.abs(a64 - e64)
            k = int(np.argmax(np.where(bad, err / (atol + rtol * np.abs(e64)), 0)))
            problems.append(
                f"{label}: {int(bad.sum())}/{a.size} elements differ, worst at flat index {k}: "
                f"kerox={a64.flat[k]!r} keras={e64.flat[k]!r} (max abs err {err.max():.3g})"
            )
    assert not problems, f"{what} differ from Keras:\n  " + "\n  ".join(problems)


def assert_history_close(actual: dict, expected: dict, rtol=RTOL, atol=ATOL, counts=None):
    """Same keys in the same order, values close.

    `counts` maps a history key to the number of samples its value averages over; accuracy
    keys then tolerate one sample flipping (an argmax tie broken differently by float rounding
    is within "the same numbers"), i.e. atol = 1 / count.
    """
    assert list(actual.keys()) == list(expected.keys()), (
        f"History keys {list(actual.keys())} != Keras {list(expected.keys())}"
    )
    for key in expected:
        a = np.asarray(actual[key], dtype=np.float64)
        e = np.asarray(expected[key], dtype=np.float64)
        assert a.shape == e.shape, f"history[{key!r}] has {a.shape} entries, Keras {e.shape}"
        key_atol = atol
        if counts and "acc" in key and key in counts:
            key_atol = max(atol, 1.0001 / counts[key])
        np.testing.assert_allclose(a, e, rtol=rtol, atol=key_atol, err_msg=f"history[{key!r}]")


def max_abs_diff(ws1, ws2):
    return max(
        float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) for a, b in zip(ws1, ws2, strict=True)
    )


# --------------------------------------------------------------------------------------------
# Console output helpers (progress bars)
# --------------------------------------------------------------------------------------------

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def final_lines(text: str):
    """What a terminal would finally show: ANSI stripped, `\\b` removed, last `\\r` segment."""
    out = []
    for raw in text.split("\n"):
        seg = raw.split("\r")[-1]
        seg = _ANSI.sub("", seg).replace("\b", "")
        out.append(seg.rstrip())
    while out and out[-1] == "":
        out.pop()
    return out


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)
