"""What `fit` / `evaluate` / `predict` take besides arrays, checked against real Keras.

Generators, PyDataset / Sequence, pandas, `steps_per_epoch` / `validation_steps` / `steps`,
`sample_weight` / `class_weight` / `weighted_metrics`, and the errors for bad data. Keras (JAX
backend) gets kerox's initial weights and the same batches (`shuffle=False`), so weights and
History must agree to float32 rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conftest import assert_history_close, assert_weights_close, make_data, twin_models

SPEC = [
    ("Dense", {"units": 16, "activation": "relu"}),
    ("BatchNormalization", {}),
    ("Dense", {"units": 3, "activation": "softmax"}),
]
N, D = 96, 8


def _data(seed=0, target="onehot"):
    return make_data(N, D, target, seed=seed, classes=3)


def _twins(kx, keras, lr=0.05, metrics=("accuracy",), weighted=None, loss=None):
    km, rm = twin_models(kx, keras, SPEC, (D,), seed=3)
    for lib, m in ((kx, km), (keras, rm)):
        m.compile(
            optimizer=lib.optimizers.SGD(learning_rate=lr),
            loss=loss or "categorical_crossentropy",
            metrics=list(metrics),
            weighted_metrics=weighted,
        )
    return km, rm


def _fit_both(km, rm, *args, **kwargs):
    hk = km.fit(*args(0) if callable(args[0]) else args, verbose=0, **kwargs)
    hr = rm.fit(*args(1) if callable(args[0]) else args, verbose=0, **kwargs)
    return hk, hr


def _generator(x, y, bs, sw=None, repeat=1):
    for _ in range(repeat):
        for s in range(0, len(x), bs):
            if sw is None:
                yield x[s : s + bs], y[s : s + bs]
            else:
                yield x[s : s + bs], y[s : s + bs], sw[s : s + bs]


def _py_dataset_class(base):
    class Batches(base):
        def __init__(self, x, y, bs, sw=None, **kw):
            super().__init__(**kw)
            self.x, self.y, self.bs, self.sw = x, y, bs, sw
            self.epochs_ended = 0

        def __len__(self):
            return -(-len(self.x) // self.bs)

        def __getitem__(self, i):
            s = slice(i * self.bs, (i + 1) * self.bs)
            if self.sw is None:
                return self.x[s], self.y[s]
            return self.x[s], self.y[s], self.sw[s]

        def on_epoch_end(self):
            self.epochs_ended += 1

    return Batches


# --------------------------------------------------------------------------------------------
# Generators, PyDataset, pandas, steps
# --------------------------------------------------------------------------------------------


def test_generator_with_steps_per_epoch_matches_keras(kx, keras_ref):
    x, y = _data()
    km, rm = _twins(kx, keras_ref)
    kw = dict(steps_per_epoch=4, epochs=3)
    hk = km.fit(_generator(x, y, 16, repeat=3), verbose=0, **kw)
    hr = rm.fit(_generator(x, y, 16, repeat=3), verbose=0, **kw)
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": 64})
    assert hk.params["steps"] == 4


def test_generator_one_epoch_without_steps_then_runs_out(kx, keras_ref):
    x, y = _data()
    km, rm = _twins(kx, keras_ref)
    hk = km.fit(_generator(x, y, 32), epochs=1, verbose=0)
    hr = rm.fit(_generator(x, y, 32), epochs=1, verbose=0)
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": N})
    # A second epoch has nothing left to read: a clear error, not an empty History.
    with pytest.raises(ValueError, match="ran out of data"):
        km.fit(_generator(x, y, 32), epochs=2, verbose=0)


def test_py_dataset_matches_keras(kx, keras_ref):
    x, y = _data()
    km, rm = _twins(kx, keras_ref)
    kds = _py_dataset_class(kx.utils.PyDataset)(x, y, 24, workers=2)
    rds = _py_dataset_class(keras_ref.utils.PyDataset)(x, y, 24)
    hk = km.fit(kds, epochs=2, verbose=0, shuffle=False)
    hr = rm.fit(rds, epochs=2, verbose=0, shuffle=False)
    assert kds.epochs_ended == 2
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": N})
    ek = km.evaluate(kds, verbose=0)
    er = rm.evaluate(rds, verbose=0)
    np.testing.assert_allclose(ek, er, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(km.predict(kds, verbose=0), rm.predict(rds, verbose=0), 1e-5, 1e-6)
    assert kx.utils.Sequence is kx.utils.PyDataset


def test_py_dataset_shuffle_visits_every_batch_once_per_epoch(kx):
    x, y = _data()
    seen: list[int] = []

    class Recording(_py_dataset_class(kx.utils.PyDataset)):
        def __getitem__(self, i):
            seen.append(i)
            return super().__getitem__(i)

    m = _model(kx)
    ds = Recording(x, y, 8)
    m.fit(ds, epochs=3, verbose=0, shuffle=True)
    epochs = [seen[-36:][k * 12 : (k + 1) * 12] for k in range(3)]
    assert all(sorted(e) == list(range(12)) for e in epochs), epochs
    assert any(e != list(range(12)) for e in epochs), "shuffle=True kept the batch order"
    seen.clear()
    m.fit(ds, epochs=1, verbose=0, shuffle=False)
    assert seen[-12:] == list(range(12))


def test_steps_per_epoch_on_arrays_carries_over_epochs(kx, keras_ref):
    """Keras 3: with steps_per_epoch the pass over the arrays continues in the next epoch and
    restarts only when used up (96 rows / 16 = 6 batches; 4 steps per epoch)."""
    x, y = _data()
    km, rm = _twins(kx, keras_ref)
    kw = dict(batch_size=16, steps_per_epoch=4, epochs=3, shuffle=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        hk = km.fit(x, y, verbose=0, **kw)
    hr = rm.fit(x, y, verbose=0, **kw)
    assert any("ran out of data" in str(w.message) for w in caught)
    assert km.optimizer.iterations.numpy() == int(rm.optimizer.iterations.numpy())
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": 16})


def test_validation_steps_freq_batch_size_and_eval_steps(kx, keras_ref):
    x, y = _data()
    vx, vy = _data(seed=1)
    km, rm = _twins(kx, keras_ref)
    kw = dict(
        batch_size=16,
        epochs=4,
        shuffle=False,
        validation_data=(vx, vy),
        validation_steps=2,
        validation_batch_size=8,
        validation_freq=2,
    )
    hk = km.fit(x, y, verbose=0, **kw)
    hr = rm.fit(x, y, verbose=0, **kw)
    assert_history_close(hk.history, hr.history, counts={"accuracy": N, "val_accuracy": 16})
    ek = km.evaluate(vx, vy, batch_size=8, steps=3, verbose=0)
    er = rm.evaluate(vx, vy, batch_size=8, steps=3, verbose=0)
    np.testing.assert_allclose(ek, er, rtol=1e-5, atol=1e-6)
    pk = km.predict(vx, batch_size=10, steps=2, verbose=0)
    pr = rm.predict(vx, batch_size=10, steps=2, verbose=0)
    assert pk.shape == pr.shape == (20, 3)
    np.testing.assert_allclose(pk, pr, rtol=1e-5, atol=1e-6)


def test_validation_data_as_generator(kx, keras_ref):
    x, y = _data()
    vx, vy = _data(seed=1)
    km, rm = _twins(kx, keras_ref)
    hk = km.fit(
        x, y, batch_size=32, epochs=1, shuffle=False, verbose=0,
        validation_data=_generator(vx, vy, 32), validation_steps=3,
    )  # fmt: skip
    hr = rm.fit(
        x, y, batch_size=32, epochs=1, shuffle=False, verbose=0,
        validation_data=_generator(vx, vy, 32), validation_steps=3,
    )  # fmt: skip
    assert_history_close(hk.history, hr.history, counts={"accuracy": N, "val_accuracy": N})


def test_pandas_inputs_keep_column_order(kx, keras_ref):
    pd = pytest.importorskip("pandas")
    x, y = _data()
    cols = [f"f{i}" for i in range(D)]
    df = pd.DataFrame(x, columns=cols)[cols[::-1]]  # reordered: the frame's order counts
    labels = pd.Series(y.argmax(1))
    km, rm = _twins(kx, keras_ref, loss="sparse_categorical_crossentropy")
    hk = km.fit(df, labels, batch_size=16, epochs=1, shuffle=False, verbose=0)
    hr = rm.fit(x[:, ::-1], y.argmax(1), batch_size=16, epochs=1, shuffle=False, verbose=0)
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": N})


# --------------------------------------------------------------------------------------------
# Sample weights, class weights, weighted metrics
# --------------------------------------------------------------------------------------------


def _weights(n=N, seed=7):
    return np.random.default_rng(seed).uniform(0.0, 3.0, n).astype(np.float32)


def test_sample_weight_fit_evaluate_match_keras(kx, keras_ref):
    x, y = _data()
    sw = _weights()
    sw[::7] = 0.0
    km, rm = _twins(kx, keras_ref, weighted=["accuracy"])
    kw = dict(batch_size=16, epochs=2, shuffle=False, sample_weight=sw, validation_split=0.25)
    hk = km.fit(x, y, verbose=0, **kw)
    hr = rm.fit(x, y, verbose=0, **kw)
    assert "weighted_accuracy" in hk.history and "val_weighted_accuracy" in hk.history
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, rtol=1e-4, atol=1e-5)
    ek = km.evaluate(x, y, sample_weight=sw, batch_size=32, verbose=0, return_dict=True)
    er = rm.evaluate(x, y, sample_weight=sw, batch_size=32, verbose=0, return_dict=True)
    assert ek.keys() == er.keys()
    for k in er:
        np.testing.assert_allclose(ek[k], float(er[k]), rtol=1e-5, atol=1e-6, err_msg=k)


def test_sample_weight_step_matches_float64_reference(kx):
    """One weighted SGD step against numpy float64: Keras's sum_over_batch_size divides the
    weighted sum by the batch size, so row i's logit gradient is w_i·(p_i − y_i)/n."""
    x, y = _data()
    sw = _weights()
    sw[:10] = 0.0
    m = kx.Sequential([kx.Input((D,)), kx.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=kx.optimizers.SGD(0.1), loss="categorical_crossentropy")
    w0, b0 = (np.asarray(v, np.float64) for v in m.get_weights())
    loss = m.train_on_batch(x, y, sample_weight=sw)
    z = x.astype(np.float64) @ w0 + b0
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ce = -(y * np.log(p)).sum(1)
    dz = sw[:, None] * (p - y) / N
    np.testing.assert_allclose(loss, (sw * ce).sum() / N, rtol=1e-5)
    w1, b1 = m.get_weights()
    np.testing.assert_allclose(w1, w0 - 0.1 * x.T.astype(np.float64) @ dz, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(b1, b0 - 0.1 * dz.sum(0), rtol=1e-5, atol=1e-7)


def test_class_weight_matches_keras(kx, keras_ref):
    x, y = _data()
    cw = {0: 0.5, 1: 2.0, 2: 1.0}
    for target in ("onehot", "sparse"):
        yy = y if target == "onehot" else y.argmax(1)
        loss = (
            "categorical_crossentropy" if target == "onehot" else "sparse_categorical_crossentropy"
        )
        km, rm = _twins(kx, keras_ref, loss=loss)
        kw = dict(batch_size=16, epochs=2, shuffle=False, class_weight=cw)
        hk = km.fit(x, yy, verbose=0, **kw)
        hr = rm.fit(x, yy, verbose=0, **kw)
        assert_weights_close(km.get_weights(), rm.get_weights())
        assert_history_close(hk.history, hr.history, counts={"accuracy": N})


def test_generator_sample_weights_and_train_on_batch(kx, keras_ref):
    x, y = _data()
    sw = _weights()
    km, rm = _twins(kx, keras_ref, weighted=["accuracy"])
    hk = km.fit(_generator(x, y, 32, sw), epochs=1, verbose=0)
    hr = rm.fit(_generator(x, y, 32, sw), epochs=1, verbose=0)
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": N})
    rk = km.train_on_batch(x[:20], y[:20], sample_weight=sw[:20], return_dict=True)
    rr = rm.train_on_batch(x[:20], y[:20], sample_weight=sw[:20], return_dict=True)
    for k in rr:
        np.testing.assert_allclose(rk[k], float(rr[k]), rtol=1e-5, atol=1e-6, err_msg=k)
    tk = km.test_on_batch(x[:20], y[:20], sample_weight=sw[:20])
    tr = rm.test_on_batch(x[:20], y[:20], sample_weight=sw[:20])
    np.testing.assert_allclose(tk, tr, rtol=1e-5, atol=1e-6)
    assert_weights_close(km.get_weights(), rm.get_weights())


# --------------------------------------------------------------------------------------------
# Bad input: a ValueError/TypeError naming the argument, the model untouched
# --------------------------------------------------------------------------------------------


def _model(kx):
    m = kx.Sequential([kx.Input((D,)), kx.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    return m


def _dataset(arrays):
    import kerox

    return kerox.data.Dataset.from_tensor_slices(arrays).batch(32)


def _bad_cases():
    x, y = _data()

    def raising():
        yield x[:32], y[:32]
        yield x[32:64], y[32:64]
        raise RuntimeError("the data source broke")

    def ragged():
        yield x[:32], y[:32]
        yield x[32:64, :5], y[32:64]

    return {
        "steps_per_epoch_zero": (lambda m: m.fit(x, y, steps_per_epoch=0), ValueError,
                                 "steps_per_epoch"),
        "steps_per_epoch_float": (lambda m: m.fit(x, y, steps_per_epoch=2.5), TypeError,
                                  "steps_per_epoch"),
        "validation_steps_negative": (
            lambda m: m.fit(x, y, validation_data=(x, y), validation_steps=-1), ValueError,
            "validation_steps"),
        "evaluate_steps_zero": (lambda m: m.evaluate(x, y, steps=0), ValueError, "steps"),
        "sample_weight_length": (lambda m: m.fit(x, y, sample_weight=np.ones(N - 1)),
                                 ValueError, "sample_weight"),
        "sample_weight_negative": (lambda m: m.fit(x, y, sample_weight=-np.ones(N)),
                                   ValueError, "non-negative"),
        "sample_weight_nan": (lambda m: m.fit(x, y, sample_weight=np.full(N, np.nan)),
                              ValueError, "finite"),
        "sample_and_class_weight": (
            lambda m: m.fit(x, y, sample_weight=np.ones(N), class_weight={0: 1.0}),
            ValueError, "class_weight"),
        "class_weight_unknown_class": (lambda m: m.fit(x, y, class_weight={0: 1.0, 5: 2.0}),
                                       ValueError, "key 5"),
        "class_weight_negative": (lambda m: m.fit(x, y, class_weight={1: -1.0}),
                                  ValueError, "class_weight[1]"),
        "class_weight_not_dict": (lambda m: m.fit(x, y, class_weight=[1.0, 2.0]),
                                  TypeError, "class_weight"),
        "class_weight_onehot_wrong_width": (
            lambda m: m.fit(x, np.eye(4, dtype=np.float32)[y.argmax(1)], class_weight={0: 2.0}),
            ValueError, "shape"),
        "generator_wrong_structure": (
            lambda m: m.fit(((a, b, b, b) for a, b in _generator(x, y, 32))), ValueError,
            "(x, y, sample_weight)"),
        "generator_without_targets": (lambda m: m.fit((a for a, _ in _generator(x, y, 32))),
                                      ValueError, "without targets"),
        "generator_with_y": (lambda m: m.fit(_generator(x, y, 32), y), ValueError, "`y`"),
        "generator_inconsistent_shapes": (lambda m: m.fit(ragged()), ValueError, "(32, 5)"),
        "generator_raises": (lambda m: m.fit(raising(), epochs=1), RuntimeError, "broke"),
        "dataset_wrong_structure": (
            lambda m: m.fit(_dataset((x, y, y, y))), ValueError, "(x, y, sample_weight)"),
        "dataset_dict_x": (
            lambda m: m.fit(_dataset(({"a": x}, y))), ValueError, "dict"),
        "dataset_sample_weight_negative": (
            lambda m: m.fit(_dataset((x, y, -np.ones(N, np.float32)))), ValueError,
            "non-negative"),
        "validation_split_generator": (
            lambda m: m.fit(_generator(x, y, 32), validation_split=0.2), ValueError,
            "validation_split"),
    }  # fmt: skip


_BAD = _bad_cases()


@pytest.mark.parametrize("case", sorted(_BAD))
def test_bad_data_raises_and_leaves_model(kx, case):
    call, exc, words = _BAD[case]
    m = _model(kx)
    before = [np.array(w) for w in m.get_weights()]
    with pytest.raises(exc, match=None) as info:
        call(m)
    assert words in str(info.value), f"{case}: {info.value}"
    after = m.get_weights()
    if case == "generator_inconsistent_shapes":
        assert int(m.optimizer.iterations.numpy()) == 1  # the first batch was fine
    elif case == "generator_raises":
        # The two completed steps stay applied, as Keras: the error surfaces from the source.
        assert int(m.optimizer.iterations.numpy()) == 2
        assert not np.array_equal(after[0], before[0])
    else:
        for a, b in zip(after, before, strict=True):
            np.testing.assert_array_equal(a, b)


def test_get_layer_by_name_and_index_as_keras(kx, keras_ref):
    km, rm = twin_models(kx, keras_ref, SPEC, (D,), seed=3)
    for i in range(-3, 3):
        assert km.get_layer(index=i) is km.layers[i]
        assert type(km.get_layer(index=i)).__name__ == type(rm.get_layer(index=i)).__name__
    name = km.layers[1].name
    assert km.get_layer(name) is km.layers[1]
    for call in (
        lambda m: m.get_layer("nope"),
        lambda m: m.get_layer(index=7),
        lambda m: m.get_layer(),
        lambda m: m.get_layer(name, index=0),
    ):
        with pytest.raises(ValueError):
            call(rm)
        with pytest.raises(ValueError):
            call(km)


# --------------------------------------------------------------------------------------------
# tf.data pipelines over arrays: handed to the engine as arrays + order
# --------------------------------------------------------------------------------------------


def _count_pieces(monkeypatch, kx):
    from kerox.keras import _adapters, models

    pieces = {"run": 0, "batch": 0, "steps": 0}
    real = models.Sequential._run_train

    def counting(self, engine, piece):
        pieces["batch" if isinstance(piece, _adapters.Batch) else "run"] += 1
        done = real(self, engine, piece)
        pieces["steps"] += done
        return done

    monkeypatch.setattr(models.Sequential, "_run_train", counting)
    return pieces


def test_array_dataset_trains_without_python_per_batch(kx, monkeypatch):
    import kerox

    x, y = _data()
    a = _model(kx)
    b = kx.models.clone_model(a)
    b.set_weights(a.get_weights())
    b.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    pieces = _count_pieces(monkeypatch, kx)
    ds = kerox.data.Dataset.from_tensor_slices((x, y)).batch(4).prefetch(kerox.data.AUTOTUNE)
    ha = a.fit(ds, epochs=3, verbose=0)
    assert pieces["batch"] == 0, "an array-backed dataset ran Python per batch"
    assert pieces["steps"] == 3 * 24 and pieces["run"] < pieces["steps"] / 2, pieces
    hb = b.fit(x, y, batch_size=4, epochs=3, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert ha.history == hb.history


def test_shuffled_dataset_equals_arrays_in_its_order(kx):
    import kerox

    x, y = _data()
    ds = (
        kerox.data.Dataset.from_tensor_slices((x, y))
        .shuffle(40, seed=3, reshuffle_each_iteration=False)
        .batch(8)
    )
    rows = np.concatenate([bx for bx, _ in ds])
    order = [int(np.flatnonzero((x == r).all(1))[0]) for r in rows]
    assert sorted(order) == list(range(N)) and order != list(range(N))
    a = _model(kx)
    b = kx.models.clone_model(a)
    b.set_weights(a.get_weights())
    b.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    a.fit(ds, epochs=2, verbose=0)
    b.fit(x[order], y[order], batch_size=8, epochs=2, shuffle=False, verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_seed_book_dataset_pattern_reaches_keras_accuracy(kx, keras_ref):
    """`from_tensor_slices((x, y)).shuffle(len(x)).repeat().batch(32)` with steps_per_epoch,
    then `evaluate(test_ds)`: the accuracy Keras reaches on the same data and steps."""
    import kerox

    x, y = make_data(2400, 20, "onehot", seed=11, classes=4)
    xt, yt = x[2000:], y[2000:]
    x, y = x[:2000], y[:2000]
    spec = [("Dense", {"units": 32, "activation": "relu"}), ("Dense", {"units": 4,
            "activation": "softmax"})]  # fmt: skip
    km, rm = twin_models(kx, keras_ref, spec, (20,), seed=2)
    for lib, m in ((kx, km), (keras_ref, rm)):
        m.compile(optimizer=lib.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                  metrics=["accuracy"])  # fmt: skip
    train = kerox.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x)).repeat().batch(32)
    test = kerox.data.Dataset.from_tensor_slices((xt, yt)).batch(32)
    h = km.fit(train, steps_per_epoch=len(x) // 32, epochs=5, verbose=0)
    assert len(h.history["loss"]) == 5
    acc_k = km.evaluate(test, verbose=0)[1]
    rm.fit(x, y, batch_size=32, epochs=5, verbose=0)
    acc_r = rm.evaluate(xt, yt, verbose=0)[1]
    assert acc_k > 0.6 and abs(acc_k - acc_r) < 0.05, (acc_k, acc_r)


def test_endless_dataset_needs_steps_per_epoch(kx):
    import kerox

    x, y = _data()
    m = _model(kx)
    before = [np.array(w) for w in m.get_weights()]
    ds = kerox.data.Dataset.from_tensor_slices((x, y)).repeat().batch(8)
    with pytest.raises(ValueError, match="steps_per_epoch"):
        m.fit(ds, epochs=1, verbose=0)
    for a, b in zip(m.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)


def test_python_pipeline_dataset_trains_per_batch(kx, keras_ref, monkeypatch):
    """A pipeline with `map` is not plain arrays: it runs Python per batch and still trains
    as Keras does on the same batches."""
    import kerox

    x, y = _data()
    km, rm = _twins(kx, keras_ref)
    pieces = _count_pieces(monkeypatch, kx)
    ds = kerox.data.Dataset.from_tensor_slices((x, y)).map(lambda a, b: (a * 2.0, b)).batch(16)
    hk = km.fit(ds, epochs=2, verbose=0)
    assert pieces["batch"] == 12
    hr = rm.fit(x * 2.0, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert_history_close(hk.history, hr.history, counts={"accuracy": N})


# --------------------------------------------------------------------------------------------
# Monte-Carlo dropout
# --------------------------------------------------------------------------------------------


def test_mc_dropout_draws_a_fresh_mask_per_call(kx, keras_ref):
    spec = [
        ("Dense", {"units": 64, "activation": "relu"}),
        ("Dropout", {"rate": 0.5}),
        ("Dense", {"units": 1}),
    ]
    km, rm = twin_models(kx, keras_ref, spec, (D,), seed=4)
    x = _data()[0][:12]
    outs_k = np.stack([np.asarray(km(x, training=True)) for _ in range(300)])
    outs_r = np.stack([np.asarray(rm(x, training=True)) for _ in range(300)])
    std_k, std_r = outs_k.std(0), outs_r.std(0)
    assert (std_k > 0).all(), "every call returned the same output"
    # 300 draws: the spread agrees with Keras's to sampling error (~4 %), the means to a few
    # standard errors.
    np.testing.assert_allclose(std_k, std_r, rtol=0.25)
    assert (np.abs(outs_k.mean(0) - outs_r.mean(0)) < 5 * std_r / np.sqrt(300)).all()
    # Inference stays deterministic.
    np.testing.assert_array_equal(km(x), km(x))
