"""Keras-3 behaviour of the public kerox.keras API, checked against real Keras where possible.

Expected values come from real Keras (same spec, same weights), from hand computations stated
in comments, or from /work/shared/keras-spec.md (section numbers given).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from conftest import (
    assert_history_close,
    assert_weights_close,
    build_model,
    final_lines,
    make_data,
    randomize_bn,
    strip_ansi,
    twin_models,
)

BN_SPEC = [
    ("Dense", {"units": 16, "activation": "relu"}),
    ("BatchNormalization", {}),
    ("Dense", {"units": 3, "activation": "softmax"}),
]


def _xy(n=100, d=8, classes=3, seed=0):
    return make_data(n, d, "onehot", seed=seed, classes=classes)


def _compile(lib, model, lr=0.05, metrics=("accuracy",), loss="categorical_crossentropy", **opt):
    model.compile(
        optimizer=lib.optimizers.SGD(learning_rate=lr, **opt), loss=loss, metrics=list(metrics)
    )
    return model


def _shapes(ws):
    return [tuple(int(s) for s in np.shape(w)) for w in ws]


# --------------------------------------------------------------------------------------------
# Weights: order, shapes, names, trainability, count_params  (spec §1.5, §3.2)
# --------------------------------------------------------------------------------------------

WEIGHT_SPECS = {
    "dense_bn_dense": BN_SPEC,
    "frozen_bn": [
        ("Dense", {"units": 16}),
        ("BatchNormalization", {"trainable": False}),
        ("Dense", {"units": 3}),
    ],
    "bn_center_false": [("Dense", {"units": 5}), ("BatchNormalization", {"center": False})],
    "bn_scale_false": [("Dense", {"units": 5}), ("BatchNormalization", {"scale": False})],
    "bn_no_affine": [
        ("BatchNormalization", {"center": False, "scale": False}),
        ("Dense", {"units": 2}),
    ],
    "dense_no_bias": [("Dense", {"units": 4, "use_bias": False}), ("Dense", {"units": 2})],
    "frozen_dense": [("Dense", {"units": 4, "trainable": False}), ("Dense", {"units": 2})],
}


@pytest.mark.parametrize("name", list(WEIGHT_SPECS))
def test_weight_lists_match_keras(name, kx, keras_ref):
    spec = WEIGHT_SPECS[name]
    km = build_model(kx, spec, (8,))
    rm = build_model(keras_ref, spec, (8,))
    assert _shapes(km.get_weights()) == _shapes(rm.get_weights())
    assert _shapes(km.weights) == _shapes(rm.weights)
    assert _shapes(km.trainable_weights) == _shapes(rm.trainable_weights)
    assert _shapes(km.non_trainable_weights) == _shapes(rm.non_trainable_weights)
    assert km.count_params() == rm.count_params()
    assert all(np.asarray(w).dtype == np.float32 for w in km.get_weights())
    # `weights` holds the variables whose values get_weights() returns, in the same order.
    for v, w in zip(km.weights, km.get_weights(), strict=True):
        np.testing.assert_array_equal(np.asarray(v), np.asarray(w))


@pytest.mark.parametrize("name", list(WEIGHT_SPECS))
def test_weight_variable_names_match_keras(name, kx, keras_ref):
    # K3: v.name is the bare variable name ("kernel", "moving_mean", ...), spec §1.5.
    spec = WEIGHT_SPECS[name]
    km = build_model(kx, spec, (8,))
    rm = build_model(keras_ref, spec, (8,))
    assert [v.name for v in km.weights] == [v.name for v in rm.weights]
    assert [v.name for v in km.trainable_weights] == [v.name for v in rm.trainable_weights]
    assert [v.name for v in km.non_trainable_weights] == [v.name for v in rm.non_trainable_weights]


def test_frozen_bn_weight_lists_by_hand(kx):
    # spec §1.5: frozen BN keeps the order, trainable [] and non-trainable all four.
    km = build_model(kx, WEIGHT_SPECS["frozen_bn"], (8,))
    assert _shapes(km.weights) == [(8, 16), (16,), (16,), (16,), (16,), (16,), (16, 3), (3,)]
    assert _shapes(km.trainable_weights) == [(8, 16), (16,), (16, 3), (3,)]
    assert _shapes(km.non_trainable_weights) == [(16,)] * 4
    # 8*16+16 + 4*16 + 16*3+3 = 259
    assert km.count_params() == 259


def test_get_set_weights_round_trip(kx):
    km = build_model(kx, BN_SPEC, (8,))
    rng = np.random.default_rng(0)
    new = [rng.standard_normal(np.shape(w)).astype(np.float32) for w in km.get_weights()]
    km.set_weights(new)
    got = km.get_weights()
    for a, b in zip(got, new, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    # get_weights returns copies: mutating them does not touch the model.
    got[0][...] = 0.0
    np.testing.assert_array_equal(np.asarray(km.get_weights()[0]), new[0])


def test_initial_values_bn_and_bias(kx):
    km = build_model(kx, BN_SPEC, (8,))
    w = [np.asarray(a) for a in km.get_weights()]
    np.testing.assert_array_equal(w[1], 0.0)  # Dense bias: zeros
    np.testing.assert_array_equal(w[2], 1.0)  # gamma: ones
    np.testing.assert_array_equal(w[3], 0.0)  # beta: zeros
    np.testing.assert_array_equal(w[4], 0.0)  # moving_mean: zeros
    np.testing.assert_array_equal(w[5], 1.0)  # moving_variance: ones
    limit = np.sqrt(6.0 / (8 + 16))  # glorot_uniform, spec §2.3
    assert np.abs(w[0]).max() <= limit and np.abs(w[0]).max() > 0.5 * limit


# --------------------------------------------------------------------------------------------
# Model construction
# --------------------------------------------------------------------------------------------


def _suffix(name, base):
    m = re.fullmatch(rf"{base}(?:_(\d+))?", name)
    assert m, f"{name!r} does not follow Keras's '{base}', '{base}_1', ... naming"
    return int(m.group(1) or 0)


@pytest.mark.parametrize("which", ["kerox", "keras"])
def test_layer_auto_names(which, kx, keras_ref):
    lib = kx if which == "kerox" else keras_ref
    L = lib.layers
    # Counters are global per process (spec §1.1), so compare patterns and increments.
    a, b = L.Dense(2), L.Dense(2)
    assert _suffix(b.name, "dense") == _suffix(a.name, "dense") + 1
    n1, n2 = L.BatchNormalization(), L.BatchNormalization()
    assert _suffix(n2.name, "batch_normalization") == _suffix(n1.name, "batch_normalization") + 1
    _suffix(L.Dropout(0.5).name, "dropout")
    _suffix(L.Flatten().name, "flatten")
    _suffix(L.Activation("relu").name, "activation")
    s1, s2 = lib.Sequential(), lib.Sequential()
    assert _suffix(s2.name, "sequential") == _suffix(s1.name, "sequential") + 1
    assert L.Dense(2, name="fc1").name == "fc1"
    assert lib.Sequential(name="my_model").name == "my_model"
    model = lib.Sequential([lib.Input((3,)), a, n1, L.Dense(1, name="out")])
    assert [layer.name for layer in model.layers] == [a.name, n1.name, "out"]


def test_sequential_layers_add_pop_build(kx, keras_ref):
    for lib in (kx, keras_ref):
        model = lib.Sequential()
        assert model.layers == []
        d1 = lib.layers.Dense(4, activation="relu")
        d2 = lib.layers.Dense(2)
        model.add(d1)
        model.add(d2)
        assert model.layers == [d1, d2]
        assert model.weights == []  # deferred build: no weights yet (spec §1.2 rule 6)
        model.build((None, 3))
        assert _shapes(model.get_weights()) == [(3, 4), (4,), (4, 2), (2,)]
        model.pop()
        assert model.layers == [d1]
        assert _shapes(model.get_weights()) == [(3, 4), (4,)]
        assert len(model.layers) == 1


def test_sequential_constructor_list_and_layer_types(kx):
    model = kx.Sequential(
        [
            kx.Input(shape=(6,)),
            kx.layers.Dense(4, activation="relu"),
            kx.layers.Dropout(0.2),
            kx.layers.BatchNormalization(),
            kx.layers.Activation("tanh"),
            kx.layers.Dense(2, activation="softmax"),
        ],
        name="net",
    )
    assert model.name == "net"
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "Dropout", "BatchNormalization", "Activation", "Dense"]
    assert isinstance(model.layers[0], kx.layers.Dense)
    assert isinstance(model.layers[2], kx.layers.BatchNormalization)
    assert _shapes(model.get_weights()) == [(6, 4), (4,), (4,), (4,), (4,), (4,), (4, 2), (2,)]


def test_input_first_layer_builds_immediately(kx, keras_ref):
    for lib in (kx, keras_ref):
        model = lib.Sequential()
        model.add(lib.Input(shape=(784,)))
        model.add(lib.layers.Dense(10))
        # InputLayer is not in `layers`, weights exist right away (spec §1.2 rule 6, §1.3).
        assert len(model.layers) == 1
        assert _shapes(model.get_weights()) == [(784, 10), (10,)]
        assert model.predict(np.zeros((3, 784), np.float32), verbose=0).shape == (3, 10)


@pytest.mark.parametrize("kwarg", [{"input_dim": 4}, {"input_shape": (4,)}])
def test_legacy_input_dim_and_input_shape(kwarg, kx, keras_ref):
    for lib in (kx, keras_ref):
        model = lib.Sequential()
        model.add(lib.layers.Dense(3, activation="relu", **kwarg))
        model.add(lib.layers.Dense(2))
        assert len(model.layers) == 2
        assert _shapes(model.get_weights()) == [(4, 3), (3,), (3, 2), (2,)]
        model2 = lib.Sequential([lib.layers.Dense(3, **kwarg)])
        assert _shapes(model2.get_weights()) == [(4, 3), (3,)]


@pytest.mark.parametrize("kwarg", [{"input_dim": 4}, {"input_shape": (4,)}])
def test_legacy_input_kwargs_warn_like_keras(kwarg, kx, keras_ref):
    # spec §1.3: K3 emits a UserWarning suggesting keras.Input.
    for lib in (keras_ref, kx):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            lib.layers.Dense(3, **kwarg)
        assert any(issubclass(w.category, UserWarning) for w in caught), lib.__name__
        assert any("Input" in str(w.message) for w in caught), [str(w.message) for w in caught]


def test_flatten_28x28_matches_keras(kx, keras_ref):
    spec = [("Flatten", {}), ("Dense", {"units": 10, "activation": "softmax"})]
    km, rm = twin_models(kx, keras_ref, spec, (28, 28), seed=0)
    assert _shapes(km.get_weights()) == [(784, 10), (10,)]
    x = np.random.default_rng(0).random((5, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(
        km.predict(x, verbose=0), rm.predict(x, verbose=0), rtol=1e-5, atol=1e-7
    )
    legacy = kx.Sequential([kx.layers.Flatten(input_shape=(28, 28)), kx.layers.Dense(10)])
    assert _shapes(legacy.get_weights()) == [(784, 10), (10,)]


def test_fit_on_deferred_build_model(kx, keras_ref):
    x, y = _xy(50)
    for lib in (kx, keras_ref):
        model = lib.Sequential([lib.layers.Dense(5, activation="relu"), lib.layers.Dense(3)])
        _compile(lib, model, loss=lib.losses.CategoricalCrossentropy(from_logits=True))
        model.fit(x, y, epochs=1, batch_size=16, verbose=0)
        assert _shapes(model.get_weights()) == [(8, 5), (5,), (5, 3), (3,)]


# --------------------------------------------------------------------------------------------
# summary()  (spec §1.6) — run in fresh interpreters so that auto-names start at "dense"
# --------------------------------------------------------------------------------------------

_SUMMARY_SCRIPT = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    if sys.argv[1] == "kerox":
        from kerox import keras
    else:
        import keras
    model = keras.Sequential()
    model.add(keras.layers.Dense(256, activation="relu", input_dim=784))
    model.add(keras.layers.Dense(64, activation="relu"))
    model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.Dense(32, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    chunks = []
    model.summary(print_fn=lambda s, **kw: chunks.append(s))
    print("<<PRINT_FN>>")
    print("\\n".join(c.rstrip("\\n") for c in chunks))
    print("<<STDOUT>>")
    model.summary()
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).random((64, 784)).astype("float32")
    y = np.eye(10, dtype="float32")[np.arange(64) % 10]
    model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    print("<<AFTER_FIT>>")
    model.summary()
    print("<<UNBUILT>>")
    keras.Sequential([keras.layers.Dense(2)], name="unbuilt").summary()
    print("<<END>>")
    """
)


def _run_summary_script(which):
    env = dict(os.environ)
    env["KERAS_BACKEND"] = "jax"
    for var in ("COLUMNS", "LINES", "FORCE_COLOR", "TERM"):
        env.pop(var, None)
    proc = subprocess.run(
        [sys.executable, "-c", _SUMMARY_SCRIPT, which],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, f"{which} summary script failed:\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_summary_text_equals_keras(kx, keras_ref):
    want = _run_summary_script("keras")
    got = _run_summary_script("kerox")
    want_parts = re.split(r"<<(\w+)>>\n", want)
    got_parts = re.split(r"<<(\w+)>>\n", got)
    want_map = dict(zip(want_parts[1::2], want_parts[2::2], strict=True))
    got_map = dict(zip(got_parts[1::2], got_parts[2::2], strict=False))
    # Sanity of the oracle run (spec §1.6 footer lines).
    assert " Total params: 220,074 (859.66 KB)" in want_map["PRINT_FN"]
    assert " Optimizer params:" in want_map["AFTER_FIT"]
    for part in ("PRINT_FN", "STDOUT", "AFTER_FIT", "UNBUILT"):
        assert part in got_map, f"kerox output lacks the {part} section:\n{got}"
        g = [line.rstrip() for line in got_map[part].rstrip("\n").split("\n")]
        w = [line.rstrip() for line in want_map[part].rstrip("\n").split("\n")]
        assert g == w, (
            f"summary() [{part}] differs from Keras:\n" + "\n".join(g) + "\n---\n" + ("\n".join(w))
        )


# --------------------------------------------------------------------------------------------
# fit / History / evaluate / predict / train_on_batch
# --------------------------------------------------------------------------------------------


def test_history_keys_params_epoch_match_keras(kx, keras_ref):
    x, y = _xy(100)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    out = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model)
        h = model.fit(x, y, epochs=2, batch_size=32, validation_split=0.3, shuffle=False, verbose=0)
        assert model.history is h
        out.append(h)
    hk, hr = out
    # K3 sorts keys alphabetically (spec §7.5).
    assert list(hr.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert list(hk.history) == list(hr.history)
    assert hk.params == hr.params == {"verbose": 0, "epochs": 2, "steps": 3}  # ceil(70/32)
    assert list(hk.epoch) == list(hr.epoch) == [0, 1]
    assert all(isinstance(v, float) for vs in hk.history.values() for v in vs)
    assert_history_close(hk.history, hr.history, counts={"accuracy": 70, "val_accuracy": 30})


def test_history_keys_without_metrics(kx, keras_ref):
    x, y = _xy(40)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    keys = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model, metrics=())
        keys.append(list(model.fit(x, y, validation_data=(x, y), verbose=0).history))
    assert keys[0] == keys[1] == ["loss", "val_loss"]


def test_metric_name_is_the_compile_string(kx, keras_ref):
    # spec §6.1/§7.5: 'acc' gives keys acc / val_acc; explicit metrics keep their names.
    x, y = _xy(40)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    hists = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model, metrics=("acc", "categorical_accuracy"))
        h = model.fit(x, y, validation_data=(x, y), shuffle=False, verbose=0)
        hists.append(h.history)
    assert list(hists[1]) == [
        "acc",
        "categorical_accuracy",
        "loss",
        "val_acc",
        "val_categorical_accuracy",
        "val_loss",
    ]
    assert_history_close(hists[0], hists[1], counts=dict.fromkeys(hists[1], 40))


def test_evaluate_return_forms_match_keras(kx, keras_ref):
    x, y = _xy(70)
    results = {}
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)
    for name, lib, model in (("kx", kx, km), ("k", keras_ref, rm)):
        _compile(lib, model, metrics=("accuracy", "categorical_accuracy"))
        results[name] = (
            model.evaluate(x, y, verbose=0),
            model.evaluate(x, y, verbose=0, return_dict=True),
            model.evaluate(x, y, batch_size=7, verbose=0),
        )
    (lst, dct, lst7), (rlst, rdct, rlst7) = results["kx"], results["k"]
    assert isinstance(lst, list) and len(lst) == 3
    assert all(isinstance(v, float) for v in lst)
    np.testing.assert_allclose(lst, rlst, rtol=1e-5)
    np.testing.assert_allclose(lst7, rlst7, rtol=1e-5)
    assert isinstance(dct, dict)
    assert list(dct) == list(rdct) == ["accuracy", "categorical_accuracy", "loss"]
    np.testing.assert_allclose([dct[k] for k in rdct], list(rdct.values()), rtol=1e-5)

    # Loss only: a plain float (spec §7.7).
    km2, rm2 = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    vals = []
    for lib, model in ((kx, km2), (keras_ref, rm2)):
        _compile(lib, model, metrics=())
        vals.append(
            (model.evaluate(x, y, verbose=0), model.evaluate(x, y, verbose=0, return_dict=True))
        )
    assert isinstance(vals[0][0], float), type(vals[0][0])
    np.testing.assert_allclose(vals[0][0], vals[1][0], rtol=1e-5)
    assert list(vals[0][1]) == ["loss"]


@pytest.mark.parametrize("n,batch_size", [(70, None), (70, 32), (1, None), (33, 16), (5, 100)])
def test_predict_shapes_and_values(n, batch_size, kx, keras_ref):
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)
    x = np.random.default_rng(n).standard_normal((n, 8)).astype(np.float32)
    kw = {} if batch_size is None else {"batch_size": batch_size}
    p = km.predict(x, verbose=0, **kw)
    assert isinstance(p, np.ndarray)
    assert p.shape == (n, 3) and p.dtype == np.float32
    np.testing.assert_allclose(p, rm.predict(x, verbose=0, **kw), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_accepts_float64(kx, keras_ref):
    # Keras casts float64 input to the float32 compute dtype (Keras rejects plain lists).
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    x = np.random.default_rng(0).standard_normal((4, 8))
    p = km.predict(x, verbose=0)
    assert p.dtype == np.float32
    np.testing.assert_allclose(p, km.predict(x.astype(np.float32), verbose=0), rtol=1e-6)
    np.testing.assert_allclose(p, rm.predict(x, verbose=0), rtol=1e-5, atol=1e-7)


def test_train_on_batch_matches_keras(kx, keras_ref):
    x, y = _xy(24)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)
    res = {}
    for name, lib, model in (("kx", kx, km), ("k", keras_ref, rm)):
        _compile(lib, model, momentum=0.5)
        first = model.train_on_batch(x, y)
        second = model.train_on_batch(x[:10], y[:10])
        as_dict = model.train_on_batch(x, y, return_dict=True)
        res[name] = (first, second, as_dict, model.get_weights())
    (f, s, d, w), (rf, rs, rd, rw) = res["kx"], res["k"]
    assert isinstance(f, list) and len(f) == 2 and all(isinstance(v, float) for v in f)
    np.testing.assert_allclose(f, rf, rtol=1e-5)
    np.testing.assert_allclose(s, rs, rtol=1e-5)
    assert list(d) == list(rd) == ["accuracy", "loss"]
    np.testing.assert_allclose([d[k] for k in rd], list(rd.values()), rtol=1e-5)
    assert_weights_close(w, rw, rtol=1e-5, atol=1e-7)


def test_train_on_batch_loss_only_is_float(kx, keras_ref):
    x, y = _xy(16)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    vals = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model, metrics=())
        vals.append(model.train_on_batch(x, y))
    assert isinstance(vals[0], float), type(vals[0])
    np.testing.assert_allclose(vals[0], vals[1], rtol=1e-5)


def test_call_runs_in_inference_mode(kx, keras_ref):
    # spec §3.5: model(x) defaults to training=None -> BN uses the moving statistics.
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)
    x = np.random.default_rng(3).standard_normal((9, 8)).astype(np.float32)
    before = km.get_weights()
    out = np.asarray(km(x))
    assert out.shape == (9, 3)
    np.testing.assert_allclose(out, np.asarray(rm(x)), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out, km.predict(x, verbose=0), rtol=1e-5, atol=1e-7)
    assert_weights_close(km.get_weights(), before, rtol=0, atol=0, what="weights after model(x)")


def test_call_training_true_uses_batch_statistics(kx, keras_ref):
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)
    x = np.random.default_rng(4).standard_normal((9, 8)).astype(np.float32)
    out = np.asarray(km(x, training=True))
    np.testing.assert_allclose(out, np.asarray(rm(x, training=True)), rtol=1e-5, atol=1e-7)
    assert not np.allclose(out, np.asarray(km(x)), atol=1e-4)


def test_frozen_bn_runs_in_inference_mode_during_fit(kx, keras_ref):
    # spec §3.6: a frozen BN never updates moving stats and uses them inside fit().
    spec = WEIGHT_SPECS["frozen_bn"]
    km = build_model(kx, spec, (8,))
    randomize_bn(km, spec, (8,))
    before = [np.asarray(w) for w in km.get_weights()]
    x, y = _xy(64)
    _compile(kx, km, loss=kx.losses.CategoricalCrossentropy(from_logits=True))
    km.fit(x, y, batch_size=16, epochs=1, verbose=0)
    after = [np.asarray(w) for w in km.get_weights()]
    for a, b in zip(after[2:6], before[2:6], strict=True):  # gamma, beta, moving stats
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(after[0], before[0])  # the Dense kernels still train


def test_trainable_attribute_set_before_compile_matches_keras(kx, keras_ref):
    # spec §1.5/§3.6: `layer.trainable = False` before compile freezes gamma/beta, and the BN
    # then runs in inference mode inside fit (no moving-stat updates).
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)
    x, y = _xy(48)
    out = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        model.layers[1].trainable = False
        assert len(model.trainable_weights) == 4
        assert len(model.non_trainable_weights) == 4
        _compile(lib, model)
        model.fit(x, y, batch_size=16, shuffle=False, verbose=0)
        out.append(model.get_weights())
    assert_weights_close(out[0], out[1], rtol=1e-5, atol=1e-7)
    before = twin_models(kx, keras_ref, BN_SPEC, (8,), randomize_bn_stats=True, seed=0)[0]
    for a, b in zip(out[0][2:6], before.get_weights()[2:6], strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


# --------------------------------------------------------------------------------------------
# Dropout (spec: inference identity; training drops ~rate and scales by 1/(1-rate))
# --------------------------------------------------------------------------------------------


def test_dropout_inference_is_identity(kx):
    model = kx.Sequential([kx.Input((50,)), kx.layers.Dropout(0.5)])
    x = np.random.default_rng(0).standard_normal((20, 50)).astype(np.float32)
    np.testing.assert_array_equal(model.predict(x, verbose=0), x)
    np.testing.assert_array_equal(np.asarray(model(x)), x)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_call_training_true_drops_and_scales(rate, kx, keras_ref):
    x = np.ones((200, 1000), np.float32)
    for lib in (keras_ref, kx):
        model = lib.Sequential([lib.Input((1000,)), lib.layers.Dropout(rate, seed=7)])
        out = np.asarray(model(x, training=True))
        dropped = float(np.mean(out == 0))
        # 200k Bernoulli draws: std of the fraction is < 0.0012, allow 0.01.
        assert abs(dropped - rate) < 0.01, (lib.__name__, dropped)
        kept = out[out != 0]
        np.testing.assert_allclose(kept, np.float32(1.0) / np.float32(1.0 - rate), rtol=1e-6)


@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_in_training_step_drops_and_scales(rate, kx, keras_ref):
    # Input(200) -> Dropout -> Dense(200, identity kernel, no bias), MSE against ones, lr 0.
    # Per element the error is (m / (1 - rate) - 1)^2: kept -> (rate / (1 - rate))^2, dropped
    # -> 1, so the expected loss is rate / (1 - rate) (0.4286 for 0.3, exactly 1 for 0.5).
    # Without dropout it would be 0; dropping without rescaling would give `rate`.
    x = np.ones((64, 200), np.float32)
    y = np.ones((64, 200), np.float32)
    for lib in (keras_ref, kx):
        model = lib.Sequential(
            [
                lib.Input((200,)),
                lib.layers.Dropout(rate, seed=3),
                lib.layers.Dense(200, use_bias=False),
            ]
        )
        model.set_weights([np.eye(200, dtype=np.float32)])
        model.compile(optimizer=lib.optimizers.SGD(0.0), loss="mse")
        loss = model.train_on_batch(x, y)
        # 12800 Bernoulli draws: std of the loss < 0.004; allow 0.02.
        assert abs(loss - rate / (1 - rate)) < 0.02, (lib.__name__, loss)
        # Inference stays the identity.
        np.testing.assert_allclose(model.predict(x, verbose=0), x, rtol=1e-6)


def test_dropout_same_seed_same_training(kx):
    spec = [("Dense", {"units": 32, "activation": "relu"}), ("Dropout", {"rate": 0.4, "seed": 5})]
    spec += [("Dense", {"units": 3, "activation": "softmax"})]
    x, y = _xy(96)
    start = build_model(kx, spec, (8,)).get_weights()

    def train(seed):
        sp = [spec[0], ("Dropout", {"rate": 0.4, "seed": seed}), spec[2]]
        m = build_model(kx, sp, (8,))
        m.set_weights(start)
        _compile(kx, m, lr=0.1)
        m.fit(x, y, batch_size=16, shuffle=False, verbose=0)
        return [np.asarray(w) for w in m.get_weights()]

    a, b, c = train(5), train(5), train(6)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a[0], c[0])


def test_dropout_in_fit_changes_training_not_inference(kx):
    spec = [("Dense", {"units": 16, "activation": "relu"}), ("Dropout", {"rate": 0.5, "seed": 1})]
    spec += [("Dense", {"units": 3, "activation": "softmax"})]
    x, y = _xy(64)
    km = build_model(kx, spec, (8,))
    _compile(kx, km)
    w0 = km.get_weights()
    km.fit(x, y, batch_size=16, verbose=0)
    assert not np.allclose(km.get_weights()[0], w0[0])
    p = km.predict(x, verbose=0)
    np.testing.assert_array_equal(p, km.predict(x, verbose=0))  # deterministic inference


# --------------------------------------------------------------------------------------------
# fit options: initial_epoch, validation_split, validation_data
# --------------------------------------------------------------------------------------------


def test_initial_epoch_matches_keras(kx, keras_ref):
    x, y = _xy(60)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    got = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model)
        seen = []
        cb = lib.callbacks.LambdaCallback(
            on_epoch_begin=lambda epoch, logs, s=seen: s.append(epoch)
        )
        h = model.fit(x, y, epochs=4, initial_epoch=2, shuffle=False, verbose=0, callbacks=[cb])
        got.append((list(h.epoch), seen, h.params["epochs"], len(h.history["loss"]), h.history))
    assert got[0][:4] == got[1][:4] == ([2, 3], [2, 3], 4, 2)
    assert_history_close(got[0][4], got[1][4], counts={"accuracy": 60})


@pytest.mark.parametrize("shuffle", [False, True])
def test_validation_split_takes_last_fraction_before_shuffling(shuffle, kx, keras_ref):
    # With learning_rate=0 and no BN the weights never change, so (hand reasoning, spec §7.2):
    # val_loss == evaluate(x[split:]) and loss == evaluate(x[:split]),
    # split = floor(101 * (1 - 0.2)) = 80.
    spec = [
        ("Dense", {"units": 6, "activation": "tanh"}),
        ("Dense", {"units": 3, "activation": "softmax"}),
    ]
    x, y = _xy(101, seed=5)
    km, rm = twin_models(kx, keras_ref, spec, (8,), seed=0)
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model, lr=0.0)
        h = model.fit(x, y, batch_size=32, validation_split=0.2, shuffle=shuffle, verbose=0)
        assert h.params["steps"] == 3  # ceil(80 / 32)
        head = model.evaluate(x[:80], y[:80], verbose=0, return_dict=True)
        tail = model.evaluate(x[80:], y[80:], verbose=0, return_dict=True)
        np.testing.assert_allclose(h.history["val_loss"][0], tail["loss"], rtol=1e-5)
        np.testing.assert_allclose(h.history["val_accuracy"][0], tail["accuracy"], rtol=1e-6)
        np.testing.assert_allclose(h.history["loss"][0], head["loss"], rtol=1e-5)
        np.testing.assert_allclose(h.history["accuracy"][0], head["accuracy"], rtol=1e-6)
        # The tail is distinguishable: its loss differs from the head's.
        assert abs(tail["loss"] - head["loss"]) > 1e-3


def test_validation_data_matches_evaluate(kx):
    x, y = _xy(64)
    xv, yv = _xy(30, seed=9)
    km = build_model(kx, BN_SPEC, (8,))
    _compile(kx, km)
    h = km.fit(x, y, epochs=2, batch_size=16, validation_data=(xv, yv), verbose=0)
    # val_* of the last epoch = evaluate with the final weights, inference mode (spec §6.4).
    ev = km.evaluate(xv, yv, verbose=0, return_dict=True)
    np.testing.assert_allclose(h.history["val_loss"][-1], ev["loss"], rtol=1e-5)
    np.testing.assert_allclose(h.history["val_accuracy"][-1], ev["accuracy"], rtol=1e-6)


def test_epoch_loss_is_sample_weighted_mean_of_batch_losses(kx):
    # spec §6.4: epoch loss = sum(n_b * L_b) / sum(n_b), with L_b the batch loss before the
    # update. With learning_rate=0 and no BN, L_b = evaluate on that batch.
    spec = [("Dense", {"units": 3, "activation": "softmax"})]
    x, y = _xy(50, seed=2)
    km = build_model(kx, spec, (8,))
    _compile(kx, km, lr=0.0, metrics=())
    batch_logs = []
    cb = kx.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: batch_logs.append(float(logs["loss"]))
    )
    h = km.fit(x, y, batch_size=16, shuffle=False, verbose=0, callbacks=[cb])
    per_batch = [km.evaluate(x[i : i + 16], y[i : i + 16], verbose=0) for i in range(0, 50, 16)]
    sizes = [16, 16, 16, 2]
    running = np.cumsum(np.multiply(per_batch, sizes)) / np.cumsum(sizes)
    np.testing.assert_allclose(batch_logs, running, rtol=1e-5)
    np.testing.assert_allclose(h.history["loss"][0], running[-1], rtol=1e-5)


# --------------------------------------------------------------------------------------------
# Callbacks
# --------------------------------------------------------------------------------------------


def _recording_callback(lib, events):
    return lib.callbacks.LambdaCallback(
        on_train_begin=lambda logs: events.append(("train_begin",)),
        on_train_end=lambda logs: events.append(("train_end", sorted(logs or {}))),
        on_epoch_begin=lambda epoch, logs: events.append(("epoch_begin", epoch)),
        on_epoch_end=lambda epoch, logs: events.append(("epoch_end", epoch, sorted(logs))),
        on_train_batch_begin=lambda batch, logs: events.append(("batch_begin", batch)),
        on_train_batch_end=lambda batch, logs: events.append(("batch_end", batch, sorted(logs))),
    )


def test_lambda_callback_hooks_match_keras(kx, keras_ref):
    x, y = _xy(70)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    seqs = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model)
        events = []
        model.fit(
            x,
            y,
            epochs=2,
            batch_size=32,
            validation_split=0.2,
            verbose=0,
            callbacks=[_recording_callback(lib, events)],
        )
        seqs.append(events)
    # 0-based epochs and batches; 56 training samples -> 2 batches per epoch.
    assert seqs[1][:3] == [("train_begin",), ("epoch_begin", 0), ("batch_begin", 0)]
    assert seqs[0] == seqs[1]


def test_callback_subclass_sees_model_params_and_can_stop(kx, keras_ref):
    x, y = _xy(40)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    out = []
    for lib, model in ((kx, km), (keras_ref, rm)):

        class Stopper(lib.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seen_model = self.model
                self.seen_params = dict(self.params)

            def on_epoch_end(self, epoch, logs=None):
                self.last_logs = dict(logs)
                if epoch == 1:
                    self.model.stop_training = True

        cb = Stopper()
        _compile(lib, model)
        h = model.fit(x, y, epochs=10, batch_size=16, verbose=0, callbacks=[cb])
        assert cb.seen_model is model
        out.append((cb.seen_params, sorted(cb.last_logs), list(h.epoch)))
    assert out[0] == out[1]
    assert out[0][2] == [0, 1]


def test_early_stopping_patience_and_restore_by_hand(kx, keras_ref):
    # min_delta=10 makes every epoch after the first a non-improvement (spec §7.10): best is
    # epoch 0, wait reaches patience=2 at epoch 2 -> history has 3 epochs, stopped_epoch 2,
    # and restore_best_weights puts back the weights from the end of epoch 0.
    x, y = _xy(64)
    for lib in (keras_ref, kx):
        model = build_model(lib, BN_SPEC, (8,))
        _compile(lib, model)
        snaps = []
        snap = lib.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs, m=model, s=snaps: s.append(m.get_weights())
        )
        es = lib.callbacks.EarlyStopping(
            monitor="loss", min_delta=10.0, patience=2, restore_best_weights=True
        )
        h = model.fit(x, y, epochs=10, batch_size=16, verbose=0, callbacks=[snap, es])
        assert list(h.epoch) == [0, 1, 2], lib.__name__
        assert es.stopped_epoch == 2
        assert len(snaps) == 3
        assert_weights_close(model.get_weights(), snaps[0], rtol=0, atol=0, what="restored")
        assert (
            max(np.abs(np.asarray(a) - b).max() for a, b in zip(snaps[2], snaps[0], strict=True))
            > 0
        )


def test_early_stopping_mode_max_on_loss_stops_after_first_decrease(kx):
    # mode='max' on a decreasing loss: epoch 1 is not an improvement, patience 0 -> stop there.
    x, y = _xy(64)
    km = build_model(kx, BN_SPEC, (8,))
    _compile(kx, km)
    es = kx.callbacks.EarlyStopping(monitor="loss", mode="max", patience=0)
    h = km.fit(x, y, epochs=10, batch_size=16, shuffle=False, verbose=0, callbacks=[es])
    losses = h.history["loss"]
    assert losses[1] < losses[0]  # plain SGD on this data decreases the loss
    assert list(h.epoch) == [0, 1]


def test_early_stopping_on_val_loss_matches_keras(kx, keras_ref):
    # 30% of the training labels are noise, so val_loss falls for a while and then turns up
    # (in Keras: best at epoch 9, stop at epoch 11 with patience 2; the decisive val_loss
    # steps are >= 0.5% apart). The epoch at which Keras stops is the expectation.
    rng = np.random.default_rng(0)
    xa, ya = _xy(260, seed=3)
    noisy = ya.copy()
    flip = rng.random(260) < 0.3
    noisy[flip] = np.eye(3, dtype=np.float32)[rng.integers(0, 3, int(flip.sum()))]
    x, y, xv, yv = xa[:200], noisy[:200], xa[200:], ya[200:]
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    res = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model, lr=0.1, momentum=0.5)
        es = lib.callbacks.EarlyStopping(monitor="val_loss", patience=2)
        h = model.fit(
            x,
            y,
            epochs=40,
            batch_size=16,
            shuffle=False,
            verbose=0,
            validation_data=(xv, yv),
            callbacks=[es],
        )
        res.append((list(h.epoch), es.stopped_epoch, h.history))
    assert 5 < len(res[1][0]) < 40, "oracle run did not stop early after improving"
    assert res[0][:2] == res[1][:2]
    counts = {"accuracy": 200, "val_accuracy": 60}
    assert_history_close(res[0][2], res[1][2], rtol=1e-3, counts=counts)


def test_terminate_on_nan_matches_keras(kx, keras_ref, capfd):
    spec = [("Dense", {"units": 4, "activation": "relu"}), ("Dense", {"units": 1})]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 8)).astype(np.float32)
    y = (x @ rng.standard_normal((8, 1))).astype(np.float32)
    km, rm = twin_models(kx, keras_ref, spec, (8,), seed=0)
    res = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        model.compile(optimizer=lib.optimizers.SGD(1e4), loss="mse")
        batches = []
        rec = lib.callbacks.LambdaCallback(
            on_train_batch_end=lambda batch, logs, b=batches: b.append(batch)
        )
        h = model.fit(
            x,
            y,
            epochs=5,
            batch_size=8,
            shuffle=False,
            verbose=0,
            callbacks=[rec, lib.callbacks.TerminateOnNaN()],
        )
        res.append((list(h.epoch), batches, h.history["loss"]))
    (ep, batches, loss), (rep, rbatches, _) = res
    assert rep == [0] and len(rbatches) < 25  # the oracle did terminate inside epoch 0
    assert ep == rep
    assert batches == rbatches
    assert not np.isfinite(loss[0])
    assert "Invalid loss, terminating training" in capfd.readouterr().out


# --------------------------------------------------------------------------------------------
# Progress output (spec §7.6)
# --------------------------------------------------------------------------------------------

_NUM = r"-?\d+\.\d{4}(?:e[+-]\d+)?"
_STEP_TIME = r"\d+(?:us|ms|s)/step"


def _fmt(v):
    return f"{v:.4f}" if v > 1e-3 else f"{v:.4e}"


def _fit_for_output(lib, model, epochs, verbose):
    x, y = _xy(70)
    _compile(lib, model)
    return model.fit(
        x, y, epochs=epochs, batch_size=32, validation_split=0.2, verbose=verbose, shuffle=False
    )


@pytest.mark.parametrize("epochs", [1, 2])
def test_verbose_2_lines(epochs, kx, capfd):
    km = build_model(kx, BN_SPEC, (8,))
    capfd.readouterr()
    h = _fit_for_output(kx, km, epochs, 2)
    out = capfd.readouterr().out
    assert "\x1b[" not in out, "verbose=2 prints no ANSI codes"
    assert "\r" not in out and "━" not in out
    lines = [line for line in out.split("\n") if line.strip()]
    expected_count = 2 * epochs if epochs > 1 else 1
    assert len(lines) == expected_count, lines
    pattern = re.compile(
        rf"2/2 - \d+s - {_STEP_TIME} - accuracy: ({_NUM}) - loss: ({_NUM})"
        rf" - val_accuracy: ({_NUM}) - val_loss: ({_NUM})"
    )
    epoch_lines = lines[1::2] if epochs > 1 else lines
    if epochs > 1:
        assert lines[0::2] == [f"Epoch {i + 1}/{epochs}" for i in range(epochs)]
    for i, line in enumerate(epoch_lines):
        m = pattern.fullmatch(line)
        assert m, f"verbose=2 line does not match the Keras 3 format: {line!r}"
        want = [h.history[k][i] for k in ("accuracy", "loss", "val_accuracy", "val_loss")]
        assert list(m.groups()) == [_fmt(v) for v in want]


@pytest.mark.parametrize("epochs", [1, 2])
def test_verbose_1_progress_bar(epochs, kx, capfd):
    km = build_model(kx, BN_SPEC, (8,))
    capfd.readouterr()
    h = _fit_for_output(kx, km, epochs, 1)
    raw = capfd.readouterr().out
    assert "━" in raw
    assert ("Epoch 1/" in raw) == (epochs > 1)
    lines = [line for line in final_lines(raw) if line]
    if epochs > 1:
        assert [line for line in lines if line.startswith("Epoch")] == [
            f"Epoch {i + 1}/{epochs}" for i in range(epochs)
        ]
    bars = [line for line in lines if not line.startswith("Epoch")]
    assert len(bars) == epochs, lines
    pattern = re.compile(
        rf"2/2 ━{{20}} \d+s {_STEP_TIME} - accuracy: ({_NUM}) - loss: ({_NUM})"
        rf" - val_accuracy: ({_NUM}) - val_loss: ({_NUM})"
    )
    for i, line in enumerate(bars):
        m = pattern.fullmatch(line)
        assert m, f"final verbose=1 line does not match the Keras 3 format: {line!r}"
        want = [h.history[k][i] for k in ("accuracy", "loss", "val_accuracy", "val_loss")]
        assert list(m.groups()) == [_fmt(v) for v in want]


def test_verbose_auto_is_progress_bar_and_zero_is_silent(kx, capfd):
    km = build_model(kx, BN_SPEC, (8,))
    x, y = _xy(40)
    _compile(kx, km)
    capfd.readouterr()
    km.fit(x, y, verbose=0)
    km.evaluate(x, y, verbose=0)
    km.predict(x, verbose=0)
    assert capfd.readouterr().out == ""
    km.fit(x, y)  # verbose="auto" -> 1 in Keras 3
    assert "━" in strip_ansi(capfd.readouterr().out)


def test_evaluate_and_predict_verbose_lines(kx, capfd):
    km = build_model(kx, BN_SPEC, (8,))
    x, y = _xy(70)
    _compile(kx, km)
    capfd.readouterr()
    res = km.evaluate(x, y, verbose=2, return_dict=True)
    out = capfd.readouterr().out.strip()
    m = re.fullmatch(rf"3/3 - \d+s - {_STEP_TIME} - accuracy: ({_NUM}) - loss: ({_NUM})", out)
    assert m, out
    assert list(m.groups()) == [_fmt(res["accuracy"]), _fmt(res["loss"])]
    km.predict(x, verbose=2)
    out = capfd.readouterr().out.strip()
    assert re.fullmatch(rf"3/3 - \d+s - {_STEP_TIME}", out), out


# --------------------------------------------------------------------------------------------
# Seeds, threads, utils
# --------------------------------------------------------------------------------------------


def _seeded_run(kx, seed, x, y, shuffle=True):
    kx.utils.set_random_seed(seed)
    model = build_model(kx, BN_SPEC, (8,))
    w0 = [np.asarray(w) for w in model.get_weights()]
    _compile(kx, model, momentum=0.9)
    model.fit(x, y, epochs=2, batch_size=16, shuffle=shuffle, verbose=0)
    return w0, [np.asarray(w) for w in model.get_weights()]


def test_same_seed_same_initial_weights_and_training(kx):
    x, y = _xy(200)
    a0, a1 = _seeded_run(kx, 42, x, y)
    b0, b1 = _seeded_run(kx, 42, x, y)
    c0, _ = _seeded_run(kx, 43, x, y)
    for p, q in zip(a0 + a1, b0 + b1, strict=True):
        np.testing.assert_array_equal(p, q)
    assert not np.array_equal(a0[0], c0[0])


def test_num_threads_do_not_change_results(kx):
    import kerox

    original = kerox.config.get_num_threads()
    x, y = make_data(3000, 24, "onehot", seed=4, classes=10)
    spec = [
        ("Dense", {"units": 256, "activation": "relu"}),
        ("BatchNormalization", {}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]
    results = []
    try:
        for n in (1, 2):
            kerox.config.set_num_threads(n)
            assert kerox.config.get_num_threads() == n
            kx.utils.set_random_seed(7)
            model = build_model(kx, spec, (24,))
            _compile(kx, model, momentum=0.9)
            h = model.fit(x, y, epochs=1, batch_size=64, verbose=0)
            results.append((model.get_weights(), h.history["loss"], model.predict(x, verbose=0)))
            # With two threads, fit's steps may run on one or both (adaptive width, a choice
            # that cannot change results): every one of the 47 steps is counted once.
            one, both = model._engine.thread_widths()
            adaptive = os.environ.get("KEROX_ADAPTIVE_THREADS", "").strip() != "0"
            assert (one + both) == (47 if n == 2 and adaptive else 0), (n, one, both)
    finally:
        kerox.config.set_num_threads(original)
    (w1, l1, p1), (w2, l2, p2) = results
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert l1 == l2
    np.testing.assert_array_equal(p1, p2)


@pytest.mark.parametrize(
    "labels,num_classes",
    [([0, 2, 1, 2], None), ([0, 2, 1, 2], 5), ([[1], [0], [3]], None), (np.arange(6) % 3, 3)],
)
def test_to_categorical_matches_keras(labels, num_classes, kx, keras_ref):
    got = kx.utils.to_categorical(labels, num_classes=num_classes)
    want = keras_ref.utils.to_categorical(labels, num_classes=num_classes)
    assert isinstance(got, np.ndarray)
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype


# --------------------------------------------------------------------------------------------
# Initializers (spec §2.3): distributions by hand, seeding behaviour
# --------------------------------------------------------------------------------------------

FAN_IN, FAN_OUT = 400, 600
_SHAPE = (FAN_IN, FAN_OUT)


def _kernel(kx, init):
    model = kx.Sequential([kx.Input((FAN_IN,)), kx.layers.Dense(FAN_OUT, kernel_initializer=init)])
    return np.asarray(model.get_weights()[0], dtype=np.float64)


def _uniform_limit(kind):
    return {
        "glorot_uniform": np.sqrt(6 / (FAN_IN + FAN_OUT)),
        "he_uniform": np.sqrt(6 / FAN_IN),
        "lecun_uniform": np.sqrt(3 / FAN_IN),
    }[kind]


def _trunc_std(kind):
    # Resulting std of the truncated normals = sqrt(scale / n) (spec §2.3).
    return {
        "glorot_normal": np.sqrt(2 / (FAN_IN + FAN_OUT)),
        "he_normal": np.sqrt(2 / FAN_IN),
        "lecun_normal": np.sqrt(1 / FAN_IN),
    }[kind]


@pytest.mark.parametrize("kind", ["glorot_uniform", "he_uniform", "lecun_uniform"])
def test_uniform_variance_scaling_initializers(kind, kx):
    w = _kernel(kx, kind)
    limit = _uniform_limit(kind)
    assert np.abs(w).max() <= limit * (1 + 1e-6)
    assert np.abs(w).max() > 0.999 * limit
    np.testing.assert_allclose(w.std(), limit / np.sqrt(3), rtol=0.01)
    assert abs(w.mean()) < 0.01 * limit


@pytest.mark.parametrize("kind", ["glorot_normal", "he_normal", "lecun_normal"])
def test_truncated_variance_scaling_initializers(kind, kx):
    w = _kernel(kx, kind)
    std = _trunc_std(kind)
    np.testing.assert_allclose(w.std(), std, rtol=0.01)
    # truncated at 2 * stddev_param, stddev_param = std / 0.87962566103423978
    cut = 2 * std / 0.87962566103423978
    assert np.abs(w).max() <= cut * (1 + 1e-5)
    assert np.abs(w).max() > 0.99 * cut


def test_initializer_classes_and_constants(kx):
    I = kx.initializers  # noqa: E741
    w = _kernel(kx, I.RandomNormal(mean=0.0, stddev=0.05, seed=1))
    np.testing.assert_allclose(w.std(), 0.05, rtol=0.01)
    assert np.abs(w).max() > 3 * 0.05  # not truncated
    w = _kernel(kx, I.RandomUniform(minval=-0.05, maxval=0.05, seed=1))
    assert w.min() >= -0.05 and w.max() < 0.05 and w.max() > 0.0499
    w = _kernel(kx, I.TruncatedNormal(mean=0.0, stddev=0.05, seed=1))
    np.testing.assert_allclose(w.std(), 0.05 * 0.87962566103423978, rtol=0.01)
    assert np.abs(w).max() <= 0.1 * (1 + 1e-5)
    np.testing.assert_array_equal(_kernel(kx, "zeros"), 0.0)
    np.testing.assert_array_equal(_kernel(kx, "ones"), 1.0)
    np.testing.assert_array_equal(_kernel(kx, I.Zeros()), 0.0)
    np.testing.assert_array_equal(_kernel(kx, I.Ones()), 1.0)
    np.testing.assert_allclose(_kernel(kx, I.Constant(0.25)), 0.25)
    w = _kernel(kx, I.GlorotUniform(seed=3))
    assert np.abs(w).max() <= _uniform_limit("glorot_uniform") * (1 + 1e-6)
    w = _kernel(kx, I.HeNormal(seed=3))
    np.testing.assert_allclose(w.std(), _trunc_std("he_normal"), rtol=0.01)


def test_seeded_initializers_are_reproducible(kx, keras_ref):
    # An initializer seeded with an int gives the same values on every model built from a new
    # object with the same seed; a different seed gives different values (spec §2.3).
    for lib in (keras_ref, kx):
        I = lib.initializers  # noqa: E741

        def k(init, lib=lib):
            m = lib.Sequential([lib.Input((5,)), lib.layers.Dense(7, kernel_initializer=init)])
            return np.asarray(m.get_weights()[0])

        np.testing.assert_array_equal(k(I.GlorotUniform(seed=11)), k(I.GlorotUniform(seed=11)))
        np.testing.assert_array_equal(k(I.RandomNormal(seed=11)), k(I.RandomNormal(seed=11)))
        assert not np.array_equal(k(I.GlorotUniform(seed=11)), k(I.GlorotUniform(seed=12)))


def test_bias_and_bn_initializers(kx):
    m = kx.Sequential(
        [
            kx.Input((3,)),
            kx.layers.Dense(4, bias_initializer="ones"),
            kx.layers.BatchNormalization(
                gamma_initializer="zeros",
                beta_initializer="ones",
                moving_mean_initializer=kx.initializers.Constant(0.5),
                moving_variance_initializer=kx.initializers.Constant(2.0),
            ),
        ]
    )
    w = [np.asarray(a) for a in m.get_weights()]
    np.testing.assert_array_equal(w[1], 1.0)
    np.testing.assert_array_equal(w[2], 0.0)
    np.testing.assert_array_equal(w[3], 1.0)
    np.testing.assert_array_equal(w[4], 0.5)
    np.testing.assert_array_equal(w[5], 2.0)


# --------------------------------------------------------------------------------------------
# Activations and losses as single forward computations (exact formulas by hand)
# --------------------------------------------------------------------------------------------

_ACTS = ["relu", "softmax", "sigmoid", "tanh", "linear", "elu", "selu", "gelu", "softplus"]
_ACTS += ["silu", "swish", None]


@pytest.mark.parametrize("activation", _ACTS)
def test_activation_forward_matches_keras(activation, kx, keras_ref):
    spec = [("Dense", {"units": 6, "activation": activation})]
    km, rm = twin_models(kx, keras_ref, spec, (5,), seed=0)
    x = 2.0 * np.random.default_rng(1).standard_normal((40, 5)).astype(np.float32)
    np.testing.assert_allclose(
        km.predict(x, verbose=0), rm.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    spec = [("Activation", {"activation": activation or "linear"})]
    km, rm = twin_models(kx, keras_ref, spec, (5,), seed=0)
    np.testing.assert_allclose(
        km.predict(x, verbose=0), rm.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_saturated_crossentropy_values(kx, keras_ref):
    # spec §5.3/§5.6: logits [20, 0, 0], true class 1. from_logits=True gives exactly 20.0.
    # A softmax output gives -log(1e-7) = 16.1181 on JAX/torch Keras (clipped probabilities)
    # and 20.0 on the TensorFlow backend (logits recovered); both are Keras's numbers.
    x = np.array([[1.0]], np.float32)
    y = np.array([[0.0, 1.0, 0.0]], np.float32)
    kernel = [np.array([[20.0, 0.0, 0.0]], np.float32), np.zeros(3, np.float32)]
    for lib in (keras_ref, kx):
        m = lib.Sequential([lib.Input((1,)), lib.layers.Dense(3, activation="softmax")])
        m.set_weights(kernel)
        m.compile(optimizer="sgd", loss="categorical_crossentropy")
        v = m.evaluate(x, y, verbose=0)
        assert np.isclose(v, -np.log(1e-7), rtol=1e-4) or np.isclose(v, 20.0, rtol=1e-5), v
        m2 = lib.Sequential([lib.Input((1,)), lib.layers.Dense(3)])
        m2.set_weights(kernel)
        m2.compile(optimizer="sgd", loss=lib.losses.CategoricalCrossentropy(from_logits=True))
        np.testing.assert_allclose(m2.evaluate(x, y, verbose=0), 20.0, rtol=1e-5)


def test_loss_values_by_hand(kx):
    # spec §5.2, §5.3: MSE [[1,2],[3,4]] vs 0 -> 7.5; CCE label smoothing 0.1,
    # y=[0,1,0], p=[0.2,0.7,0.1] -> 0.46330.
    lin = kx.Sequential([kx.Input((1,)), kx.layers.Dense(2, use_bias=False)])
    lin.set_weights([np.zeros((1, 2), np.float32)])
    lin.compile(optimizer="sgd", loss="mse")
    v = lin.evaluate(np.ones((2, 1), np.float32), np.array([[1, 2], [3, 4]], np.float32), verbose=0)
    np.testing.assert_allclose(v, 7.5, rtol=1e-6)

    sm = kx.Sequential([kx.Input((1,)), kx.layers.Dense(3, activation="softmax", use_bias=False)])
    sm.set_weights([np.log(np.array([[0.2, 0.7, 0.1]], np.float32))])
    sm.compile(optimizer="sgd", loss=kx.losses.CategoricalCrossentropy(label_smoothing=0.1))
    v = sm.evaluate(np.ones((1, 1), np.float32), np.array([[0, 1, 0]], np.float32), verbose=0)
    np.testing.assert_allclose(v, 0.46330, rtol=1e-4)


def test_sgd_single_steps_by_hand(kx):
    # One weight w, x = 1, MSE against the target w - 0.5: loss = (w - t)^2, grad = 2 * 0.5 = 1.
    def step(opt, n):
        m = kx.Sequential([kx.Input((1,)), kx.layers.Dense(1, use_bias=False)])
        m.set_weights([np.ones((1, 1), np.float32)])
        m.compile(optimizer=opt, loss="mse")
        x = np.ones((1, 1), np.float32)
        ws = []
        for _ in range(n):
            w = float(np.asarray(m.get_weights()[0])[0, 0])
            m.train_on_batch(x, np.array([[w - 0.5]], np.float32))
            ws.append(float(np.asarray(m.get_weights()[0])[0, 0]))
        return ws

    # nesterov, lr=0.1, momentum=0.9, g=1: m1=-0.1, w1=1-0.09-0.1=0.81;
    # m2=-0.19, w2=0.81-0.171-0.1=0.539 (spec §4.3 verified value).
    ws = step(kx.optimizers.SGD(0.1, momentum=0.9, nesterov=True), 2)
    np.testing.assert_allclose(ws, [0.81, 0.539], rtol=1e-6)
    # momentum: w1 = 1 - 0.1 = 0.9; m2 = -0.19 -> w2 = 0.71
    ws = step(kx.optimizers.SGD(0.1, momentum=0.9), 2)
    np.testing.assert_allclose(ws, [0.9, 0.71], rtol=1e-6)
    # clipvalue 0.25: w -= 0.1 * 0.25 each step
    ws = step(kx.optimizers.SGD(0.1, clipvalue=0.25), 2)
    np.testing.assert_allclose(ws, [0.975, 0.95], rtol=1e-6)
    # weight decay 0.5 (decoupled, before the step): w = 1 - 1*0.5*0.1 = 0.95, then -0.1 -> 0.85
    ws = step(kx.optimizers.SGD(0.1, weight_decay=0.5), 1)
    np.testing.assert_allclose(ws, [0.85], rtol=1e-6)


def test_sgd_defaults_and_config(kx):
    opt = kx.optimizers.SGD()
    np.testing.assert_allclose(float(np.asarray(opt.learning_rate)), 0.01, rtol=1e-6)
    assert float(opt.momentum) == 0.0
    assert opt.nesterov is False
    assert opt.clipnorm is None and opt.clipvalue is None and opt.global_clipnorm is None


# --------------------------------------------------------------------------------------------
# Namespaces and object forms users write in tf.keras scripts
# --------------------------------------------------------------------------------------------


def test_namespace_aliases(kx, keras_ref):
    import kerox
    from kerox.keras.callbacks import Callback, EarlyStopping, History, LambdaCallback
    from kerox.keras.layers import Activation, BatchNormalization, Dense, Dropout, Flatten
    from kerox.keras.models import Sequential
    from kerox.keras.optimizers import SGD

    assert kerox.keras is kx
    assert Sequential is kx.Sequential and keras_ref.models.Sequential is keras_ref.Sequential
    assert kx.layers.Input is kx.Input and keras_ref.layers.Input is keras_ref.Input
    assert SGD is kx.optimizers.SGD
    assert Dense is kx.layers.Dense and BatchNormalization is kx.layers.BatchNormalization
    assert Activation and Dropout and Flatten and Callback and EarlyStopping and LambdaCallback
    assert issubclass(History, Callback) and issubclass(EarlyStopping, Callback)
    x, y = _xy(20)
    model = build_model(kx, BN_SPEC, (8,))
    _compile(kx, model)
    assert isinstance(model.fit(x, y, verbose=0), History)


def test_metric_objects_in_compile_match_keras(kx, keras_ref):
    x, y = _xy(60)
    km, rm = twin_models(kx, keras_ref, BN_SPEC, (8,), seed=0)
    hists = []
    for lib, model in ((kx, km), (keras_ref, rm)):
        _compile(lib, model, metrics=(lib.metrics.CategoricalAccuracy(),))
        hists.append(model.fit(x, y, batch_size=16, shuffle=False, verbose=0).history)
    assert list(hists[1]) == ["categorical_accuracy", "loss"]
    assert_history_close(hists[0], hists[1], counts={"categorical_accuracy": 60})


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "elu", "selu", "gelu"])
def test_activation_functions_as_objects(name, kx, keras_ref):
    spec_k = [("Dense", {"units": 4, "activation": getattr(kx.activations, name)})]
    spec_r = [("Dense", {"units": 4, "activation": getattr(keras_ref.activations, name)})]
    km = build_model(kx, spec_k, (3,))
    rm = build_model(keras_ref, spec_r, (3,))
    rm.set_weights(km.get_weights())
    x = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    np.testing.assert_allclose(
        km.predict(x, verbose=0), rm.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize(
    "name,kind",
    [
        ("categorical_crossentropy", "probs"),
        ("sparse_categorical_crossentropy", "sparse"),
        ("binary_crossentropy", "binary"),
        ("mean_squared_error", "probs"),
    ],
)
def test_loss_functions_per_sample_match_keras(name, kind, kx, keras_ref):
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    if kind == "probs":
        t = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    elif kind == "sparse":
        t = rng.integers(0, 4, 6)
    else:
        t = rng.integers(0, 2, (6, 4)).astype(np.float32)
    got = np.asarray(getattr(kx.losses, name)(t, p))
    want = np.asarray(getattr(keras_ref.losses, name)(t, p))
    assert got.shape == want.shape == (6,)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "cls,kw,kind",
    [
        ("CategoricalCrossentropy", {}, "probs"),
        ("CategoricalCrossentropy", {"label_smoothing": 0.2}, "probs"),
        ("CategoricalCrossentropy", {"from_logits": True}, "logits"),
        ("SparseCategoricalCrossentropy", {}, "sparse"),
        ("SparseCategoricalCrossentropy", {"from_logits": True}, "sparse_logits"),
        ("BinaryCrossentropy", {}, "binary"),
        ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}, "binary_logits"),
        ("MeanSquaredError", {}, "probs"),
    ],
)
def test_loss_objects_reduce_like_keras(cls, kw, kind, kx, keras_ref):
    rng = np.random.default_rng(1)
    if kind in ("probs", "sparse", "binary"):
        p = rng.dirichlet(np.ones(4), size=6).astype(np.float32)
    else:
        p = (2 * rng.standard_normal((6, 4))).astype(np.float32)
    if kind in ("probs", "logits"):
        t = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 6)]
    elif kind.startswith("sparse"):
        t = rng.integers(0, 4, 6)
    else:
        t = rng.integers(0, 2, (6, 4)).astype(np.float32)
    got = getattr(kx.losses, cls)(**kw)(t, p)
    want = getattr(keras_ref.losses, cls)(**kw)(t, p)
    np.testing.assert_allclose(float(np.asarray(got)), float(np.asarray(want)), rtol=1e-5)
