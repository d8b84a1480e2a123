"""``keras.layers.Normalization`` (axis=-1 on 2-D inputs) against real Keras 3 (JAX backend).

Every expected value comes from real Keras doing the same thing (adapting on the same data,
predicting, training a twin model with identical start weights and ``shuffle=False``, saving
and loading), or from a NumPy formula written here; never from kerox's own output. Sizes are
tiny to keep the file fast on a shared 2-core machine.
"""

from __future__ import annotations

import kerox
import numpy as np
import pytest
from conftest import RTOL, assert_history_close, assert_weights_close

D = 5
N = 200  # 6 batches of 32 + 8 (the last batch is short)
BATCH = 32
# Adapted statistics: float32 rounding, with a little room for a different reduction order.
STAT_RTOL, STAT_ATOL = 2e-6, 1e-6
# Inference from identical statistics.
P_RTOL, P_ATOL = 1e-5, 1e-6


def _data(n=N, d=D, seed=0, dtype=np.float32):
    fixed = np.random.default_rng(12345)
    scale = fixed.uniform(0.5, 20.0, d)
    shift = fixed.uniform(-50.0, 50.0, d)
    x = np.random.default_rng(seed).standard_normal((n, d)) * scale + shift
    return x.astype(dtype)


def _targets(x, seed=1, k=1):
    rng = np.random.default_rng(seed)
    xs = (x - x.mean(0)) / x.std(0)
    w = rng.standard_normal((x.shape[1], k)) / np.sqrt(x.shape[1])
    return (np.tanh(xs @ w) + 0.1 * rng.standard_normal((len(x), k))).astype(np.float32)


def _batches(x, size=BATCH):
    return [x[i : i + size] for i in range(0, len(x), size)]


def _stats(layer):
    mean, var, *_ = layer.get_weights()
    return [mean, var]


def _ref_normalize(x, mean, var, invert=False):
    """Keras's formula in float64: (x - mean) / max(sqrt(var), 1e-7), or its inverse."""
    x = np.asarray(x, np.float64)
    mean = np.asarray(mean, np.float64)
    den = np.maximum(np.sqrt(np.asarray(var, np.float64)), 1e-7)
    return mean + x * den if invert else (x - mean) / den


# --------------------------------------------------------------------------------------------
# 1. adapt
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adapt_numpy_array(kx, keras_ref, dtype):
    x = _data(dtype=dtype)
    k, r = kx.layers.Normalization(), keras_ref.layers.Normalization()
    k.adapt(x)
    r.adapt(x)
    kw, rw = k.get_weights(), r.get_weights()
    assert [w.dtype for w in kw] == [w.dtype for w in rw] == [np.float32, np.float32, np.int32]
    assert_weights_close(_stats(k), _stats(r), rtol=STAT_RTOL, atol=STAT_ATOL, what="adapt")
    # Independent reference: the exact (float64) statistics; float64 data rounds them once.
    x64 = x.astype(np.float64)
    tol = 2e-7 if dtype == np.float64 else 2e-6
    np.testing.assert_allclose(kw[0], x64.mean(0).astype(np.float32), rtol=tol, atol=0)
    np.testing.assert_allclose(kw[1], x64.var(0).astype(np.float32), rtol=5 * tol, atol=0)
    assert int(kw[2]) == int(rw[2]) == 0  # Keras never updates `count`


def test_adapt_float64_is_computed_in_float64(kx, keras_ref):
    # Large offset, tiny spread: a float32 computation of the variance would be far off.
    rng = np.random.default_rng(3)
    x = 1e4 + rng.standard_normal((N, D)) * 1e-2
    k, r = kx.layers.Normalization(), keras_ref.layers.Normalization()
    k.adapt(x)
    r.adapt(x)
    assert_weights_close(_stats(k), _stats(r), rtol=1e-6, atol=0, what="float64 adapt")
    np.testing.assert_allclose(k.get_weights()[1], x.var(0).astype(np.float32), rtol=1e-6)


@pytest.fixture
def keras_iterables(keras_ref, monkeypatch):
    """Real Keras, able to adapt on iterables and PyDatasets without TensorFlow.

    Keras's ``adapt`` first asks ``isinstance(data, tf.data.Dataset)``, which imports
    TensorFlow (not installed here); a stand-in ``tf`` whose ``Dataset`` matches nothing lets
    Keras's own batch-combining code run unchanged.
    """
    import types

    from keras.src.layers.preprocessing import normalization as mod

    no_tf = types.SimpleNamespace(data=types.SimpleNamespace(Dataset=type("NoTF", (), {})))
    monkeypatch.setattr(mod, "tf", no_tf)
    return keras_ref


def _running_stats(batches):
    """Keras's running combination of per-batch statistics, in float64 (independent code)."""
    mean = var = None
    count = 0
    for b in batches:
        b = np.asarray(b, np.float64)
        bm, bv, n = b.mean(0), b.var(0), len(b)
        if mean is None:
            mean, var = np.zeros_like(bm), np.zeros_like(bv)
        count += n
        w = n / count
        new = mean * (1 - w) + bm * w
        var = (var + (mean - new) ** 2) * (1 - w) + (bv + (bm - new) ** 2) * w
        mean = new
    return mean, var


def _adapt_both(kx, keras_ref, kerox_data, keras_data):
    x = _data()
    k, r = kx.layers.Normalization(), keras_ref.layers.Normalization()
    k.adapt(kerox_data)
    r.adapt(keras_data)
    assert_weights_close(_stats(k), _stats(r), rtol=STAT_RTOL, atol=STAT_ATOL, what="adapt")
    mean, var = _running_stats(_batches(x))
    np.testing.assert_allclose(k.get_weights()[0], mean, rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(k.get_weights()[1], var, rtol=2e-5, atol=1e-6)
    # ... which are the whole-array statistics, up to float32 rounding.
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(var, x.astype(np.float64).var(0), rtol=1e-10)
    return k


def test_adapt_list_of_batches(kx, keras_iterables):
    x = _data()
    _adapt_both(kx, keras_iterables, _batches(x), _batches(x))


def test_adapt_generator_of_tuples(kx, keras_iterables):
    x = _data()
    y = _targets(x)

    def gen():
        for i in range(0, N, BATCH):
            yield x[i : i + BATCH], y[i : i + BATCH]

    _adapt_both(kx, keras_iterables, gen(), gen())


def test_adapt_kerox_dataset(kx, keras_iterables):
    x = _data()
    ds = kerox.data.Dataset.from_tensor_slices(x).batch(BATCH)
    # Keras needs tf.data for datasets; it adapts on the same batches as a list.
    _adapt_both(kx, keras_iterables, ds, _batches(x))
    ds_xy = kerox.data.Dataset.from_tensor_slices((x, _targets(x))).batch(BATCH)
    _adapt_both(kx, keras_iterables, ds_xy, _batches(x))


def test_adapt_pydataset(kx, keras_iterables):
    x = _data()
    y = _targets(x)

    def make(base):
        class Seq(base):
            def __len__(self):
                return (N + BATCH - 1) // BATCH

            def __getitem__(self, i):
                return x[i * BATCH : (i + 1) * BATCH], y[i * BATCH : (i + 1) * BATCH]

        return Seq()

    _adapt_both(
        kx, keras_iterables, make(kx.utils.PyDataset), make(keras_iterables.utils.PyDataset)
    )


def test_adapt_twice_replaces_statistics(kx, keras_ref):
    k, r = kx.layers.Normalization(), keras_ref.layers.Normalization()
    for seed in (0, 5):
        x = _data(seed=seed)
        k.adapt(x)
        r.adapt(x)
    assert_weights_close(_stats(k), _stats(r), rtol=STAT_RTOL, atol=STAT_ATOL)


# --------------------------------------------------------------------------------------------
# 2. inference
# --------------------------------------------------------------------------------------------


def _check_inference(kx, keras_ref, kwargs, adapt=True):
    x = _data()
    xt = _data(n=37, seed=9)
    k, r = kx.layers.Normalization(**kwargs), keras_ref.layers.Normalization(**kwargs)
    if adapt:
        k.adapt(x)
        r.adapt(x)
    km = kx.Sequential([kx.Input((D,)), k])
    rm = keras_ref.Sequential([keras_ref.Input((D,)), r])
    expected = rm.predict(xt, verbose=0)
    got = km.predict(xt, verbose=0)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=P_RTOL, atol=P_ATOL)
    called = np.asarray(k(xt))
    np.testing.assert_allclose(called, np.asarray(r(xt)), rtol=P_RTOL, atol=P_ATOL)
    # Independent of both: the formula, from Keras's statistics.
    if adapt:
        mean, var = _stats(r)
    else:
        mean, var = kwargs["mean"], kwargs["variance"]
    ref = _ref_normalize(xt, mean, var, kwargs.get("invert", False))
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4 * max(1.0, np.abs(ref).max()))
    return got


def test_predict_adapted(kx, keras_ref):
    out = _check_inference(kx, keras_ref, {})
    assert np.abs(out).max() < 10  # it really normalizes


def test_predict_invert(kx, keras_ref):
    _check_inference(kx, keras_ref, {"invert": True})


@pytest.mark.parametrize(
    "mean,variance",
    [
        ([1.0, -2.0, 30.0, 0.5, 7.0], [4.0, 0.25, 100.0, 2.0, 9.0]),
        ([1.0, -2.0, 30.0, 0.5, 7.0], [4.0, 0.0, 100.0, 2.0, 9.0]),  # a variance of 0
        (3.0, 16.0),  # scalars broadcast to every feature
        (0.0, 0.0),
    ],
    ids=["per_feature", "zero_variance", "scalar", "scalar_zero_variance"],
)
@pytest.mark.parametrize("invert", [False, True])
def test_predict_constants(kx, keras_ref, mean, variance, invert):
    _check_inference(
        kx, keras_ref, {"mean": mean, "variance": variance, "invert": invert}, adapt=False
    )


def test_predict_after_set_weights(kx, keras_ref):
    rng = np.random.default_rng(4)
    weights = [
        rng.uniform(-5, 5, D).astype(np.float32),
        rng.uniform(0.1, 9, D).astype(np.float32),
        np.array(0, np.int32),
    ]
    km = kx.Sequential([kx.Input((D,)), kx.layers.Normalization()])
    rm = keras_ref.Sequential([keras_ref.Input((D,)), keras_ref.layers.Normalization()])
    km.set_weights(weights)
    rm.set_weights(weights)
    # Keras keeps the statistics it cached at build time until `finalize_state()` (which
    # adapt and file loading call, set_weights does not): without this call Keras would still
    # use mean 0 / variance 1. kerox uses the weights it was given.
    rm.layers[0].finalize_state()
    xt = _data(n=20, seed=2)
    np.testing.assert_allclose(
        km.predict(xt, verbose=0), _ref_normalize(xt, weights[0], weights[1]), rtol=1e-5
    )
    np.testing.assert_allclose(
        km.predict(xt, verbose=0), rm.predict(xt, verbose=0), rtol=P_RTOL, atol=P_ATOL
    )
    assert_weights_close(km.get_weights(), rm.get_weights(), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# 3. training parity
# --------------------------------------------------------------------------------------------


def _dense_weights(shapes, seed):
    rng = np.random.default_rng(100 + seed)
    out = []
    for fan_in, units in shapes:
        limit = np.sqrt(6.0 / (fan_in + units))
        out.append(rng.uniform(-limit, limit, (fan_in, units)).astype(np.float32))
        out.append(rng.uniform(-0.05, 0.05, units).astype(np.float32))
    return out


def _optimizer(lib, name):
    if name == "sgd":
        return lib.optimizers.SGD(learning_rate=0.02, momentum=0.5)
    return lib.optimizers.Adam(learning_rate=0.003)


def _twin_fit(kx, keras_ref, build, x, y, optimizer, loss, epochs=2, validation=True):
    """Builds the model in both libraries with ``build(lib)``, fits, compares everything."""
    km, rm = build(kx), build(keras_ref)
    assert len(km.get_weights()) == len(rm.get_weights())
    rm.set_weights(km.get_weights())
    for m, lib in ((km, kx), (rm, keras_ref)):
        m.compile(optimizer=_optimizer(lib, optimizer), loss=loss, metrics=["mae"])
    norm_before = [
        [w.copy() for w in layer.get_weights()]
        for layer in km.layers
        if type(layer).__name__ == "Normalization"
    ]
    xv, yv = x[:40], y[:40]
    kw = dict(epochs=epochs, batch_size=16, shuffle=False, verbose=0)
    if validation:
        kw["validation_data"] = (xv, yv)
    hk = km.fit(x, y, **kw).history
    hr = rm.fit(x, y, **kw).history
    assert_history_close(hk, hr, rtol=RTOL, atol=1e-6)
    assert_weights_close(km.get_weights(), rm.get_weights(), rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(
        km.evaluate(xv, yv, verbose=0), rm.evaluate(xv, yv, verbose=0), rtol=RTOL, atol=1e-6
    )
    np.testing.assert_allclose(
        km.predict(xv, verbose=0), rm.predict(xv, verbose=0), rtol=RTOL, atol=1e-5
    )
    norm_after = [
        layer.get_weights() for layer in km.layers if type(layer).__name__ == "Normalization"
    ]
    for before, after in zip(norm_before, norm_after, strict=True):
        assert_weights_close(after, before, rtol=0, atol=0, what="Normalization weights")
    # The Dense layers did train.
    assert hk["loss"][-1] < hk["loss"][0]
    return km, rm


# Each optimizer and each loss once (Keras's compile time dominates the cost of a case).
@pytest.mark.parametrize("optimizer,loss", [("sgd", "mse"), ("adam", "mae")])
def test_fit_normalization_first(kx, keras_ref, optimizer, loss):
    x = _data(n=150)
    y = _targets(x, k=2)
    init = _dense_weights([(D, 8), (8, 2)], seed=0)

    def build(lib):
        norm = lib.layers.Normalization()
        norm.adapt(x)
        m = lib.Sequential(
            [lib.Input((D,)), norm, lib.layers.Dense(8, "relu"), lib.layers.Dense(2)]
        )
        if lib is kx:
            m.set_weights([*norm.get_weights(), *init])
        return m

    _twin_fit(kx, keras_ref, build, x, y, optimizer, loss)


@pytest.mark.parametrize(
    "mode,optimizer",
    [("adapted", "sgd"), ("adapted", "adam"), ("constants", "adam"), ("invert", "sgd")],
)
def test_fit_normalization_in_the_middle(kx, keras_ref, optimizer, mode):
    """Dense -> Normalization -> Dense: the gradient flows back through Normalization."""
    x = _data(n=150) / 20.0
    y = _targets(x)
    init = _dense_weights([(D, 6), (6, 1)], seed=1)
    # The first layer's outputs at the start weights (NumPy), to adapt on.
    h = np.tanh(x.astype(np.float64) @ init[0] + init[1]).astype(np.float32)
    if mode == "constants":
        kwargs = {"mean": h.mean(0).tolist(), "variance": h.var(0).tolist()}
    else:
        kwargs = {"invert": mode == "invert"}

    def build(lib):
        norm = lib.layers.Normalization(**kwargs)
        if mode != "constants":
            norm.adapt(h)
        m = lib.Sequential(
            [lib.Input((D,)), lib.layers.Dense(6, "tanh"), norm, lib.layers.Dense(1)]
        )
        if lib is kx:
            m.set_weights([*init[:2], *norm.get_weights(), *init[2:]])
        return m

    km, _ = _twin_fit(kx, keras_ref, build, x, y, optimizer, "mse")
    # The first Dense layer (upstream of Normalization) moved: the backward pass ran.
    assert max_abs(km.get_weights()[0] - init[0]) > 1e-3


def max_abs(a):
    return float(np.max(np.abs(a)))


# --------------------------------------------------------------------------------------------
# 4. weights, config, summary
# --------------------------------------------------------------------------------------------


def test_weights_layout_and_set_weights(kx, keras_ref):
    k, r = kx.layers.Normalization(), keras_ref.layers.Normalization()
    k.build((None, D))
    r.build((None, D))
    kw, rw = k.get_weights(), r.get_weights()
    assert [(w.shape, w.dtype) for w in kw] == [(w.shape, w.dtype) for w in rw]
    assert_weights_close(kw, rw, rtol=0, atol=0, what="initial weights")
    assert (
        [v.name for v in k.weights]
        == [v.name for v in r.weights]
        == [
            "mean",
            "variance",
            "count",
        ]
    )
    assert [v.trainable for v in k.weights] == [False, False, False]
    assert k.trainable_weights == [] and len(k.non_trainable_weights) == 3
    # Keras's list goes in and comes out unchanged.
    x = _data()
    r.adapt(x)
    k.set_weights(r.get_weights())
    assert_weights_close(k.get_weights(), r.get_weights(), rtol=0, atol=0)
    assert k.get_weights()[2].dtype == np.int32
    # A wrong shape is refused, as Keras refuses it.
    bad = [np.zeros(D + 1, np.float32), np.ones(D + 1, np.float32), np.array(0, np.int32)]
    with pytest.raises(ValueError):
        r.set_weights(bad)
    with pytest.raises(ValueError):
        k.set_weights(bad)
    # A constants layer has no weights in either library.
    kc = kx.layers.Normalization(mean=1.0, variance=2.0)
    rc = keras_ref.layers.Normalization(mean=1.0, variance=2.0)
    kc.build((None, D))
    rc.build((None, D))
    assert kc.get_weights() == rc.get_weights() == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"axis": -1, "invert": True, "name": "norm"},
        {"axis": 1},
        {"axis": [-1]},
        {"mean": [1.0, 2.0, 3.0, 4.0, 5.0], "variance": [1.0, 1.0, 2.0, 2.0, 0.0]},
        {"mean": 2.0, "variance": 3.0},
        {"mean": np.arange(D, dtype=np.float32), "variance": np.ones(D)},
    ],
)
def test_get_config(kx, keras_ref, kwargs):
    k = kx.layers.Normalization(**kwargs)
    r = keras_ref.layers.Normalization(**kwargs)
    kc, rc = k.get_config(), r.get_config()
    assert kc == rc
    assert isinstance(kc["axis"], tuple)
    # from_config round trip gives the same config.
    assert kx.layers.Normalization.from_config(kc).get_config() == rc


def test_summary_and_count_params(kx, keras_ref, capsys):
    x = _data()

    def build(lib, **kw):
        # Named layers: automatic names depend on how many layers earlier tests made.
        norm = lib.layers.Normalization(name="norm", **kw)
        if not kw:
            norm.adapt(x)
        return lib.Sequential([lib.Input((D,)), norm, lib.layers.Dense(3, name="fc")], name="s")

    for kw, n_norm in (({}, 2 * D + 1), ({"mean": 0.0, "variance": 1.0}, 0)):
        km, rm = build(kx, **kw), build(keras_ref, **kw)
        assert km.count_params() == rm.count_params() == n_norm + D * 3 + 3
        assert km.layers[0].count_params() == rm.layers[0].count_params() == n_norm
        km.summary()
        ks = capsys.readouterr().out
        rm.summary()
        rs = capsys.readouterr().out
        assert f"Non-trainable params: {n_norm} " in ks
        assert _summary_rows(ks) == _summary_rows(rs)


def _summary_rows(text):
    return [line for line in text.splitlines() if "params" in line or "(None" in line]


# --------------------------------------------------------------------------------------------
# 5. saving
# --------------------------------------------------------------------------------------------


def _saving_models(lib, x, invert=False):
    norm = lib.layers.Normalization(invert=invert, name="norm")
    norm.adapt(x)
    m = lib.Sequential(
        [
            lib.Input((D,)),
            norm,
            lib.layers.Dense(4, "relu", name="fc"),
            lib.layers.Normalization(
                mean=[0.5, 0.0, -1.0, 2.0], variance=[1.0, 4.0, 0.0, 2.0], name="cnorm"
            ),
            lib.layers.Dense(1, name="head"),
        ],
        name="seq",
    )
    return m


@pytest.mark.parametrize("invert", [False, True])
def test_keras_file_kerox_to_keras_and_back(kx, keras_ref, tmp_path, invert):
    x = _data()
    km = _saving_models(kx, x, invert)
    km.compile(optimizer="adam", loss="mse")
    km.fit(x[:64], _targets(x[:64]), epochs=1, batch_size=16, shuffle=False, verbose=0)
    xt = _data(n=30, seed=7)
    expected = km.predict(xt, verbose=0)
    path = tmp_path / "m.keras"
    km.save(path)
    rm = keras_ref.models.load_model(path)
    np.testing.assert_allclose(rm.predict(xt, verbose=0), expected, rtol=P_RTOL, atol=P_ATOL)
    assert_weights_close(rm.get_weights(), km.get_weights(), rtol=0, atol=0)
    assert rm.get_layer("cnorm").get_config() == km.get_layer("cnorm").get_config()
    # Keras writes it again; a kerox model loaded from it (never adapted here) predicts.
    path2 = tmp_path / "m2.keras"
    rm.save(path2)
    km2 = kx.models.load_model(path2)
    np.testing.assert_allclose(km2.predict(xt, verbose=0), expected, rtol=P_RTOL, atol=P_ATOL)
    assert km2.get_layer("norm").invert is invert


def test_keras_file_from_keras(kx, keras_ref, tmp_path):
    x = _data(seed=11)
    rm = _saving_models(keras_ref, x)
    xt = _data(n=30, seed=7)
    path = tmp_path / "r.keras"
    rm.save(path)
    km = kx.models.load_model(path)
    np.testing.assert_allclose(
        km.predict(xt, verbose=0), rm.predict(xt, verbose=0), rtol=P_RTOL, atol=P_ATOL
    )
    assert_weights_close(km.get_weights(), rm.get_weights(), rtol=0, atol=0)
    assert km.get_weights()[2].dtype == np.int32


def test_weights_h5_both_ways(kx, keras_ref, tmp_path):
    x = _data(seed=12)
    xt = _data(n=30, seed=7)
    km, rm = _saving_models(kx, x), _saving_models(keras_ref, _data(seed=13))
    km_file, rm_file = tmp_path / "k.weights.h5", tmp_path / "r.weights.h5"
    km.save_weights(km_file)
    rm.save_weights(rm_file)
    # kerox → Keras: a fresh, un-adapted Keras model takes kerox's weights.
    fresh_r = keras_ref.Sequential(
        [
            keras_ref.Input((D,)),
            keras_ref.layers.Normalization(name="norm"),
            keras_ref.layers.Dense(4, "relu", name="fc"),
            keras_ref.layers.Normalization(
                mean=[0.5, 0.0, -1.0, 2.0], variance=[1.0, 4.0, 0.0, 2.0], name="cnorm"
            ),
            keras_ref.layers.Dense(1, name="head"),
        ]
    )
    fresh_r.load_weights(km_file)
    np.testing.assert_allclose(
        fresh_r.predict(xt, verbose=0), km.predict(xt, verbose=0), rtol=P_RTOL, atol=P_ATOL
    )
    # Keras → kerox: a fresh kerox model never adapted in this process predicts after loading.
    fresh_k = kx.Sequential(
        [
            kx.Input((D,)),
            kx.layers.Normalization(name="norm"),
            kx.layers.Dense(4, "relu", name="fc"),
            kx.layers.Normalization(
                mean=[0.5, 0.0, -1.0, 2.0], variance=[1.0, 4.0, 0.0, 2.0], name="cnorm"
            ),
            kx.layers.Dense(1, name="head"),
        ]
    )
    with pytest.raises(ValueError, match="adapt"):
        fresh_k.predict(xt, verbose=0)
    fresh_k.load_weights(rm_file)
    np.testing.assert_allclose(
        fresh_k.predict(xt, verbose=0), rm.predict(xt, verbose=0), rtol=P_RTOL, atol=P_ATOL
    )
    assert_weights_close(fresh_k.get_weights(), rm.get_weights(), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# 6. errors
# --------------------------------------------------------------------------------------------


def test_predict_and_fit_before_adapt_refused(kx):
    m = kx.Sequential([kx.Input((D,)), kx.layers.Normalization(), kx.layers.Dense(1)])
    m.compile(optimizer="sgd", loss="mse")
    x = _data(n=16)
    with pytest.raises(ValueError, match="adapt"):
        m.predict(x, verbose=0)
    with pytest.raises(ValueError, match="adapt"):
        m.fit(x, _targets(x), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="adapt"):
        m.evaluate(x, _targets(x), verbose=0)
    with pytest.raises(ValueError, match="adapt"):
        m.layers[0](x)
    # Once adapted, everything works.
    m.layers[0].adapt(x)
    assert np.isfinite(m.predict(x, verbose=0)).all()


@pytest.mark.parametrize(
    "data",
    [
        np.zeros((0, D), np.float32),
        np.zeros((0, D), np.float64),
        [],
        [np.zeros((0, D), np.float32)],
    ],
    ids=["empty_array32", "empty_array64", "empty_list", "empty_batch"],
)
def test_adapt_empty_refused(kx, data):
    layer = kx.layers.Normalization()
    with pytest.raises(ValueError):
        layer.adapt(data)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("as_batches", [False, True])
def test_adapt_nan_refused(kx, bad, as_batches):
    x = _data()
    x[17, 2] = bad
    layer = kx.layers.Normalization()
    with pytest.raises(ValueError, match="NaN"):
        layer.adapt(_batches(x) if as_batches else x)


@pytest.mark.parametrize("shape", [(N,), (N, 2, D)], ids=["1d", "3d"])
def test_adapt_wrong_rank_refused(kx, shape):
    x = np.ones(shape, np.float32)
    with pytest.raises(ValueError):
        kx.layers.Normalization().adapt(x)


def test_adapt_wrong_feature_count_after_build(kx, keras_ref):
    for lib in (kx, keras_ref):
        layer = lib.layers.Normalization()
        layer.adapt(_data())
        with pytest.raises(ValueError, match="incompatible shape"):
            layer.adapt(_data(d=D + 1))
        m = lib.Sequential([lib.Input((D,)), lib.layers.Normalization()])
        with pytest.raises(ValueError, match="incompatible shape"):
            m.layers[0].adapt(_data(d=D - 1))


def test_constructor_errors(kx, keras_ref):
    for lib in (kx, keras_ref):
        with pytest.raises(ValueError, match="both `mean` and `variance`"):
            lib.layers.Normalization(mean=[1.0, 2.0])
        with pytest.raises(ValueError, match="both `mean` and `variance`"):
            lib.layers.Normalization(variance=1.0)
        with pytest.raises(ValueError, match="same shape"):
            lib.layers.Normalization(mean=[1.0, 2.0], variance=[1.0, 2.0, 3.0])
        with pytest.raises(ValueError, match="rank of `mean`"):
            lib.layers.Normalization(mean=[[1.0, 2.0]], variance=[[1.0, 2.0]])


@pytest.mark.parametrize("axis", [0, None, (0, 1), -2])
def test_unsupported_axis_refused(kx, axis):
    with pytest.raises(ValueError, match="axis"):
        layer = kx.layers.Normalization(axis=axis)
        layer.build((None, D))


def test_constants_wrong_length_refused(kx):
    layer = kx.layers.Normalization(mean=[1.0, 2.0], variance=[1.0, 1.0])
    with pytest.raises(ValueError):
        kx.Sequential([kx.Input((D,)), layer])


def test_constants_negative_variance_refused(kx):
    with pytest.raises(ValueError):
        kx.layers.Normalization(mean=[1.0, 2.0], variance=[1.0, -1.0])


def test_constants_layer_adapt_refused(kx):
    layer = kx.layers.Normalization(mean=1.0, variance=2.0)
    with pytest.raises(ValueError, match="nothing to adapt"):
        layer.adapt(_data())
    with pytest.raises(ValueError, match="nothing to adapt"):
        layer.adapt(_batches(_data()))


def test_adapt_unsupported_type_refused(kx):
    with pytest.raises(TypeError):
        kx.layers.Normalization().adapt(3.0)
    with pytest.raises(TypeError):
        kx.layers.Normalization().adapt(np.array([["a", "b"]]))


# --------------------------------------------------------------------------------------------
# 7. ONNX export
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("invert", [False, True])
@pytest.mark.parametrize("where", ["first", "middle", "constants"])
def test_onnx_export(kx, tmp_path, invert, where):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    x = _data()
    if where == "first":
        norm = kx.layers.Normalization(invert=invert)
        norm.adapt(x)
        layers = [norm, kx.layers.Dense(3, "relu")]
    elif where == "middle":
        norm = kx.layers.Normalization(invert=invert)
        norm.build((None, 3))
        norm.set_weights(
            [np.linspace(-1, 1, 3, dtype=np.float32), np.array([4.0, 0.0, 0.25], np.float32), 0]
        )
        layers = [kx.layers.Dense(3, "relu"), norm, kx.layers.Dense(2)]
    else:
        norm = kx.layers.Normalization(
            mean=[1.0, -2.0, 30.0, 0.5, 7.0], variance=[4.0, 0.0, 100.0, 2.0, 9.0], invert=invert
        )
        layers = [norm]
    model = kx.Sequential([kx.Input((D,)), *layers])
    if where == "middle":
        model.layers[0].set_weights(_dense_weights([(D, 3)], seed=2))
    path = tmp_path / "m.onnx"
    model.export(path, format="onnx", verbose=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    xt = _data(n=33, seed=8)
    (got,) = sess.run(["output"], {"input": xt})
    expected = model.predict(xt, verbose=0)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * max(1, np.abs(expected).max()))
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops[:2] == (["Mul", "Add"] if invert else ["Sub", "Div"]) or where == "middle"


def test_onnx_export_unadapted_refused(kx, tmp_path):
    pytest.importorskip("onnx", reason="onnx is not installed")
    model = kx.Sequential([kx.Input((D,)), kx.layers.Normalization(name="nrm")])
    with pytest.raises(ValueError, match="nrm"):
        model.export(tmp_path / "m.onnx", format="onnx", verbose=False)
