"""`keras.regularizers` and weight regularization in training, against real Keras 3 (JAX).

Every expected value comes from real Keras (same start weights, `shuffle=False`) or from an
independent NumPy formula. Float32 tolerances: regularizer values `rtol=1e-6` (Keras sums in
float32, kerox in float64 then rounds: a few ulp); trained weights conftest's `RTOL`/`ATOL`
(the engine's reductions are ordered differently from XLA's); History/`evaluate` losses
`rtol=1e-5` (a mean over batches of float32 losses, summed in a different order).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ATOL, RTOL, initial_weights

LOSS_RTOL = 1e-5


# --------------------------------------------------------------------------------------------
# Regularizer objects
# --------------------------------------------------------------------------------------------

# (class name, kwargs): built the same way in both libraries.
OBJECTS = [
    ("L1", {}),
    ("L1", {"l1": 0.1}),
    ("L1", {"l1": 3}),
    ("L2", {}),
    ("L2", {"l2": 0.02}),
    ("L1L2", {}),
    ("L1L2", {"l1": 0.01, "l2": 0.02}),
    ("L1L2", {"l2": 0.1}),
    ("L1L2", {"l1": None, "l2": 0.3}),
    ("l1", {"l1": 0.25}),
    ("l2", {"l2": 0.125}),
    ("l1_l2", {"l1": 0.004, "l2": 0.5}),
    ("OrthogonalRegularizer", {"factor": 0.05}),
    ("OrthogonalRegularizer", {"factor": 0.2, "mode": "columns"}),
]


def _obj(lib, name, kw):
    return getattr(lib.regularizers, name)(**kw)


@pytest.mark.parametrize(("name", "kw"), OBJECTS, ids=[f"{n}-{k}" for n, k in OBJECTS])
def test_values_configs_and_serialization_match_keras(name, kw, kx, keras_ref):
    keras = keras_ref
    ko, ro = _obj(kx, name, kw), _obj(keras, name, kw)
    assert type(ko).__name__ == type(ro).__name__
    assert ko.get_config() == ro.get_config()
    ser = kx.regularizers.serialize(ko)
    assert ser == keras.regularizers.serialize(ro)
    # Each library rebuilds the other's serialization.
    assert kx.regularizers.deserialize(ser).get_config() == ro.get_config()
    assert keras.regularizers.deserialize(ser).get_config() == ko.get_config()
    assert type(ko).from_config(ko.get_config()).get_config() == ko.get_config()

    rng = np.random.default_rng(7)
    shapes = [(7, 5), (40, 3)] if name == "OrthogonalRegularizer" else [(7, 5), (13,), (64, 32)]
    for shape in shapes:
        x = rng.standard_normal(shape).astype(np.float32)
        got = ko(x)
        assert isinstance(got, np.float32), type(got)
        # (A Keras tensor: Keras's NumPy path of OrthogonalRegularizer mis-broadcasts columns.)
        want = np.asarray(ro(keras.ops.convert_to_tensor(x)))
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=str(shape))
        if name != "OrthogonalRegularizer":
            # Independent formula (float64), with the factors Keras's config reports.
            cfg = ro.get_config()
            want = (
                cfg.get("l1", 0.0) * np.abs(x.astype(np.float64)).sum()
                + cfg.get("l2", 0.0) * np.square(x.astype(np.float64)).sum()
            )
            np.testing.assert_allclose(got, want, rtol=1e-6)


# The names Keras's `get` accepts (class names and their snake case; not "l1_l2").
GET_NAMES = [
    "l1",
    "l2",
    "L1",
    "L2",
    "L1L2",
    "l1l2",
    "OrthogonalRegularizer",
    "orthogonal_regularizer",
    "Regularizer",
    "regularizer",
]


@pytest.mark.parametrize("ident", GET_NAMES)
def test_get_names_match_keras(ident, kx, keras_ref):
    ko, ro = kx.regularizers.get(ident), keras_ref.regularizers.get(ident)
    assert type(ko).__name__ == type(ro).__name__
    if type(ro).__name__ != "Regularizer":
        assert ko.get_config() == ro.get_config()
    else:
        assert ko(np.ones((2, 2), np.float32)) == 0.0 == float(ro(np.ones((2, 2))))


@pytest.mark.parametrize("ident", ["l1_l2", "L3", "", "glorot_uniform", 5])
def test_get_refuses_what_keras_refuses(ident, kx, keras_ref):
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        keras_ref.regularizers.get(ident)
    with pytest.raises(ValueError, match="Could not interpret regularizer identifier"):
        kx.regularizers.get(ident)


def test_get_passthrough_classes_and_dicts(kx, keras_ref):
    r = kx.regularizers
    assert r.get(None) is None
    inst = r.L2(0.3)
    assert r.get(inst) is inst
    assert type(r.get(r.L1L2)) is r.L1L2 and r.get(r.L1L2).get_config() == {"l1": 0.0, "l2": 0.0}
    as_dict = {"class_name": "L1", "config": {"l1": 0.5}}
    assert r.get(as_dict).get_config() == keras_ref.regularizers.get(as_dict).get_config()
    assert r.l1_l2 is r.L1L2 and r.l1 is r.L1 and r.l2 is r.L2
    # A dict from a foreign module is not looked up among the built-ins.
    with pytest.raises(ValueError, match="Could not interpret"):
        r.deserialize({"module": "os", "class_name": "L1", "config": {}})


BAD_FACTORS = [
    ("L1", {"l1": -0.1}, "l1"),
    ("L2", {"l2": float("nan")}, "l2"),
    ("L2", {"l2": float("inf")}, "l2"),
    ("L1L2", {"l1": 0.1, "l2": -1e-9}, "l2"),
    ("L1L2", {"l1": float("-inf")}, "l1"),
    ("L1", {"l1": "0.1"}, "l1"),
    ("OrthogonalRegularizer", {"factor": -1.0}, "factor"),
]


@pytest.mark.parametrize(("name", "kw", "arg"), BAD_FACTORS)
def test_invalid_factors_are_refused(name, kw, arg, kx, keras_ref):
    with pytest.raises(ValueError, match=f"argument {arg}"):
        _obj(kx, name, kw)
    with pytest.raises(ValueError):  # this Keras version refuses them too
        _obj(keras_ref, name, kw)
    # Through a layer config (a hand-edited file) the same check applies.
    cfg = {"module": "keras.regularizers", "class_name": name, "config": kw}
    with pytest.raises(ValueError, match=arg):
        kx.layers.Dense(2, kernel_regularizer=cfg)


def test_orthogonal_mode_is_checked(kx):
    with pytest.raises(ValueError, match="mode"):
        kx.regularizers.OrthogonalRegularizer(mode="diagonal")


# --------------------------------------------------------------------------------------------
# Layers: configs, losses, refusals
# --------------------------------------------------------------------------------------------


def _layer_cases(lib):
    r = lib.regularizers
    return [
        lib.layers.Dense(4, kernel_regularizer="l2", bias_regularizer=r.L1(0.1), name="d0"),
        lib.layers.Dense(4, kernel_regularizer=r.L1L2(0.01, 0.02), name="d1"),
        lib.layers.Dense(4, use_bias=False, kernel_regularizer="L1", name="d2"),
        lib.layers.BatchNormalization(
            gamma_regularizer=r.L1L2(l1=0.3), beta_regularizer="l2", name="bn0"
        ),
        lib.layers.BatchNormalization(scale=False, beta_regularizer=r.L1(0.2), name="bn1"),
    ]


def test_layer_configs_and_losses_match_keras(kx, keras_ref):
    keras = keras_ref
    rng = np.random.default_rng(3)
    for kl, rl in zip(_layer_cases(kx), _layer_cases(keras)):
        assert kl.get_config() == rl.get_config(), kl.name
        assert kl.losses == [] and rl.losses == []  # not built yet
        kl.build((None, 6))
        rl.build((None, 6))
        weights = [rng.standard_normal(w.shape).astype(np.float32) for w in rl.get_weights()]
        kl.set_weights(weights)
        rl.set_weights(weights)
        got, want = kl.losses, [np.asarray(v) for v in rl.losses]
        assert len(got) == len(want) > 0, kl.name
        assert all(isinstance(v, np.float32) for v in got)
        np.testing.assert_allclose(got, want, rtol=1e-6, err_msg=kl.name)
        # Rebuilt from the config (in both libraries), the regularizers come back.
        again = type(kl).from_config(kl.get_config())
        assert again.get_config() == rl.get_config()
        assert type(rl).from_config(kl.get_config()).get_config() == rl.get_config()
        # Frozen: Keras counts the trainable variables only.
        kl.trainable = rl.trainable = False
        assert kl.losses == [] and list(rl.losses) == []


def test_variables_carry_their_regularizer(kx):
    layer = kx.layers.Dense(3, kernel_regularizer="l2")
    layer.build((None, 2))
    assert type(layer.kernel.regularizer) is kx.regularizers.L2
    assert layer.bias.regularizer is None
    with pytest.raises(ValueError, match="regularizer"):
        layer.kernel.regularizer = 3


def test_activity_regularizer_is_refused(kx, keras_ref):
    keras_ref.layers.Dense(2, activity_regularizer="l2")  # Keras supports it ...
    for make in (
        lambda: kx.layers.Dense(2, activity_regularizer="l2"),
        lambda: kx.layers.Dense(2, activity_regularizer=kx.regularizers.L1(0.1)),
        lambda: kx.layers.Activation("relu", activity_regularizer="l1"),
        lambda: kx.layers.BatchNormalization(activity_regularizer="l1"),
    ):
        with pytest.raises(ValueError, match="activity_regularizer"):
            make()
    assert kx.layers.Dense(2, activity_regularizer=None).activity_regularizer is None
    assert "activity_regularizer" not in kx.layers.Dense(2).get_config()


def test_unsupported_regularizers_in_layers_are_refused(kx):
    r = kx.regularizers
    with pytest.raises(ValueError, match="OrthogonalRegularizer"):
        kx.layers.Dense(2, kernel_regularizer=r.OrthogonalRegularizer())
    with pytest.raises(ValueError, match="OrthogonalRegularizer"):
        kx.layers.Dense(2, kernel_regularizer="orthogonal_regularizer")
    with pytest.raises(ValueError, match="custom regularizers"):
        kx.layers.Dense(2, kernel_regularizer=lambda w: 0.01 * np.sum(w))
    with pytest.raises(ValueError, match="custom regularizers"):
        kx.layers.BatchNormalization(gamma_regularizer=r.Regularizer())
    with pytest.raises(ValueError, match="Could not interpret"):
        kx.layers.Dense(2, bias_regularizer="l3")
    # A regularizer swapped onto a variable later is refused when the engine is built.
    model = kx.Sequential([kx.Input((3,)), kx.layers.Dense(2)])
    model.layers[0].kernel.regularizer = r.OrthogonalRegularizer()
    model.compile("sgd", "mse")
    with pytest.raises(ValueError, match="OrthogonalRegularizer"):
        model.fit(np.ones((4, 3), np.float32), np.ones((4, 2), np.float32), verbose=0)


# --------------------------------------------------------------------------------------------
# Training parity
# --------------------------------------------------------------------------------------------

# Weight layout (conftest.initial_weights) of 8 -> Dense 16 -> BN -> Dense 3.
SPEC = [
    ("Dense", {"units": 16}),
    ("BatchNormalization", {}),
    ("Dense", {"units": 3}),
]


def _model(lib, first_kernel=None, frozen_first=False, n_in=8):
    r = lib.regularizers
    model = lib.Sequential(
        [
            lib.Input((n_in,)),
            lib.layers.Dense(
                16,
                activation="relu",
                kernel_regularizer=None if first_kernel is None else _obj(lib, *first_kernel),
            ),
            lib.layers.BatchNormalization(
                gamma_regularizer=r.L1L2(l1=0.01, l2=0.02),
                beta_regularizer=r.L1L2(l1=0.03),
            ),
            lib.layers.Dense(3, activation="softmax", bias_regularizer=r.L1(0.05)),
        ]
    )
    if frozen_first:
        model.layers[0].trainable = False
    return model


def _data(n=96, d=8, seed=0, zero_fraction=0.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    if zero_fraction:
        x[rng.random(x.shape) < zero_fraction] = 0.0
    w = rng.standard_normal((d, 3))
    y = np.eye(3, dtype=np.float32)[(x @ w).argmax(axis=1)]
    return x, y


def _optimizer(lib, which):
    if which == "sgd_momentum":
        return lib.optimizers.SGD(learning_rate=0.05, momentum=0.9)
    if which == "sgd_clipnorm":
        return lib.optimizers.SGD(learning_rate=0.1, momentum=0.5, clipnorm=0.5)
    if which == "sgd_plain":
        return lib.optimizers.SGD(learning_rate=0.05)
    return lib.optimizers.Adam(learning_rate=0.01)


def _twins(kx, keras, n_in=8, seed=0, **kw):
    km, rm = _model(kx, n_in=n_in, **kw), _model(keras, n_in=n_in, **kw)
    spec = SPEC
    # Non-zero biases and beta (conftest draws biases in ±0.05, random BN statistics): see
    # test_l1_gradient_at_exact_zero for why exact zeros are kept out of these cases.
    w0 = initial_weights(spec, (n_in,), seed=seed, randomize_bn_stats=True)
    km.set_weights(w0)
    rm.set_weights(w0)
    return km, rm


def _same_configs(a_layers, b_layers):
    # Layer names come from each library's own process-wide counters.
    for a, b in zip(a_layers, b_layers, strict=True):
        ca, cb = dict(a.get_config()), dict(b.get_config())
        ca.pop("name"), cb.pop("name")
        assert ca == cb, (a.name, b.name)


def _fit_both(km, rm, kx, keras, x, y, opt, **fit_kw):
    km.compile(_optimizer(kx, opt), "categorical_crossentropy")
    rm.compile(_optimizer(keras, opt), "categorical_crossentropy", jit_compile=False)
    kw = {"epochs": 2, "batch_size": 16, "shuffle": False, "verbose": 0, **fit_kw}
    return km.fit(x, y, **kw).history, rm.fit(x, y, **kw).history


def _assert_same(km, rm, hk, hr, x, y):
    assert hk.keys() == hr.keys()
    for key in hr:
        np.testing.assert_allclose(hk[key], hr[key], rtol=LOSS_RTOL, err_msg=key)
    for i, (a, b) in enumerate(zip(km.get_weights(), rm.get_weights())):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"weight {i}")
    np.testing.assert_allclose(
        km.evaluate(x, y, verbose=0), rm.evaluate(x, y, verbose=0), rtol=LOSS_RTOL
    )
    # After training the weights agree to RTOL, so the penalties do too (not to 1e-6).
    want = [np.asarray(v) for v in rm.losses]
    assert len(km.losses) == len(want)
    np.testing.assert_allclose(km.losses, want, rtol=RTOL)


@pytest.mark.parametrize("opt", ["sgd_momentum", "sgd_clipnorm", "adam"])
def test_training_with_regularizers_matches_keras(opt, kx, keras_ref):
    keras = keras_ref
    km, rm = _twins(kx, keras, first_kernel=("L2", {"l2": 0.01}))
    x, y = _data()
    before = [np.asarray(v) for v in rm.losses]
    np.testing.assert_allclose(km.losses, before, rtol=1e-6)
    hk, hr = _fit_both(km, rm, kx, keras, x, y, opt, validation_split=0.25)
    assert "val_loss" in hk
    _assert_same(km, rm, hk, hr, x, y)
    # The penalty is a visible part of the loss: evaluate minus the penalties is the
    # data loss Keras computes without them.
    penalty = float(np.sum(np.asarray(rm.losses, dtype=np.float64)))
    assert penalty > 1e-3
    p = np.clip(km.predict(x, verbose=0).astype(np.float64), 1e-7, 1 - 1e-7)
    data_loss = float(-(y * np.log(p)).sum(axis=1).mean())
    np.testing.assert_allclose(km.evaluate(x, y, verbose=0) - penalty, data_loss, rtol=1e-4)


def test_sparse_inputs_with_first_kernel_l2_match_keras(kx, keras_ref):
    keras = keras_ref
    x, y = _data(n=200, d=100, seed=1, zero_fraction=0.85)
    assert (x == 0).mean() >= 0.8
    km, rm = _twins(kx, keras, n_in=100, seed=1, first_kernel=("L2", {"l2": 0.02}))
    hk, hr = _fit_both(km, rm, kx, keras, x, y, "sgd_plain")
    _assert_same(km, rm, hk, hr, x, y)


def test_frozen_layer_penalty_is_left_out_as_in_keras(kx, keras_ref):
    keras = keras_ref
    km, rm = _twins(kx, keras, first_kernel=("L2", {"l2": 0.5}), frozen_first=True)
    x, y = _data(seed=2)
    start = km.layers[0].kernel.numpy()
    # Keras's model.losses holds the three trainable penalties, not the frozen kernel's.
    assert len(rm.losses) == len(km.losses) == 3
    hk, hr = _fit_both(km, rm, kx, keras, x, y, "sgd_momentum")
    _assert_same(km, rm, hk, hr, x, y)
    np.testing.assert_array_equal(km.layers[0].kernel.numpy(), start)
    # Unfrozen, the kernel's (large) penalty joins the loss in both.
    km.layers[0].trainable = rm.layers[0].trainable = True
    _assert_same(km, rm, *_fit_both(km, rm, kx, keras, x, y, "sgd_momentum", epochs=1), x, y)


def test_reassigned_regularizer_reaches_the_engine(kx, keras_ref):
    keras = keras_ref
    km, rm = _twins(kx, keras)
    x, y = _data(seed=4)
    _fit_both(km, rm, kx, keras, x, y, "adam", epochs=1)
    km.layers[0].kernel.regularizer = kx.regularizers.L1(0.2)
    rm.layers[0].kernel.regularizer = keras.regularizers.L1(0.2)
    hk, hr = _fit_both(km, rm, kx, keras, x, y, "sgd_plain", epochs=1)
    _assert_same(km, rm, hk, hr, x, y)


def test_l1_gradient_at_exact_zero(kx, keras_ref):
    """A zero-initialized L1-regularized bias moves at the first step: JAX's d|w|/dw is 1
    at w = 0."""
    keras = keras_ref
    km, rm = _twins(kx, keras)
    w0 = km.get_weights()
    w0[-1] = np.zeros_like(w0[-1])  # the L1-regularized bias starts at exactly 0
    km.set_weights(w0)
    rm.set_weights(w0)
    x, y = _data(seed=5)
    hk, hr = _fit_both(km, rm, kx, keras, x, y, "sgd_plain", epochs=1)
    np.testing.assert_allclose(km.get_weights()[-1], rm.get_weights()[-1], rtol=RTOL, atol=ATOL)


# --------------------------------------------------------------------------------------------
# Saving and loading
# --------------------------------------------------------------------------------------------


def test_keras_files_with_regularizers_both_ways(kx, keras_ref, tmp_path):
    keras = keras_ref
    km, rm = _twins(kx, keras, first_kernel=("L1L2", {"l1": 0.001, "l2": 0.01}))
    x, y = _data(seed=6)
    _same_configs(km.layers, rm.layers)

    # kerox -> Keras
    km.compile(_optimizer(kx, "sgd_plain"), "categorical_crossentropy")
    path = tmp_path / "kerox.keras"
    km.save(str(path))
    loaded = keras.models.load_model(str(path))
    for a, b in zip(loaded.layers, km.layers, strict=True):
        assert a.get_config() == b.get_config(), a.name
    np.testing.assert_allclose([np.asarray(v) for v in loaded.losses], km.losses, rtol=1e-6)
    np.testing.assert_allclose(
        loaded.evaluate(x, y, verbose=0), km.evaluate(x, y, verbose=0), rtol=LOSS_RTOL
    )

    # Keras -> kerox
    rm.compile(_optimizer(keras, "sgd_plain"), "categorical_crossentropy")
    path = tmp_path / "keras.keras"
    rm.save(str(path))
    back = kx.models.load_model(str(path))
    for a, b in zip(back.layers, rm.layers, strict=True):
        assert a.get_config() == b.get_config(), a.name
    assert type(back.layers[2].bias.regularizer) is kx.regularizers.L1
    np.testing.assert_allclose(back.losses, [np.asarray(v) for v in rm.losses], rtol=1e-6)
    np.testing.assert_allclose(
        back.evaluate(x, y, verbose=0), rm.evaluate(x, y, verbose=0), rtol=LOSS_RTOL
    )
    _assert_same(back, rm, *_fit_both(back, rm, kx, keras, x, y, "sgd_plain", epochs=1), x, y)


def test_loading_refuses_unsupported_regularizers(kx, keras_ref, tmp_path):
    keras = keras_ref
    cases = {
        "activity_regularizer": keras.layers.Dense(2, activity_regularizer="l2"),
        "OrthogonalRegularizer": keras.layers.Dense(
            2, kernel_regularizer=keras.regularizers.OrthogonalRegularizer()
        ),
    }
    for i, (what, layer) in enumerate(cases.items()):
        path = tmp_path / f"m{i}.keras"
        keras.Sequential([keras.Input((3,)), layer]).save(str(path))
        with pytest.raises(ValueError, match=what):
            kx.models.load_model(str(path))
