"""Keras 3's regression, hinge and probabilistic losses in kerox, against real Keras.

* Standalone: each loss function and class on random arrays (with the edge values Keras's
  formulas clip or special-case: y_true = 0 for MAPE, negative values for MSLE, zero vectors for
  cosine similarity, y_pred = 0 for Poisson/KL, large errors for log-cosh, {0, 1} and {-1, 1}
  labels for the hinges), with and without sample weights, in every reduction.
* Resolution: `losses.get` takes the same strings as Keras (and refuses the same ones), plus
  classes, functions, instances and serialized dicts; configs equal Keras's.
* Training: for each loss, the same small model (8 -> 16 -> out) trained 2 epochs with
  `shuffle=False` from identical weights in kerox and in Keras: weights, History and
  `evaluate` agree to float32 rounding.
* Bad input (Huber's delta, CosineSimilarity's axis, reductions training does not implement)
  and saving a model compiled with the new losses.

Keras runs with `jit_compile=False`: the same float32 operations, without an XLA compilation
per model (which would take most of this file's time on two cores).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_history_close, assert_weights_close, build_model, initial_weights

RTOL = 1e-5
ATOL = 1e-6

# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def arrays(kind: str, seed: int = 0, n: int = 32, d: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(y_true, y_pred) of one kind, float32, with the edge values the formulas special-case
    (the training tests' batch shape, so Keras reuses its compiled operations)."""
    rng = np.random.default_rng(seed)
    if kind == "real":
        y = rng.normal(size=(n, d))
        p = rng.normal(size=(n, d))
        y[0] = 0.0  # MAPE divides by max(|y|, 1e-7); cosine of a zero vector is 0
        y[1, :2] = 1e-9
        y[6, 1] = -1e-9
        p[2] = 0.0
        p[3] = y[3]  # zero error (Huber/MAE at the tie)
        y[4], p[4] = 40.0, -45.0  # log-cosh of a large error stays finite
        p[5] = y[5] + np.array([0.5, -1.0, 2.0])  # |error| == delta for Huber
    elif kind == "positive":  # MSLE: negative predictions are clipped to 1e-7
        y = rng.gamma(2.0, size=(n, d))
        p = rng.uniform(-0.5, 4.0, size=(n, d))
        y[0, 0] = 0.0
    elif kind == "counts":  # Poisson
        y = rng.poisson(2.0, size=(n, d))
        p = rng.uniform(0.0, 4.0, size=(n, d))
        p[0, :2] = 0.0
    elif kind == "prob":  # KL divergence: distributions, zeros clipped to 1e-7
        y = rng.dirichlet(np.ones(d), size=n)
        p = rng.dirichlet(np.ones(d), size=n)
        y[0] = np.eye(d)[1]
        p[1, 0] = 0.0
    elif kind == "pm1":
        y = rng.choice([-1.0, 1.0], size=(n, d))
        p = rng.normal(size=(n, d))
    elif kind == "01":  # converted to {-1, 1} by the hinges
        y = rng.choice([0.0, 1.0], size=(n, d))
        p = rng.normal(size=(n, d))
    elif kind == "onehot":
        y = np.eye(d)[rng.integers(0, d, n)]
        p = rng.normal(size=(n, d))
    else:
        raise ValueError(kind)
    return y.astype(np.float32), p.astype(np.float32)


# (function, class, data kind, settings)
LOSSES = [
    ("mean_absolute_error", "MeanAbsoluteError", "real", {}),
    ("mean_absolute_percentage_error", "MeanAbsolutePercentageError", "real", {}),
    ("mean_squared_logarithmic_error", "MeanSquaredLogarithmicError", "positive", {}),
    ("huber", "Huber", "real", {}),
    ("huber", "Huber", "real", {"delta": 0.5}),
    ("log_cosh", "LogCosh", "real", {}),
    ("hinge", "Hinge", "pm1", {}),
    ("hinge", "Hinge", "01", {}),
    ("squared_hinge", "SquaredHinge", "pm1", {}),
    ("squared_hinge", "SquaredHinge", "01", {}),
    ("categorical_hinge", "CategoricalHinge", "onehot", {}),
    ("categorical_hinge", "CategoricalHinge", "pm1", {}),
    ("kl_divergence", "KLDivergence", "prob", {}),
    ("poisson", "Poisson", "counts", {}),
    ("cosine_similarity", "CosineSimilarity", "real", {}),
    ("mean_squared_error", "MeanSquaredError", "real", {}),
]
LOSS_IDS = [
    f"{c}-{k}" + ("-" + "-".join(f"{a}{v}" for a, v in s.items()) if s else "")
    for _, c, k, s in LOSSES
]


def close(actual, expected, what="", rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(
        np.asarray(actual, np.float64),
        np.asarray(expected, np.float64),
        rtol=rtol,
        atol=atol,
        err_msg=what,
    )


# --------------------------------------------------------------------------------------------
# Standalone functions and classes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fn,cls,kind,settings", LOSSES, ids=LOSS_IDS)
def test_function_matches_keras(fn, cls, kind, settings, kx, keras_ref):
    y, p = arrays(kind)
    got = getattr(kx.losses, fn)(y, p, **settings)
    want = np.asarray(getattr(keras_ref.losses, fn)(y, p, **settings))
    assert got.shape == want.shape == (len(y),)
    assert np.isfinite(got).all()
    close(got, want, fn)


@pytest.mark.parametrize("fn,cls,kind,settings", LOSSES, ids=LOSS_IDS)
def test_class_matches_keras_in_every_reduction(fn, cls, kind, settings, kx, keras_ref):
    y, p = arrays(kind, seed=1)
    w = np.random.default_rng(2).uniform(0.0, 2.0, len(y)).astype(np.float32)
    for reduction in ["sum_over_batch_size", "sum", "mean", "mean_with_sample_weight", "none"]:
        ours = getattr(kx.losses, cls)(reduction=reduction, **settings)
        ref = getattr(keras_ref.losses, cls)(reduction=reduction, **settings)
        for sw in (None, w):
            close(ours(y, p, sample_weight=sw), ref(y, p, sample_weight=sw), f"{reduction} {sw}")


@pytest.mark.parametrize("cls", ["MeanAbsoluteError", "Huber", "LogCosh", "Hinge", "Poisson"])
def test_labels_of_lower_rank_are_expanded_as_keras(cls, kx, keras_ref):
    # y_true of shape (N,) against one output unit (N, 1): Keras expands it, no broadcasting.
    rng = np.random.default_rng(3)
    y = rng.choice([0.0, 1.0], size=16).astype(np.float32)
    p = rng.uniform(0.1, 2.0, size=(16, 1)).astype(np.float32)
    close(getattr(kx.losses, cls)()(y, p), getattr(keras_ref.losses, cls)()(y, p), cls)


def test_short_names_are_the_functions(kx):
    L = kx.losses
    assert L.mae is L.MAE is L.mean_absolute_error
    assert L.mape is L.MAPE is L.mean_absolute_percentage_error
    assert L.msle is L.MSLE is L.mean_squared_logarithmic_error
    assert L.kld is L.KLD is L.kl_divergence
    assert L.logcosh is L.log_cosh
    assert L.mse is L.MSE is L.mean_squared_error
    names = {"Huber", "LogCosh", "CosineSimilarity", "huber", "cosine_similarity", "serialize"}
    assert names <= set(L.__all__)
    assert all(hasattr(L, n) for n in L.__all__)


# --------------------------------------------------------------------------------------------
# Resolution and configuration
# --------------------------------------------------------------------------------------------

IDENTIFIERS = [
    "mean_absolute_error", "mae", "MAE", "mean_absolute_percentage_error", "mape", "MAPE",
    "mean_squared_logarithmic_error", "msle", "MSLE", "huber", "log_cosh", "hinge",
    "squared_hinge", "categorical_hinge", "kl_divergence", "kld", "KLD", "poisson",
    "cosine_similarity", "bce", "BCE", "mse", "MeanAbsoluteError", "Huber", "LogCosh",
    "KLDivergence", "CosineSimilarity", "Poisson", "SquaredHinge",
    # Keras 3 refuses these (its legacy aliases and instance names are not identifiers):
    "logcosh", "huber_loss", "kullback_leibler_divergence", "Hubber", "cosine",
]  # fmt: skip


def _keras_value(keras, identifier, y, p):
    obj = keras.losses.get(identifier)
    return float(np.mean(obj(y, p))) if not isinstance(obj, keras.losses.Loss) else float(obj(y, p))


@pytest.mark.parametrize("identifier", IDENTIFIERS)
def test_get_takes_the_strings_keras_takes(identifier, kx, keras_ref):
    y, p = arrays("prob", seed=4)  # every loss is defined on distributions
    try:
        want = _keras_value(keras_ref, identifier, y, p)
    except ValueError:
        with pytest.raises(ValueError, match="Could not interpret loss identifier"):
            kx.losses.get(identifier)
        return
    loss = kx.losses.get(identifier)
    assert isinstance(loss, kx.losses.Loss)
    close(loss(y, p), want, identifier)


def test_get_takes_functions_classes_instances_and_dicts(kx, keras_ref):
    L = kx.losses
    assert type(L.get(L.huber)) is L.Huber and L.get(L.huber).delta == 1.0
    assert type(L.get(L.kld)) is L.KLDivergence
    assert type(L.get(L.Poisson)) is L.Poisson
    inst = L.Huber(delta=0.3)
    assert L.get(inst) is inst
    got = L.get({"class_name": "Huber", "config": {"delta": 2.5, "name": "h"}})
    assert (type(got), got.delta, got.name) == (L.Huber, 2.5, "h")
    for cls in ["MeanAbsoluteError", "LogCosh", "KLDivergence", "CosineSimilarity", "Hinge"]:
        ser = keras_ref.losses.serialize(getattr(keras_ref.losses, cls)(name="custom"))
        ours = L.get(ser)
        assert type(ours).__name__ == cls
        assert ours.get_config() == ser["config"]
        assert L.serialize(ours) == {**ser, "module": "keras.losses"}
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        L.get({"class_name": "Dice", "config": {}})
    with pytest.raises(ValueError, match="Could not interpret loss identifier"):
        L.get(lambda y, p: y)


CLASSES = sorted({c for _, c, _, _ in LOSSES})


@pytest.mark.parametrize("cls", CLASSES)
def test_config_and_defaults_equal_keras(cls, kx, keras_ref):
    ours, ref = getattr(kx.losses, cls), getattr(keras_ref.losses, cls)
    assert ours().get_config() == ref().get_config()
    assert ours(name="n").get_config() == ref(name="n").get_config()
    assert ours(reduction="sum").get_config() == ref(reduction="sum").get_config()
    assert ours().name == ref().name


def test_huber_config_keeps_a_non_default_delta(kx, keras_ref):
    # Keras's Huber.get_config drops `delta` (a Keras model saved with Huber(delta=2.0) reloads
    # with delta=1.0); kerox adds it when it is not the default, which Keras's constructor takes.
    cfg = kx.losses.Huber(delta=2.0).get_config()
    assert cfg == {**keras_ref.losses.Huber(delta=2.0).get_config(), "delta": 2.0}
    y, p = arrays("real", seed=5)
    close(keras_ref.losses.Huber.from_config(cfg)(y, p), kx.losses.Huber(delta=2.0)(y, p))
    assert "delta" not in kx.losses.Huber(delta=1).get_config()


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "delta", [0, 0.0, -1.0, float("nan"), float("inf"), 1e300, 1e-60, "1", None, True]
)
def test_huber_delta_must_be_positive_and_finite(delta, kx):
    with pytest.raises(ValueError, match="delta"):
        kx.losses.Huber(delta=delta)


@pytest.mark.parametrize("axis", [0, 1, -2, None, 1.0])
def test_cosine_similarity_axis_other_than_last_is_refused(axis, kx):
    with pytest.raises(ValueError, match="axis=-1"):
        kx.losses.CosineSimilarity(axis=axis)


def _small_model(lib, out=3, head=None, seed=0):
    spec = [
        ("Dense", {"units": 16, "activation": "tanh"}),
        ("Dense", {"units": out, "activation": head}),
    ]
    model = build_model(lib, spec, (8,))
    model.set_weights(initial_weights(spec, (8,), seed))
    return model


@pytest.mark.parametrize("reduction", ["sum", "none", None, "mean_with_sample_weight"])
def test_compile_refuses_a_reduction_training_does_not_implement(reduction, kx):
    model = _small_model(kx)
    with pytest.raises(ValueError, match="reduction"):
        model.compile(optimizer="sgd", loss=kx.losses.Huber(reduction=reduction))
    with pytest.raises(ValueError, match="reduction"):
        # A serialized loss keeps its reduction (and is refused), rather than losing it.
        loss = kx.losses.get(
            {"class_name": "MeanAbsoluteError", "config": {"reduction": reduction}}
        )
        model.compile(optimizer="sgd", loss=loss)


def test_reduction_mean_trains_as_the_default(kx):
    # "mean" divides by the same count as "sum_over_batch_size" (no masks in kerox models).
    x, y = regression(64, seed=9)
    out = []
    for reduction in ("sum_over_batch_size", "mean"):
        model = _small_model(kx)
        model.compile(
            optimizer=kx.optimizers.SGD(0.05), loss=kx.losses.LogCosh(reduction=reduction)
        )
        hist = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0).history
        out.append((hist, model.get_weights()))
    assert out[0][0] == out[1][0]
    for a, b in zip(out[0][1], out[1][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_huber_delta_reaches_the_engine(kx):
    # The parity case `huber_delta` would also pass if delta were dropped on both sides of a
    # run with errors below it: with these errors it changes the result.
    x, y = regression(64, seed=9)
    out = []
    for delta in (1.0, 0.2):
        model = _small_model(kx)
        model.compile(optimizer=kx.optimizers.SGD(0.1), loss=kx.losses.Huber(delta=delta))
        model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
        out.append(model.get_weights()[0])
    assert float(np.abs(out[0] - out[1]).max()) > 1e-3


@pytest.mark.parametrize("identifier", ["logcosh", "huber_loss", "foo_loss"])
def test_unknown_loss_names_raise_value_error(identifier, kx):
    with pytest.raises(ValueError, match=identifier):
        _small_model(kx).compile(optimizer="sgd", loss=identifier)


# --------------------------------------------------------------------------------------------
# Training parity with Keras
# --------------------------------------------------------------------------------------------

N = 256  # 8 batches of 32; 192 + 64 with validation_split=0.25: one batch shape everywhere
N_SHORT = 300  # 9 * 32 + 12: a short last batch
N_TEST = 64
BATCH = 32


def regression(n, seed, shift=0.0, out=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    w = rng.standard_normal((8, out)) / np.sqrt(8)
    y = np.tanh(x @ w) + 0.1 * rng.standard_normal((n, out)) + shift
    return x, y.astype(np.float32)


def targets(kind, n, seed):
    """(x, y) for one target kind: what each loss is used with."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 8)).astype(np.float32)
    w = rng.standard_normal((8, 3)) / np.sqrt(8)
    z = x @ w + 0.3 * rng.standard_normal((n, 3))
    if kind == "regression":
        return regression(n, seed)
    if kind == "away_from_zero":  # MAPE
        return regression(n, seed, shift=2.0)
    if kind == "positive":  # MSLE
        return x, np.exp(z).astype(np.float32)
    if kind == "counts":  # Poisson
        return x, rng.poisson(np.exp(0.5 * z)).astype(np.float32)
    if kind == "distributions":  # KL divergence: soft labels
        e = np.exp(2.0 * z)
        return x, (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
    if kind == "onehot":
        return x, np.eye(3, dtype=np.float32)[z.argmax(axis=1)]
    if kind == "pm1":
        return x, np.where(z > 0, 1.0, -1.0).astype(np.float32)
    if kind == "01":
        return x, (z > 0).astype(np.float32)
    if kind == "01_flat":  # (N,) labels against one output unit
        return x, (z[:, 0] > 0).astype(np.float32)
    if kind == "mixed":
        # Batches of the first half hold only 0 and 1 (the hinges convert them to -1 and 1),
        # those of the second half also -1 (kept as they are): Keras decides per batch.
        y = np.where(z > 0, 1.0, 0.0)
        y[n // 2 :] = np.where(z[n // 2 :] > 0, 1.0, -1.0)
        return x, y.astype(np.float32)
    raise ValueError(kind)


# (id, loss: string or (class, kwargs), head activation, units, target kind, optimizer,
#  validation_split, rows)
TRAIN_CASES = [
    ("mae_string_short_batch", "mae", None, 3, "regression", ("SGD", 0.1), 0.0, N_SHORT),
    ("mae_class_adam", ("MeanAbsoluteError", {}), None, 3, "regression", ("Adam", 0.01), 0.25, N),
    ("mape_string", "mape", None, 3, "away_from_zero", ("SGD", 0.002), 0.0, N),
    ("msle", ("MeanSquaredLogarithmicError", {}), "softplus", 3, "positive", ("SGD", 0.2), 0.25, N),
    ("huber_string", "huber", None, 3, "regression", ("SGD", 0.1), 0.25, N),
    ("huber_delta", ("Huber", {"delta": 0.2}), None, 3, "regression", ("SGD", 0.2), 0.0, N),
    ("log_cosh", ("LogCosh", {}), None, 3, "regression", ("SGD", 0.1), 0.0, N),
    ("hinge_pm1", ("Hinge", {}), "tanh", 3, "pm1", ("SGD", 0.1), 0.25, N),
    ("hinge_01_flat_labels", "hinge", None, 1, "01_flat", ("SGD", 0.05), 0.0, N),
    ("hinge_mixed_batches", ("Hinge", {}), None, 3, "mixed", ("SGD", 0.05), 0.0, N_SHORT),
    ("squared_hinge_01", ("SquaredHinge", {}), "tanh", 3, "01", ("SGD", 0.05), 0.25, N),
    ("squared_hinge_mixed", "squared_hinge", None, 3, "mixed", ("SGD", 0.02), 0.0, N),
    ("categorical_hinge", ("CategoricalHinge", {}), None, 3, "onehot", ("SGD", 0.1), 0.25, N),
    ("kl_divergence", ("KLDivergence", {}), "softmax", 3, "distributions", ("SGD", 0.5), 0.25, N),
    ("kld_string_onehot", "kld", "softmax", 3, "onehot", ("SGD", 0.5), 0.0, N),
    ("poisson", ("Poisson", {}), "softplus", 3, "counts", ("SGD", 0.05), 0.25, N),
    ("cosine_similarity", "cosine_similarity", None, 3, "regression", ("SGD", 0.5), 0.25, N),
]  # fmt: skip


def make_loss(lib, loss):
    if isinstance(loss, str):
        return loss
    cls, kw = loss
    return getattr(lib.losses, cls)(**kw)


def train(lib, case, x, y, xt, yt, keras=False):
    _, loss, head, units, _, (opt, lr), val, _ = case
    model = _small_model(lib, units, head, seed=3)
    kw = {"jit_compile": False} if keras else {}
    model.compile(optimizer=getattr(lib.optimizers, opt)(lr), loss=make_loss(lib, loss), **kw)
    hist = model.fit(
        x, y, batch_size=BATCH, epochs=2, shuffle=False, verbose=0,
        validation_split=val,
    )  # fmt: skip
    return (
        {k: [float(v) for v in vs] for k, vs in hist.history.items()},
        [np.asarray(w) for w in model.get_weights()],
        model.evaluate(xt, yt, batch_size=BATCH, verbose=0),
    )


@pytest.mark.parametrize("case", TRAIN_CASES, ids=[c[0] for c in TRAIN_CASES])
def test_training_matches_keras(case, kx, keras_ref):
    x, y = targets(case[4], case[7], seed=11)
    xt, yt = targets(case[4], N_TEST, seed=12)
    got = train(kx, case, x, y, xt, yt)
    want = train(keras_ref, case, x, y, xt, yt, keras=True)
    assert np.isfinite(want[0]["loss"]).all()
    assert_history_close(got[0], want[0], rtol=RTOL, atol=ATOL)
    assert_weights_close(got[1], want[1], rtol=RTOL, atol=ATOL)
    close(got[2], want[2], "evaluate")
    # Training moved the weights: the comparison is not of two untouched starts.
    start = initial_weights([("Dense", {"units": 16}), ("Dense", {"units": case[3]})], (8,), seed=3)
    assert max(float(np.abs(a - b).max()) for a, b in zip(got[1], start, strict=True)) > 1e-3


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def test_saved_loss_and_metrics_reload_in_kerox_and_keras(kx, keras_ref, tmp_path):
    x, y = regression(96, seed=21)
    model = _small_model(kx)
    model.compile(
        optimizer=kx.optimizers.SGD(0.1),
        loss=kx.losses.Huber(delta=0.5),
        metrics=["mae", kx.metrics.RootMeanSquaredError(), kx.metrics.LogCoshError(name="lc")],
        weighted_metrics=[kx.metrics.CosineSimilarity()],
    )
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    want = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    path = str(tmp_path / "m.keras")
    model.save(path)

    back = kx.models.load_model(path)
    assert type(back._compiled_loss) is kx.losses.Huber and back._compiled_loss.delta == 0.5
    assert back.evaluate(x, y, batch_size=32, verbose=0, return_dict=True) == want

    ref = keras_ref.models.load_model(path)
    assert ref.loss.get_config()["name"] == "huber_loss"
    ref.jit_compile = False
    got = ref.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want)
    close([got[k] for k in want], list(want.values()), "Keras-loaded evaluate")


def test_keras_archive_with_new_loss_and_metrics_loads_in_kerox(kx, keras_ref, tmp_path):
    x, y = targets("distributions", 96, seed=22)
    model = _small_model(keras_ref, 3, "softmax")
    model.compile(
        optimizer=keras_ref.optimizers.SGD(0.1),
        loss=keras_ref.losses.KLDivergence(),
        metrics=["msle", keras_ref.metrics.Poisson(), keras_ref.metrics.CategoricalCrossentropy()],
        jit_compile=False,
    )
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
    want = model.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    path = str(tmp_path / "k.keras")
    model.save(path)
    back = kx.models.load_model(path)
    assert type(back._compiled_loss) is kx.losses.KLDivergence
    got = back.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
    assert sorted(got) == sorted(want)
    close([got[k] for k in want], list(want.values()), "kerox-loaded evaluate")
