"""Keras 3's regression, hinge and probabilistic metrics in kerox, against real Keras.

* Standalone: each metric class over two batches (with sample weights), its result, reset and
  config, against Keras's.
* Resolution: `metrics.get` takes the strings Keras takes and refuses the others ("kld" and
  "logcosh" are loss names only in Keras 3); compile names a metric given as a string by that
  string ("mae"), one given as a class instance by its name, one given as a function by the
  function's name.
* Training: models compiled with the new metrics (also as `weighted_metrics`, with and without
  `sample_weight`, with `validation_split`) give Keras's History keys and values and Keras's
  `evaluate`.
* Bad input: unknown names, a sparse metric against a one-hot loss and the reverse.

Keras runs with `jit_compile=False` (see test_losses.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import assert_history_close, build_model, initial_weights
from test_losses import arrays, targets

RTOL = 1e-5
ATOL = 1e-6

# --------------------------------------------------------------------------------------------
# Standalone
# --------------------------------------------------------------------------------------------

# (class, data kind, settings)
METRICS = [
    ("MeanSquaredError", "real", {}),
    ("RootMeanSquaredError", "real", {}),
    ("MeanAbsoluteError", "real", {}),
    ("MeanAbsolutePercentageError", "real", {}),
    ("MeanSquaredLogarithmicError", "positive", {}),
    ("CosineSimilarity", "real", {}),
    ("LogCoshError", "real", {}),
    ("Hinge", "pm1", {}),
    ("Hinge", "01", {}),
    ("SquaredHinge", "01", {}),
    ("CategoricalHinge", "onehot", {}),
    ("KLDivergence", "prob", {}),
    ("Poisson", "counts", {}),
    ("BinaryCrossentropy", "prob", {}),
    ("BinaryCrossentropy", "real", {"from_logits": True, "label_smoothing": 0.2}),
    ("CategoricalCrossentropy", "prob", {"label_smoothing": 0.1}),
    ("CategoricalCrossentropy", "real", {"from_logits": True}),
    ("SparseCategoricalCrossentropy", "sparse", {}),
    ("SparseCategoricalCrossentropy", "sparse_logits", {"from_logits": True}),
]
METRIC_IDS = [f"{c}-{k}" for c, k, _ in METRICS]


def metric_arrays(kind, seed):
    if kind.startswith("sparse"):
        rng = np.random.default_rng(seed)
        labels = rng.integers(0, 3, 32)
        logits = rng.normal(size=(32, 3)).astype(np.float32)
        if kind == "sparse":
            e = np.exp(logits)
            return labels, (e / e.sum(axis=1, keepdims=True)).astype(np.float32)
        return labels, logits
    return arrays(kind, seed=seed)


@pytest.mark.parametrize("cls,kind,settings", METRICS, ids=METRIC_IDS)
def test_metric_matches_keras_standalone(cls, kind, settings, kx, keras_ref):
    ours = getattr(kx.metrics, cls)(**settings)
    ref = getattr(keras_ref.metrics, cls)(**settings)
    assert ours.name == ref.name
    assert ours.get_config() == ref.get_config()
    w = np.random.default_rng(7).uniform(0.0, 2.0, 32).astype(np.float32)
    for seed, sw in [(0, None), (1, w)]:
        y, p = metric_arrays(kind, seed)
        ours.update_state(y, p, sample_weight=sw)
        ref.update_state(y, p, sample_weight=sw)
        np.testing.assert_allclose(float(ours.result()), float(ref.result()), rtol=RTOL, atol=ATOL)
    ours.reset_state()
    assert float(ours.result()) == 0.0


def test_root_mean_squared_error_is_the_root_of_the_weighted_mean(kx):
    # Hand computation: per-sample MSEs 1 and 4 with weights 3 and 1 -> sqrt(7 / 4).
    m = kx.metrics.RootMeanSquaredError()
    m.update_state([[0.0, 0.0], [1.0, 1.0]], [[1.0, -1.0], [3.0, -1.0]], sample_weight=[3.0, 1.0])
    assert np.isclose(float(m.result()), np.sqrt(7.0 / 4.0), rtol=1e-6)


def test_cosine_similarity_metric_is_positive_and_refuses_other_axes(kx):
    m = kx.metrics.CosineSimilarity()
    m.update_state([[1.0, 0.0], [0.0, 2.0]], [[2.0, 0.0], [0.0, 1.0]])
    assert float(m.result()) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="axis=-1"):
        kx.metrics.CosineSimilarity(axis=0)
    with pytest.raises(ValueError, match="axis=-1"):
        kx.metrics.CategoricalCrossentropy(axis=1)


def test_metric_namespace_has_the_loss_functions(kx, keras_ref):
    for name in ["hinge", "huber", "kl_divergence", "log_cosh", "mean_absolute_error", "poisson"]:
        assert getattr(kx.metrics, name) is getattr(kx.losses, name)
        assert getattr(keras_ref.metrics, name) is getattr(keras_ref.losses, name)
    assert all(hasattr(kx.metrics, n) for n in kx.metrics.__all__)
    assert kx.metrics.serialize(kx.metrics.LogCoshError()) == keras_ref.metrics.serialize(
        keras_ref.metrics.LogCoshError()
    )


# --------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------

STRINGS = [
    "mse", "MSE", "mae", "MAE", "mape", "MAPE", "msle", "MSLE", "bce", "BCE",
    "mean_squared_error", "mean_absolute_error", "mean_absolute_percentage_error",
    "mean_squared_logarithmic_error", "root_mean_squared_error", "cosine_similarity",
    "log_cosh_error", "kl_divergence", "poisson", "hinge", "squared_hinge", "categorical_hinge",
    "categorical_crossentropy", "binary_crossentropy", "sparse_categorical_crossentropy",
    "RootMeanSquaredError", "LogCoshError", "KLDivergence", "CosineSimilarity",
    # refused by Keras 3's metrics.get (loss aliases, instance names, unknown names):
    "kld", "KLD", "logcosh", "log_cosh", "huber", "rmse", "crossentropy", "foo_metric",
]  # fmt: skip


@pytest.mark.parametrize("identifier", STRINGS)
def test_get_takes_the_strings_keras_takes(identifier, kx, keras_ref):
    try:
        ref = keras_ref.metrics.get(identifier)
    except ValueError:
        with pytest.raises(ValueError, match="Could not interpret metric identifier") as err:
            kx.metrics.get(identifier)
        assert "'mae'" in str(err.value) and "'root_mean_squared_error'" in str(err.value)
        return
    ours = kx.metrics.get(identifier)
    assert type(ours).__name__ == type(ref).__name__
    assert ours.name == ref.name  # standalone get keeps the class's default name


def test_get_takes_functions_classes_instances_and_dicts(kx, keras_ref):
    M = kx.metrics
    m = M.get(M.huber)
    assert m.name == "huber" and m._engine_spec() == {
        "kind": "mean_of_loss",
        "loss": "huber",
        "delta": 1.0,
        "weighted": False,
    }
    assert M.get(kx.losses.mae).name == "mean_absolute_error"
    assert type(M.get(M.Poisson)) is M.Poisson
    inst = M.LogCoshError(name="lc")
    assert M.get(inst) is inst
    ser = keras_ref.metrics.serialize(keras_ref.metrics.CategoricalCrossentropy(from_logits=True))
    got = M.get(ser)
    assert type(got) is M.CategoricalCrossentropy and got.get_config() == ser["config"]
    with pytest.raises(ValueError, match="Could not interpret metric identifier"):
        M.get(np.mean)


def test_engine_specs(kx):
    M = kx.metrics
    assert M.RootMeanSquaredError()._engine_spec() == {
        "kind": "root_mean_squared_error",
        "weighted": False,
    }
    assert M.CosineSimilarity()._engine_spec() == {"kind": "cosine_similarity", "weighted": False}
    assert M.BinaryCrossentropy(from_logits=True, label_smoothing=0.1)._engine_spec() == {
        "kind": "mean_of_loss",
        "loss": "binary_crossentropy",
        "from_logits": True,
        "label_smoothing": 0.1,
        "weighted": False,
    }
    assert M.SparseCategoricalCrossentropy()._engine_spec() == {
        "kind": "mean_of_loss",
        "loss": "sparse_categorical_crossentropy",
        "from_logits": False,
        "weighted": False,
    }
    assert M.LogCoshError()._engine_spec()["loss"] == "log_cosh"


# --------------------------------------------------------------------------------------------
# Training parity: History keys and values, evaluate
# --------------------------------------------------------------------------------------------

N = 256  # 192 + 64 with validation_split=0.25, batches of 32 (one shape, see test_losses)


def model(lib, units, head, seed=5):
    spec = [
        ("Dense", {"units": 16, "activation": "tanh"}),
        ("Dense", {"units": units, "activation": head}),
    ]
    m = build_model(lib, spec, (8,))
    m.set_weights(initial_weights(spec, (8,), seed))
    return m


def positive_regression(n, seed):
    x, y = targets("positive", n, seed)
    return x, np.minimum(y, 6.0)


# Each case: head, units, data, loss, metrics, weighted_metrics, sample weights, val split.
# A metric is a string, or (namespace, class, kwargs) made in each library, or ("fn", name):
# a function of keras.losses.
CASES = {
    "regression_weighted": dict(
        head="softplus", units=3, data="positive", loss="mse",
        metrics=[
            "mae", "mse", "mape", "msle", "MAE", "mean_absolute_error",
            "root_mean_squared_error", "cosine_similarity", "log_cosh_error", "poisson",
            ("RootMeanSquaredError", {"name": "rmse"}), ("CosineSimilarity", {"name": "cos"}),
            ("LogCoshError", {}), ("MeanAbsolutePercentageError", {}), ("Poisson", {"name": "p"}),
            ("MeanSquaredLogarithmicError", {}), ("KLDivergence", {}),
        ],
        weighted=[
            ("MeanAbsoluteError", {}), ("RootMeanSquaredError", {}), ("CosineSimilarity", {}),
            "mse", ("LogCoshError", {}),
        ],
        sample_weight=True, val=0.25,
    ),
    "regression_weighted_metrics_without_weights": dict(
        head=None, units=3, data="regression", loss="huber",
        metrics=[("RootMeanSquaredError", {}), "mae"],
        weighted=[("RootMeanSquaredError", {}), "mae", ("CosineSimilarity", {})],
        sample_weight=False, val=0.25,
    ),
    "classification": dict(
        head="softmax", units=3, data="onehot", loss="categorical_crossentropy",
        metrics=[
            "accuracy", "categorical_crossentropy", "kl_divergence", "categorical_hinge",
            "hinge", "squared_hinge", "binary_crossentropy", "bce",
            ("CategoricalCrossentropy", {"label_smoothing": 0.1, "name": "cce_smooth"}),
            ("BinaryCrossentropy", {"label_smoothing": 0.2, "name": "b"}),
            ("CategoricalHinge", {"name": "c"}),
            ("fn", "huber"), ("fn", "log_cosh"), ("fn", "mean_squared_error"),
        ],
        weighted=[("KLDivergence", {}), "categorical_crossentropy"],
        sample_weight=True, val=0.25,
    ),
    "logits": dict(
        head=None, units=3, data="onehot", loss=("CategoricalCrossentropy", {"from_logits": True}),
        metrics=[
            ("CategoricalCrossentropy", {"from_logits": True}),
            ("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.1}),
            ("CategoricalCrossentropy", {"from_logits": True, "label_smoothing": 0.2, "name": "s"}),
        ],
        weighted=[("CategoricalCrossentropy", {"from_logits": True})],
        sample_weight=True, val=0.0,
    ),
    "sparse": dict(
        head="softmax", units=3, data="sparse", loss="sparse_categorical_crossentropy",
        metrics=[
            "sparse_categorical_crossentropy", "accuracy",
            ("SparseCategoricalCrossentropy", {"name": "scce"}),
        ],
        weighted=[("SparseCategoricalCrossentropy", {})],
        sample_weight=True, val=0.25,
    ),
    "binary_labels_hinge_metrics": dict(
        head="sigmoid", units=3, data="01", loss="binary_crossentropy",
        metrics=["hinge", "squared_hinge", ("Hinge", {"name": "h"}), ("BinaryCrossentropy", {})],
        weighted=[("SquaredHinge", {})],
        sample_weight=True, val=0.25,
    ),
    "mixed_labels_hinge_metrics": dict(
        head="tanh", units=3, data="mixed", loss="squared_hinge",
        metrics=["hinge", ("Hinge", {"name": "h"}), ("SquaredHinge", {})],
        weighted=None, sample_weight=False, val=0.0,
    ),
}  # fmt: skip


def case_data(case, n, seed):
    if case["data"] == "sparse":
        x, y = targets("onehot", n, seed)
        return x, y.argmax(axis=1)
    if case["data"] == "positive":
        return positive_regression(n, seed)
    return targets(case["data"], n, seed)


def make_metric(lib, m):
    if isinstance(m, str):
        return m
    if m[0] == "fn":
        return getattr(lib.losses, m[1])
    cls, kw = m
    return getattr(lib.metrics, cls)(**kw)


def make_loss(lib, loss):
    return loss if isinstance(loss, str) else getattr(lib.losses, loss[0])(**loss[1])


def run(lib, case, keras=False):
    x, y = case_data(case, N, seed=31)
    xt, yt = case_data(case, 64, seed=32)
    rng = np.random.default_rng(33)
    sw = rng.uniform(0.2, 2.0, N).astype(np.float32) if case["sample_weight"] else None
    swt = rng.uniform(0.2, 2.0, 64).astype(np.float32) if case["sample_weight"] else None
    m = model(lib, case["units"], case["head"])
    weighted = case["weighted"]
    m.compile(
        optimizer=lib.optimizers.SGD(0.1),
        loss=make_loss(lib, case["loss"]),
        metrics=[make_metric(lib, k) for k in case["metrics"]],
        weighted_metrics=None if weighted is None else [make_metric(lib, k) for k in weighted],
        **({"jit_compile": False} if keras else {}),
    )
    hist = m.fit(
        x, y, sample_weight=sw, batch_size=32, epochs=2, shuffle=False, verbose=0,
        validation_split=case["val"],
    )  # fmt: skip
    ev = m.evaluate(xt, yt, sample_weight=swt, batch_size=32, verbose=0, return_dict=True)
    ev_list = m.evaluate(xt, yt, sample_weight=swt, batch_size=32, verbose=0)
    return {k: [float(v) for v in vs] for k, vs in hist.history.items()}, ev, ev_list


@pytest.mark.parametrize("name", list(CASES))
def test_history_and_evaluate_match_keras(name, kx, keras_ref):
    case = CASES[name]
    got_hist, got_ev, got_list = run(kx, case)
    want_hist, want_ev, want_list = run(keras_ref, case, keras=True)
    for key, values in want_hist.items():
        assert np.isfinite(values).all(), f"Keras {key}: {values}"
    # accuracies may differ by one sample (an argmax tie broken by float rounding)
    counts = {"accuracy": 192 if case["val"] else N, "val_accuracy": 64}
    assert_history_close(got_hist, want_hist, rtol=RTOL, atol=ATOL, counts=counts)
    assert sorted(got_ev) == sorted(want_ev)
    for key in want_ev:
        atol = 1.0001 / 64 if "accuracy" in key else ATOL
        np.testing.assert_allclose(got_ev[key], want_ev[key], rtol=RTOL, atol=atol, err_msg=key)
    np.testing.assert_allclose(got_list, want_list, rtol=RTOL, atol=1.0001 / 64)
    if case["val"]:
        assert any(k.startswith("val_") and k != "val_loss" for k in got_hist)


def test_history_names_follow_keras_rules(kx):
    # Documented Keras 3 behaviour (checked against Keras in the parity cases above): a string
    # names its metric, an instance keeps its own name, a function gives its name.
    case = dict(CASES["regression_weighted_metrics_without_weights"])
    case["metrics"] = ["mae", ("MeanAbsoluteError", {}), ("fn", "huber"), "MSE"]
    case["weighted"] = ["mae"]
    hist, _, _ = run(kx, case)
    assert sorted(hist) == sorted(
        f"{p}{k}"
        for p in ("", "val_")
        for k in ["loss", "mae", "mean_absolute_error", "huber", "MSE", "weighted_mae"]
    )


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("identifier", ["kld", "logcosh", "huber", "foo_metric"])
def test_unknown_metric_names_raise_value_error_like_keras(identifier, kx, keras_ref):
    x, y = targets("onehot", 32, seed=1)
    for lib in (keras_ref, kx):
        m = model(lib, 3, "softmax")
        with pytest.raises(ValueError, match=identifier):
            m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=[identifier])
            m.fit(x, y, verbose=0)


@pytest.mark.parametrize(
    "loss,metric,sparse_y",
    [
        ("categorical_crossentropy", ("SparseCategoricalCrossentropy", {}), False),
        ("categorical_crossentropy", "sparse_categorical_crossentropy", False),
        ("sparse_categorical_crossentropy", ("CategoricalCrossentropy", {}), True),
        ("sparse_categorical_crossentropy", "kl_divergence", True),
        ("sparse_categorical_crossentropy", ("RootMeanSquaredError", {}), True),
    ],
)
def test_metric_and_loss_must_agree_on_sparse_targets(loss, metric, sparse_y, kx):
    x, y = targets("onehot", 64, seed=2)
    if sparse_y:
        y = y.argmax(axis=1)
    m = model(kx, 3, "softmax")
    m.compile(optimizer="sgd", loss=loss, metrics=[make_metric(kx, metric)])
    with pytest.raises(ValueError, match="(?i)target|label"):
        m.fit(x, y, verbose=0)
    # The model is still usable once the metric is dropped.
    m.compile(optimizer="sgd", loss=loss)
    m.fit(x, y, verbose=0)
