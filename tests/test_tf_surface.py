"""The TensorFlow-shaped top level (`import kerox as tf`), `keras.backend` and `keras.config`.

Oracles: real Keras 3 (JAX backend) for `keras.ops`-equivalent helpers, the backend/config
defaults and clear_session naming; NumPy or a hand computation stated in a comment for
TensorFlow-only semantics (dtype inference, integer `reduce_mean`, `argmax`'s default axis).
"""

from __future__ import annotations

import importlib
import random

import kerox
import kerox as tf
import numpy as np
import pytest
from kerox import keras as kx

# --------------------------------------------------------------------------------------------
# Versions and wiring
# --------------------------------------------------------------------------------------------


def test_versions():
    assert tf.__version__ == tf.version.VERSION == kerox._core.version()
    # The Keras API version kerox follows: a constant, "3.x.y".
    major, minor, patch = kx.__version__.split(".")
    assert major == "3" and minor.isdigit() and patch.isdigit()


def test_submodules_are_wired():
    assert tf.keras is kx
    assert tf.keras.backend is importlib.import_module("kerox.keras.backend")
    assert tf.keras.config is importlib.import_module("kerox.keras.config")
    # tf.config stays kerox's own engine settings.
    assert tf.config is importlib.import_module("kerox.config")
    assert tf.config.get_num_threads() >= 1
    # tf.data is the kerox.data subpackage, imported on first access.
    assert tf.data is importlib.import_module("kerox.data")


def test_dir_is_sensible():
    names = dir(tf)
    for expected in ("keras", "data", "config", "random", "math", "constant", "reduce_mean"):
        assert expected in names
    assert not [n for n in names if n.startswith("_") and n != "__version__"]
    assert "set_seed" in dir(tf.random) and "reduce_sum" in dir(tf.math)
    assert "clear_session" in dir(kx.backend) and "set_random_seed" in dir(kx.config)


@pytest.mark.parametrize(
    "namespace, where, listed",
    [
        (tf, "kerox", "reduce_mean"),
        (tf.math, "kerox.math", "reduce_sum"),
        (tf.random, "kerox.random", "set_seed"),
        (kx.backend, "kerox.keras.backend", "clear_session"),
        (kx.config, "kerox.keras.config", "floatx"),
    ],
)
def test_unknown_names_raise_a_helpful_attribute_error(namespace, where, listed):
    with pytest.raises(AttributeError) as info:
        namespace.GradientTape  # noqa: B018
    msg = str(info.value)
    assert f"'{where}' has no attribute 'GradientTape'" in msg
    assert "dense networks" in msg and listed in msg
    assert not hasattr(namespace, "no_such_thing")


# --------------------------------------------------------------------------------------------
# Conversion and dtype defaults (TensorFlow's inference, stated per case)
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, dtype",
    [
        (1.0, np.float32),  # Python float -> float32
        (1, np.int32),  # Python int -> int32
        (2**40, np.int64),  # too big for int32 -> int64
        ([1, 2.5], np.float32),
        ([[1, 2], [3, 4]], np.int32),
        (True, np.bool_),
        (np.arange(3, dtype=np.float64), np.float64),  # arrays keep their dtype
        (np.arange(3, dtype=np.int64), np.int64),
        (np.float64(2.0), np.float64),
    ],
)
def test_constant_and_convert_to_tensor_dtypes(value, dtype):
    for fn in (tf.constant, tf.convert_to_tensor):
        out = fn(value)
        assert isinstance(out, np.ndarray)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, np.asarray(value))


def test_constant_dtype_and_shape():
    assert tf.constant(1, dtype=tf.float32).dtype == np.float32
    np.testing.assert_array_equal(tf.constant(0.5, shape=(2, 3)), np.full((2, 3), 0.5))
    np.testing.assert_array_equal(tf.constant([1, 2, 3, 4], shape=[2, 2]), [[1, 2], [3, 4]])
    with pytest.raises(ValueError, match="`shape`"):
        tf.constant([1, 2, 3], shape=(2, 2))


def test_convert_to_tensor_reads_variables():
    layer = kx.layers.Dense(2)
    layer.build((None, 3))
    np.testing.assert_array_equal(tf.convert_to_tensor(layer.kernel), layer.kernel.numpy())


def test_dtypes_are_numpy_types():
    assert tf.float32 is np.float32 and tf.float64 is np.float64
    assert tf.int32 is np.int32 and tf.int64 is np.int64 and tf.uint8 is np.uint8
    assert tf.bool is np.bool_
    assert tf.newaxis is None
    assert np.zeros((2, 3))[:, tf.newaxis].shape == (2, 1, 3)


# --------------------------------------------------------------------------------------------
# Helpers against keras.ops (JAX backend)
# --------------------------------------------------------------------------------------------

X = np.array([[1.5, -2.0, 3.25], [0.5, 4.0, -1.0]], dtype=np.float32)


def _same(ours, theirs):
    theirs = np.asarray(theirs)
    assert ours.dtype == theirs.dtype, (ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("axis", [None, 0, 1, -1, [0, 1]])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions_match_keras_ops(keras_ref, axis, keepdims):
    ops = keras_ref.ops
    kaxis = tuple(axis) if isinstance(axis, list) else axis
    _same(tf.reduce_mean(X, axis=axis, keepdims=keepdims), ops.mean(X, kaxis, keepdims))
    _same(tf.reduce_sum(X, axis, keepdims), ops.sum(X, kaxis, keepdims))
    _same(tf.reduce_max(X, axis, keepdims), ops.max(X, kaxis, keepdims))
    _same(tf.reduce_min(X, axis, keepdims), ops.min(X, kaxis, keepdims))
    assert tf.math.reduce_mean is tf.reduce_mean


def test_integer_reductions_keep_their_dtype():
    # TensorFlow's documented example: reduce_mean([1, 0, 1, 0]) == 0 (integer mean).
    out = tf.reduce_mean([1, 0, 1, 0])
    assert out.dtype == np.int32 and out == 0
    # Truncation toward zero: mean of [-3, 0] is -1.5 -> -1.
    assert tf.reduce_mean(np.array([-3, 0], dtype=np.int64)) == -1
    s = tf.reduce_sum([[1, 2], [3, 4]], axis=0)
    assert s.dtype == np.int32
    np.testing.assert_array_equal(s, [4, 6])


def test_argmax_argmin_default_axis_is_zero(keras_ref):
    ops = keras_ref.ops
    # TensorFlow's argmax/argmin reduce axis 0 when no axis is given (not the flattened array).
    for fn, kfn in ((tf.argmax, ops.argmax), (tf.argmin, ops.argmin)):
        out = fn(X)
        assert out.dtype == np.int64
        np.testing.assert_array_equal(out, np.asarray(kfn(X, axis=0)))
        np.testing.assert_array_equal(fn(X, axis=1), np.asarray(kfn(X, axis=1)))
    assert tf.argmax(X, output_type=tf.int32).dtype == np.int32


@pytest.mark.parametrize("name", ["square", "sqrt", "exp", "log", "abs"])
def test_elementwise_match_keras_ops(keras_ref, name):
    x = np.abs(X) + 0.25 if name in ("sqrt", "log") else X
    kname = {"abs": "absolute"}.get(name, name)
    _same(getattr(tf, name)(x), getattr(keras_ref.ops, kname)(x))
    assert getattr(tf.math, name) is getattr(tf, name)


def test_elementwise_on_python_values_default_to_float32():
    assert tf.square(3.0).dtype == np.float32
    assert tf.sqrt(4).dtype == np.float32 and tf.sqrt(4) == 2.0
    assert tf.abs(-3).dtype == np.int32


def test_binary_and_matmul_match_keras_ops(keras_ref):
    ops = keras_ref.ops
    y = np.array([[1.0, 1.0, 1.0]], dtype=np.float32)
    _same(tf.maximum(X, y), ops.maximum(X, y))
    _same(tf.minimum(X, 0.0), ops.minimum(X, 0.0))
    w = np.arange(6, dtype=np.float32).reshape(3, 2)
    _same(tf.matmul(X, w), ops.matmul(X, w))
    _same(tf.matmul(X, w.T, transpose_b=True), ops.matmul(X, w))
    _same(tf.matmul(X.T, w, transpose_a=True), ops.matmul(X, w))


def test_shape_helpers_match_keras_ops(keras_ref):
    ops = keras_ref.ops
    _same(tf.reshape(X, [3, -1]), ops.reshape(X, (3, -1)))
    _same(tf.expand_dims(X, 1), ops.expand_dims(X, 1))
    _same(tf.squeeze(X[None, :, None, :]), ops.squeeze(X[None, :, None, :]))
    _same(tf.squeeze(X[None, :, None, :], axis=[0]), ops.squeeze(X[None, :, None, :], axis=0))
    _same(tf.concat([X, X], axis=0), ops.concatenate([X, X], axis=0))
    _same(tf.concat([X, X], 1), ops.concatenate([X, X], axis=1))
    _same(tf.stack([X, X]), ops.stack([X, X]))
    _same(tf.stack([X, X], axis=-1), ops.stack([X, X], axis=-1))
    shape = tf.shape(X)
    assert shape.dtype == np.int32
    np.testing.assert_array_equal(shape, [2, 3])


def test_creation_helpers_match_keras_ops(keras_ref):
    ops = keras_ref.ops
    _same(tf.ones((2, 3)), ops.ones((2, 3)))
    _same(tf.zeros([4]), ops.zeros((4,)))
    assert tf.zeros(3, dtype=tf.int32).dtype == np.int32
    ints = np.arange(4, dtype=np.int32)  # JAX (no x64) would turn int64 into int32
    _same(tf.ones_like(ints), ops.ones_like(ints))
    _same(tf.zeros_like(X), ops.zeros_like(X))
    assert tf.ones_like(X, dtype="int32").dtype == np.int32
    _same(tf.linspace(0.0, 1.0, 5), ops.linspace(0.0, 1.0, 5))
    _same(tf.range(5), ops.arange(5))
    _same(tf.range(1, 10, 3), ops.arange(1, 10, 3))
    _same(tf.range(0.0, 1.0, 0.25), ops.arange(0.0, 1.0, 0.25))
    assert tf.range(3, dtype=tf.float32).dtype == np.float32


def test_cast_matches_keras_ops(keras_ref):
    x = np.array([-1.7, -0.5, 0.5, 1.7], dtype=np.float32)
    _same(tf.cast(x, tf.int32), keras_ref.ops.cast(x, "int32"))
    _same(tf.cast([1, 2], "float32"), keras_ref.ops.cast(np.array([1, 2]), "float32"))
    assert tf.cast([0, 2], tf.bool).tolist() == [False, True]


def test_one_hot_matches_keras_ops(keras_ref):
    # -1 and 4 are out of range for depth 4: all-off rows, in TensorFlow and JAX alike.
    idx = np.array([0, 3, 1, -1, 4])
    _same(tf.one_hot(idx, 4), keras_ref.ops.one_hot(idx, 4))
    _same(tf.one_hot(idx, 4, axis=0), keras_ref.ops.one_hot(idx, 4, axis=0))
    out = tf.one_hot([1, 0], 3, on_value=5, off_value=-1)
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[-1, 5, -1], [5, -1, -1]])
    with pytest.raises(TypeError, match="`indices`"):
        tf.one_hot([0.5], 3)


# --------------------------------------------------------------------------------------------
# tf.random
# --------------------------------------------------------------------------------------------


def test_random_uniform_and_normal():
    u = tf.random.uniform((1000,), minval=2.0, maxval=3.0, seed=1)
    assert u.dtype == np.float32 and u.shape == (1000,)
    assert u.min() >= 2.0 and u.max() < 3.0
    np.testing.assert_array_equal(u, tf.random.uniform((1000,), 2.0, 3.0, seed=1))
    i = tf.random.uniform([50], 0, 5, dtype=tf.int32, seed=3)
    assert i.dtype == np.int32 and set(i.tolist()) <= set(range(5))
    with pytest.raises(ValueError, match="`maxval`"):
        tf.random.uniform([2], dtype=tf.int32)
    n = tf.random.normal([4000], mean=1.0, stddev=2.0, seed=2)
    assert n.dtype == np.float32
    # 4000 draws: the sample mean is within 4 standard errors (2 / sqrt(4000) ~ 0.032).
    assert abs(n.mean() - 1.0) < 0.13 and abs(n.std() - 2.0) < 0.1
    with pytest.raises(ValueError, match="`seed`"):
        tf.random.normal([2], seed=1.5)


@pytest.fixture
def forget_seed():
    """Put kerox's seed source back to OS entropy after a test that seeds it."""
    yield
    kerox._random._reset()


def test_set_seed_seeds_numpy_python_and_kerox_draws(forget_seed):
    tf.random.set_seed(42)
    a = (np.random.rand(), random.random(), tf.random.uniform([3]), tf.random.normal([3]))
    tf.random.set_seed(np.int64(42))  # NumPy integers are accepted, as in TensorFlow
    b = (np.random.rand(), random.random(), tf.random.uniform([3]), tf.random.normal([3]))
    assert a[:2] == b[:2]
    np.testing.assert_array_equal(a[2], b[2])
    np.testing.assert_array_equal(a[3], b[3])
    np.random.seed(42)
    assert np.random.rand() == a[0]  # the same as seeding NumPy's global RNG directly
    with pytest.raises(ValueError, match="`seed`"):
        tf.random.set_seed("42")


def _seeded_run(seed):
    tf.random.set_seed(seed)
    model = kx.Sequential(
        [kx.Input((4,)), kx.layers.Dense(8, activation="relu"), kx.layers.Dropout(0.3)]
        + [kx.layers.Dense(1)]
    )
    initial = model.get_weights()
    model.compile(optimizer="adam", loss="mse")
    x = np.linspace(-1, 1, 64 * 4, dtype=np.float32).reshape(64, 4)
    y = x.sum(axis=1, keepdims=True)
    history = model.fit(x, y, epochs=2, batch_size=16, shuffle=True, verbose=0)
    return initial, model.get_weights(), history.history["loss"]


def test_set_seed_makes_models_and_training_reproducible(forget_seed):
    init_a, final_a, loss_a = _seeded_run(42)
    init_b, final_b, loss_b = _seeded_run(42)
    init_c, _, _ = _seeded_run(43)
    for a, b in zip(init_a + final_a, init_b + final_b):
        np.testing.assert_array_equal(a, b)
    assert loss_a == loss_b
    assert not np.array_equal(init_a[0], init_c[0])


# --------------------------------------------------------------------------------------------
# keras.config and keras.backend settings
# --------------------------------------------------------------------------------------------


def test_settings_match_keras_defaults(keras_ref):
    for name in ("floatx", "epsilon", "image_data_format"):
        assert getattr(kx.config, name)() == getattr(keras_ref.config, name)()
        assert getattr(kx.backend, name)() == getattr(keras_ref.backend, name)()
        assert getattr(kx.backend, name) is getattr(kx.config, name)
    assert kx.backend.backend() == kx.config.backend() == "kerox"


def test_setters_accept_the_supported_value():
    kx.config.set_floatx("float32")
    kx.backend.set_floatx("float32")
    kx.config.set_epsilon(1e-7)
    kx.config.set_image_data_format("channels_last")
    kx.backend.set_image_data_format("Channels_Last")  # lower-cased, as Keras does
    assert kx.config.floatx() == "float32" and kx.config.epsilon() == 1e-7


@pytest.mark.parametrize(
    "setter, value, supported",
    [
        ("set_floatx", "float64", "'float32'"),
        ("set_floatx", "float16", "'float32'"),
        ("set_floatx", 32, "'float32'"),
        ("set_floatx", np.float32, "'float32'"),
        ("set_epsilon", 1e-8, "1e-07"),
        ("set_epsilon", "small", "1e-07"),
        ("set_image_data_format", "channels_first", "'channels_last'"),
        ("set_image_data_format", "nchw", "'channels_last'"),
    ],
)
def test_setters_reject_what_kerox_does_not_support(setter, value, supported):
    for module in (kx.config, kx.backend):
        with pytest.raises(ValueError) as info:
            getattr(module, setter)(value)
        assert supported in str(info.value) and "kerox" in str(info.value)
    assert kx.config.floatx() == "float32"


def test_config_misc():
    assert kx.config.set_random_seed is kx.utils.set_random_seed
    assert kx.config.enable_unsafe_deserialization() is None
    assert kx.config.is_interactive_logging_enabled() is True
    try:
        kx.config.disable_interactive_logging()
        assert kx.config.is_interactive_logging_enabled() is False
    finally:
        kx.config.enable_interactive_logging()
    assert kx.config.is_interactive_logging_enabled() is True


# --------------------------------------------------------------------------------------------
# clear_session, get_uid, count_params, is_keras_tensor
# --------------------------------------------------------------------------------------------


def _naming_sequence(lib):
    lib.backend.clear_session()
    names = [lib.layers.Dense(1).name, lib.layers.Dense(1).name, lib.layers.Dropout(0.1).name]
    lib.backend.clear_session()
    names += [lib.layers.Dense(1).name, lib.backend.get_uid("dense"), lib.backend.get_uid("x")]
    lib.backend.clear_session(free_memory=False)
    names.append(lib.layers.Dense(1).name)
    return names


def test_clear_session_resets_names_like_keras(keras_ref):
    ours = _naming_sequence(kx)
    assert ours == _naming_sequence(keras_ref)
    assert ours[:4] == ["dense", "dense_1", "dropout", "dense"]


def test_count_params_and_is_keras_tensor():
    model = kx.Sequential([kx.Input((3,)), kx.layers.Dense(4)])
    assert kx.backend.count_params(model) == model.count_params() == 16
    assert kx.backend.count_params(model.layers[0].kernel) == 12
    assert kx.backend.count_params(np.zeros((2, 5))) == 10
    assert kx.backend.is_keras_tensor(kx.Input((3,)))
    assert not kx.backend.is_keras_tensor(np.zeros(3))


# --------------------------------------------------------------------------------------------
# get_value / set_value
# --------------------------------------------------------------------------------------------


def test_get_value_and_set_value_on_weights_and_optimizer_variables():
    model = kx.Sequential([kx.Input((3,)), kx.layers.Dense(2)])
    model.compile(optimizer=kx.optimizers.SGD(learning_rate=0.1), loss="mse")
    kernel = model.layers[0].kernel
    new = np.arange(6, dtype=np.float64).reshape(3, 2)
    kx.backend.set_value(kernel, new)
    got = kx.backend.get_value(kernel)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, new)
    lr = model.optimizer.learning_rate
    assert kx.backend.get_value(lr) == np.float32(0.1)
    kx.backend.set_value(lr, 0.5)
    assert kx.backend.get_value(model.optimizer.learning_rate) == np.float32(0.5)
    kx.backend.set_value(model.optimizer.iterations, 3)
    assert kx.backend.get_value(model.optimizer.iterations) == 3
    assert kx.backend.get_value(2.5) == 2.5
    np.testing.assert_array_equal(kx.backend.get_value([1, 2]), [1, 2])


def test_set_value_errors_name_the_argument():
    model = kx.Sequential([kx.Input((3,)), kx.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    kernel = model.layers[0].kernel
    with pytest.raises(ValueError, match=r"`value` must have the shape of `x`.*\(3, 2\)"):
        kx.backend.set_value(kernel, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="`value` must have the shape"):
        kx.backend.set_value(model.optimizer.learning_rate, [0.1, 0.2])
    with pytest.raises(ValueError, match="`value` must be numeric"):
        kx.backend.set_value(model.optimizer.learning_rate, "fast")
    with pytest.raises(ValueError, match="`value` must hold integers"):
        kx.backend.set_value(model.optimizer.iterations, 1.5)
    with pytest.raises(TypeError, match="`x`"):
        kx.backend.set_value(np.zeros(3), np.ones(3))
    with pytest.raises(TypeError, match="symbolic"):
        kx.backend.get_value(kx.Input((3,)))


def test_set_value_changes_the_learning_rate_mid_training():
    x = np.linspace(-1, 1, 32 * 3, dtype=np.float32).reshape(32, 3)
    y = np.stack([x.sum(1), x[:, 0] - x[:, 2]], axis=1)
    start = [np.full((3, 2), 0.1, np.float32), np.zeros(2, np.float32)]
    seen = []

    class DropLR(kx.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(float(kx.backend.get_value(self.model.optimizer.learning_rate)))
            if epoch == 0:
                kx.backend.set_value(self.model.optimizer.learning_rate, 0.01)

    def model_at(lr, weights):
        m = kx.Sequential([kx.Input((3,)), kx.layers.Dense(2)])
        m.set_weights(weights)
        m.compile(optimizer=kx.optimizers.SGD(learning_rate=lr), loss="mse")
        return m

    changed = model_at(0.1, start)
    changed.fit(x, y, epochs=2, batch_size=8, shuffle=False, verbose=0, callbacks=[DropLR()])
    assert seen == pytest.approx([0.1, 0.01])

    # Reference: one epoch at 0.1, then one epoch in a model compiled at 0.01 (plain SGD has no
    # optimizer state to carry over).
    first = model_at(0.1, start)
    first.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    second = model_at(0.01, first.get_weights())
    second.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    for a, b in zip(changed.get_weights(), second.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # ... and it differs from staying at 0.1.
    stay = model_at(0.1, first.get_weights())
    stay.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    assert not np.allclose(stay.get_weights()[0], changed.get_weights()[0])
