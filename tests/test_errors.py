"""Bad arguments raise the same exception type as real Keras 3, with a message naming the
argument (or the offending value).

Every case runs against real Keras too, so the expected type is the oracle's, not a guess.
Keras's message texts are quoted in /work/shared/keras-spec.md; only key words are asserted.
"""

from __future__ import annotations

import numpy as np
import pytest

X = np.zeros((10, 4), np.float32)
Y = np.eye(3, dtype=np.float32)[np.arange(10) % 3]


def _model(lib):
    return lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])


def _compiled(lib):
    m = _model(lib)
    m.compile(optimizer=lib.optimizers.SGD(0.01), loss="categorical_crossentropy")
    return m


def _unknown_loss(lib):
    # Keras resolves loss strings lazily (at the first fit step); either point is fine.
    m = _model(lib)
    m.compile(optimizer="sgd", loss="foo_loss")
    m.fit(X, Y, verbose=0)


def _unknown_metric(lib):
    m = _model(lib)
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["foo_metric"])
    m.fit(X, Y, verbose=0)


def _add(lib, obj):
    lib.Sequential().add(obj)


def _duplicate_names(lib):
    m = lib.Sequential()
    m.add(lib.layers.Dense(3, name="twin"))
    m.add(lib.layers.Dense(3, name="twin"))


def _duplicate_names_ctor(lib):
    lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, name="a"), lib.layers.Dense(2, name="a")])


def _fit(lib, x, y, **kw):
    _compiled(lib).fit(x, y, verbose=0, **kw)


# (id, callable(lib), expected exception type, words that must appear in the message)
CASES = [
    (
        "activation_unknown",
        lambda L: L.layers.Dense(3, activation="foo_act"),
        ValueError,
        ["foo_act"],
    ),
    ("activation_layer_unknown", lambda L: L.layers.Activation("foo_act"), ValueError, ["foo_act"]),
    ("loss_unknown", _unknown_loss, ValueError, ["foo_loss"]),
    ("metric_unknown", _unknown_metric, ValueError, ["foo_metric"]),
    (
        "optimizer_unknown",
        lambda L: _model(L).compile(optimizer="foo_opt", loss="mse"),
        ValueError,
        ["foo_opt"],
    ),
    (
        "initializer_unknown",
        lambda L: L.layers.Dense(3, kernel_initializer="foo_init"),
        ValueError,
        ["foo_init"],
    ),
    ("dense_units_zero", lambda L: L.layers.Dense(0), ValueError, ["units"]),
    ("dense_units_negative", lambda L: L.layers.Dense(-3), ValueError, ["units"]),
    ("dense_units_float", lambda L: L.layers.Dense(2.5), ValueError, ["units"]),
    (
        "clipnorm_and_clipvalue",
        lambda L: L.optimizers.SGD(clipnorm=1.0, clipvalue=0.5),
        ValueError,
        ["clipnorm", "clipvalue"],
    ),
    (
        "clipnorm_and_global_clipnorm",
        lambda L: L.optimizers.SGD(clipnorm=1.0, global_clipnorm=0.5),
        ValueError,
        ["clipnorm", "global_clipnorm"],
    ),
    (
        "clipvalue_and_global_clipnorm",
        lambda L: L.optimizers.SGD(clipvalue=1.0, global_clipnorm=0.5),
        ValueError,
        ["clipvalue", "global_clipnorm"],
    ),
    ("momentum_above_one", lambda L: L.optimizers.SGD(momentum=1.5), ValueError, ["momentum"]),
    ("momentum_negative", lambda L: L.optimizers.SGD(momentum=-0.1), ValueError, ["momentum"]),
    ("momentum_int_one", lambda L: L.optimizers.SGD(momentum=1), ValueError, ["momentum"]),
    ("momentum_int_zero", lambda L: L.optimizers.SGD(momentum=0), ValueError, ["momentum"]),
    ("learning_rate_int", lambda L: L.optimizers.SGD(1), ValueError, ["learning_rate"]),
    ("sgd_legacy_lr_kwarg", lambda L: L.optimizers.SGD(lr=0.1), ValueError, ["lr"]),
    (
        "x_y_different_lengths",
        lambda L: _fit(L, X, Y[:9]),
        ValueError,
        ["10", "9"],
    ),
    (
        "wrong_input_width_predict",
        lambda L: _model(L).predict(np.zeros((2, 5), np.float32), verbose=0),
        ValueError,
        ["shape"],
    ),
    (
        "wrong_input_width_fit",
        lambda L: _fit(L, np.zeros((10, 5), np.float32), Y),
        ValueError,
        ["shape"],
    ),
    (
        "wrong_input_width_evaluate",
        lambda L: _compiled(L).evaluate(np.zeros((10, 5), np.float32), Y, verbose=0),
        ValueError,
        ["shape"],
    ),
    (
        "wrong_input_width_call",
        lambda L: _model(L)(np.zeros((2, 5), np.float32)),
        ValueError,
        ["shape"],
    ),
    (
        "target_shape_mismatch",
        lambda L: _fit(L, X, np.zeros((10, 4), np.float32)),
        ValueError,
        ["shape"],
    ),
    ("fit_before_compile", lambda L: _model(L).fit(X, Y, verbose=0), ValueError, ["compile"]),
    (
        "evaluate_before_compile",
        lambda L: _model(L).evaluate(X, Y, verbose=0),
        ValueError,
        ["compile"],
    ),
    (
        "train_on_batch_before_compile",
        lambda L: _model(L).train_on_batch(X, Y),
        ValueError,
        ["compile"],
    ),
    (
        "set_weights_wrong_count",
        lambda L: _model(L).set_weights([np.zeros((4, 3), np.float32)]),
        ValueError,
        ["weight", "1", "2"],
    ),
    (
        "set_weights_wrong_kernel_shape",
        lambda L: _model(L).set_weights([np.zeros((4, 2), np.float32), np.zeros(3, np.float32)]),
        ValueError,
        ["shape", "(4, 3)", "(4, 2)"],
    ),
    (
        "set_weights_wrong_bias_shape",
        lambda L: _model(L).set_weights([np.zeros((4, 3), np.float32), np.zeros(2, np.float32)]),
        ValueError,
        ["shape", "(3,)", "(2,)"],
    ),
    (
        "dense_batch_input_shape_kwarg",
        lambda L: L.layers.Dense(3, batch_input_shape=(None, 4)),
        ValueError,
        ["batch_input_shape"],
    ),
    ("dense_unknown_kwarg", lambda L: L.layers.Dense(3, foo=1), ValueError, ["foo"]),
    ("bn_fused_kwarg", lambda L: L.layers.BatchNormalization(fused=True), ValueError, ["fused"]),
    ("add_string", lambda L: _add(L, "dense"), ValueError, ["layer"]),
    ("add_int", lambda L: _add(L, 3), ValueError, ["layer"]),
    ("constructor_non_layer", lambda L: L.Sequential([3]), ValueError, ["layer"]),
    ("duplicate_layer_names_add", _duplicate_names, ValueError, ["twin", "unique"]),
    ("duplicate_layer_names_ctor", _duplicate_names_ctor, ValueError, ["unique"]),
    (
        "validation_split_too_little_data",
        lambda L: _fit(L, X[:1], Y[:1], validation_split=0.5),
        ValueError,
        ["validation_split"],
    ),
    ("dropout_rate_above_one", lambda L: L.layers.Dropout(1.5), ValueError, ["rate"]),
    ("dropout_rate_negative", lambda L: L.layers.Dropout(-0.1), ValueError, ["rate"]),
    ("build_empty_model", lambda L: L.Sequential().build((None, 4)), ValueError, ["layers"]),
    ("build_conflicting_shape", lambda L: _model(L).build((None, 5)), ValueError, ["input shape"]),
    (
        "sparse_cce_label_smoothing",
        lambda L: L.losses.SparseCategoricalCrossentropy(label_smoothing=0.1),
        TypeError,
        ["label_smoothing"],
    ),
    (
        "loss_class_unknown_kwarg",
        lambda L: L.losses.CategoricalCrossentropy(foo=1),
        TypeError,
        ["foo"],
    ),
    (
        "count_params_unbuilt",
        lambda L: L.Sequential([L.layers.Dense(2)]).count_params(),
        ValueError,
        ["count_params"],
    ),
]


def _check(lib, fn, exc_type, words):
    with pytest.raises(Exception) as info:
        fn(lib)
    err = info.value
    assert isinstance(err, exc_type), (
        f"{lib.__name__}: raised {type(err).__name__}: {err} (expected {exc_type.__name__})"
    )
    msg = str(err).lower()
    missing = [w for w in words if w.lower() not in msg]
    assert not missing, f"{lib.__name__}: message lacks {missing}: {err}"


@pytest.mark.parametrize("fn,exc_type,words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_arguments_raise_like_keras(fn, exc_type, words, kx, keras_ref):
    _check(keras_ref, fn, exc_type, words)  # the oracle agrees on type and key words
    _check(kx, fn, exc_type, words)


def test_layers_attribute_is_read_only(kx, keras_ref):
    # spec §1.5: K3 raises AttributeError on `model.layers = ...`.
    for lib in (keras_ref, kx):
        with pytest.raises(AttributeError):
            _model(lib).layers = []


def test_unbuilt_model_input_shape_is_attribute_error(kx, keras_ref):
    # spec §1.4: "Sequential model 'x' has no defined input shape yet."
    for lib in (keras_ref, kx):
        with pytest.raises(AttributeError):
            _ = lib.Sequential([lib.layers.Dense(2)]).input_shape


def test_errors_leave_model_usable(kx):
    # A rejected call must not corrupt the model: training afterwards still works.
    m = _compiled(kx)
    before = [np.asarray(w) for w in m.get_weights()]
    with pytest.raises(ValueError):
        m.fit(np.zeros((10, 5), np.float32), Y, verbose=0)
    with pytest.raises(ValueError):
        m.set_weights([np.zeros((4, 2), np.float32), np.zeros(3, np.float32)])
    for a, b in zip(m.get_weights(), before, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    m.fit(X, Y, verbose=0, batch_size=5)
    assert np.isfinite(m.evaluate(X, Y, verbose=0))
