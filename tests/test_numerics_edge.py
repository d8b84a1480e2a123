"""Numerical edge cases: extreme logits, saturated probabilities, a batch of one through
BatchNormalization, zero and enormous gradients under each clipping option.

Every case is run in real Keras 3 (JAX backend) from the same weights; kerox must give
finite losses, outputs and weights where Keras does, and the same numbers. Two documented
differences (see docs/reliability.md, "Numerics"):

* softmax / sigmoid outputs with a crossentropy loss are computed from the logits (as Keras's
  TensorFlow backend does); Keras-JAX clips the probabilities to [1e-7, 1 - 1e-7] instead. The
  two agree unless the output saturates; saturated cases are compared with Keras's
  ``from_logits=True`` loss on the same pre-activations, i.e. the TensorFlow-backend number.
* with gradients near 1e30 Keras-JAX's float32 sum of squares overflows, so ``clipnorm``
  drops the update (0 · inf) and ``global_clipnorm`` writes NaN; kerox clips correctly. The
  correct update is Keras's own on the same problem scaled down (clipping is scale-free).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import assert_weights_close

X2 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32)
BIG = 1e4
W_BIG = np.array([[BIG, -BIG, 0.0], [-BIG, BIG, 0.0]], np.float32)
B0 = np.zeros(3, np.float32)
LABELS = np.array([1, 1, 2])  # row 0 is confidently wrong, row 1 right, row 2 undecided
ONEHOT = np.eye(3, dtype=np.float32)[LABELS]
MULTI = np.array([[1, 0, 1], [0, 0, 1], [1, 1, 0]], np.float32)


def _dense(lib: Any, activation: str, loss: Any, weights: list, opt: Any = None) -> Any:
    m = lib.Sequential([lib.Input((2,)), lib.layers.Dense(3, activation=activation)])
    m.set_weights(weights)
    m.compile(optimizer=opt or lib.optimizers.SGD(0.1), loss=loss)
    return m


def _loss(lib: Any, name: str, **kw: Any) -> Any:
    return getattr(lib.losses, name)(**kw)


def _run(m: Any, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """evaluate, one train step, then predictions and weights."""
    out = {"evaluate": m.evaluate(x, y, verbose=0), "train_on_batch": m.train_on_batch(x, y)}
    out["predict"] = np.asarray(m.predict(x, verbose=0))
    out["weights"] = [np.asarray(w) for w in m.get_weights()]
    return out


def _assert_finite(res: dict[str, Any]) -> None:
    for key, value in res.items():
        values = value if isinstance(value, list) else [value]
        for v in values:
            assert np.all(np.isfinite(np.asarray(v, dtype=np.float64))), f"{key}: {v}"


def _assert_same(kerox: dict[str, Any], keras: dict[str, Any], rtol: float = 1e-5) -> None:
    np.testing.assert_allclose(kerox["evaluate"], keras["evaluate"], rtol=rtol)
    np.testing.assert_allclose(kerox["train_on_batch"], keras["train_on_batch"], rtol=rtol)
    np.testing.assert_allclose(kerox["predict"], keras["predict"], rtol=rtol, atol=1e-5)
    assert_weights_close(kerox["weights"], keras["weights"], rtol=rtol, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Logits of ±1e4
# --------------------------------------------------------------------------------------------

LOGIT_CASES = [
    ("CategoricalCrossentropy", ONEHOT),
    ("SparseCategoricalCrossentropy", LABELS),
    ("BinaryCrossentropy", MULTI),
]


@pytest.mark.parametrize("loss,y", LOGIT_CASES, ids=[c[0] for c in LOGIT_CASES])
def test_logits_of_1e4_from_logits(loss: str, y: np.ndarray, kx: Any, keras_ref: Any) -> None:
    # Wrong-class logits 2e4 apart: the loss is ~6667 (mean over rows), finite, and the step
    # moves the weights by the exact softmax/sigmoid gradient.
    res = {}
    for lib in (keras_ref, kx):
        m = _dense(lib, "linear", _loss(lib, loss, from_logits=True), [W_BIG, B0])
        res[lib] = _run(m, X2, y)
    _assert_finite(res[kx])
    _assert_same(res[kx], res[keras_ref])


SATURATED = [
    ("softmax", "categorical_crossentropy", "CategoricalCrossentropy", ONEHOT),
    ("softmax", "sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", LABELS),
    ("sigmoid", "binary_crossentropy", "BinaryCrossentropy", MULTI),
]


@pytest.mark.parametrize("act,loss,cls,y", SATURATED, ids=[c[1] for c in SATURATED])
def test_saturated_outputs_from_logits_of_1e4(
    act: str, loss: str, cls: str, y: np.ndarray, kx: Any, keras_ref: Any
) -> None:
    # Probabilities exactly 0 and 1 out of softmax/sigmoid. kerox: the TensorFlow-backend
    # number (crossentropy from the logits), i.e. Keras's from_logits=True result.
    got = _run(_dense(kx, act, loss, [W_BIG, B0]), X2, y)
    _assert_finite(got)
    ref = _run(
        _dense(keras_ref, "linear", _loss(keras_ref, cls, from_logits=True), [W_BIG, B0]), X2, y
    )
    np.testing.assert_allclose(got["evaluate"], ref["evaluate"], rtol=1e-5)
    np.testing.assert_allclose(got["train_on_batch"], ref["train_on_batch"], rtol=1e-5)
    assert_weights_close(got["weights"], ref["weights"], rtol=1e-5, atol=1e-6)
    # The probabilities themselves are Keras's, exact zeros and ones included.
    probs = _dense(keras_ref, act, loss, [W_BIG, B0]).predict(X2, verbose=0)
    np.testing.assert_allclose(_dense(kx, act, loss, [W_BIG, B0]).predict(X2, verbose=0), probs)
    assert {0.0, 1.0} <= set(np.asarray(probs).ravel().tolist())
    # Keras-JAX itself stays finite here too (clipped probabilities).
    assert np.isfinite(_dense(keras_ref, act, loss, [W_BIG, B0]).evaluate(X2, y, verbose=0))


# --------------------------------------------------------------------------------------------
# Probabilities exactly 0 or 1 (linear outputs: Keras's probability formula, clip at 1e-7)
# --------------------------------------------------------------------------------------------

Z = np.zeros((2, 3), np.float32)
EXACT = [
    ("binary_crossentropy", np.array([0.0, 1.0, 1.0], np.float32), MULTI),
    ("categorical_crossentropy", np.array([0.0, 1.0, 0.0], np.float32), ONEHOT),
    ("sparse_categorical_crossentropy", np.array([0.0, 1.0, 0.0], np.float32), LABELS),
    ("mean_squared_error", np.array([0.0, 1.0, 1.0], np.float32), MULTI),
]


@pytest.mark.parametrize("loss,bias,y", EXACT, ids=[c[0] for c in EXACT])
def test_probabilities_exactly_zero_or_one(
    loss: str, bias: np.ndarray, y: np.ndarray, kx: Any, keras_ref: Any
) -> None:
    # Outputs exactly 0 and 1 against 0/1 targets: clipped logs (-log 1e-7 = 16.118 for a
    # hard miss), zero gradient through the clip; kerox matches Keras-JAX exactly.
    res = {lib: _run(_dense(lib, "linear", loss, [Z, bias]), X2, y) for lib in (keras_ref, kx)}
    _assert_finite(res[kx])
    _assert_same(res[kx], res[keras_ref])


def test_all_zero_probability_row_is_nan_as_in_keras(kx: Any, keras_ref: Any) -> None:
    # The one non-finite case: categorical crossentropy renormalizes p / sum(p), so a row of
    # all-zero "probabilities" is 0/0 in Keras as in kerox (TerminateOnNaN catches it).
    for lib in (keras_ref, kx):
        m = _dense(lib, "relu", "categorical_crossentropy", [W_BIG / BIG, B0])
        assert np.isnan(m.evaluate(X2, ONEHOT, verbose=0)), lib.__name__


# --------------------------------------------------------------------------------------------
# A batch of one through BatchNormalization
# --------------------------------------------------------------------------------------------


def _bn_model(lib: Any) -> Any:
    m = lib.Sequential(
        [
            lib.Input((3,)),
            lib.layers.Dense(4),
            lib.layers.BatchNormalization(),
            lib.layers.Dense(2, activation="softmax"),
        ]
    )
    rng = np.random.default_rng(5)
    ws = [np.asarray(w) for w in m.get_weights()]
    for i in (0, 1, 6, 7):  # Dense kernels and biases; BN at its defaults
        ws[i] = rng.uniform(-1, 1, ws[i].shape).astype(np.float32)
    m.set_weights(ws)
    m.compile(
        optimizer=lib.optimizers.SGD(0.1, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m


X1 = np.array([[0.3, -1.2, 0.8]], np.float32)
X7 = np.random.default_rng(6).standard_normal((7, 3)).astype(np.float32)
Y7 = np.array([1, 0, 1, 1, 0, 0, 1])


def _bn_single(m: Any) -> list:
    # Two steps on one sample: batch variance 0, so BN outputs beta exactly.
    out = [m.train_on_batch(X1, np.array([1])), m.train_on_batch(X1, np.array([1]))]
    return out + [np.asarray(m(X1, training=True)), m.predict(X1, verbose=0)]


BN_RUNS = {
    "train_on_batch_one_sample": _bn_single,
    "fit_last_batch_of_one": lambda m: (
        m.fit(X7, Y7, batch_size=3, epochs=2, shuffle=False, verbose=0).history
    ),
    "fit_batch_size_1": lambda m: m.fit(X7, Y7, batch_size=1, shuffle=False, verbose=0).history,
}


@pytest.mark.parametrize("run", list(BN_RUNS), ids=list(BN_RUNS))
def test_batch_of_one_through_batchnorm(run: str, kx: Any, keras_ref: Any) -> None:
    out, weights = {}, {}
    for lib in (keras_ref, kx):
        m = _bn_model(lib)
        out[lib] = BN_RUNS[run](m)
        weights[lib] = [np.asarray(w) for w in m.get_weights()]
    assert all(np.all(np.isfinite(w)) for w in weights[kx])
    assert_weights_close(weights[kx], weights[keras_ref], rtol=1e-5, atol=1e-6)
    if isinstance(out[kx], dict):
        for key in out[keras_ref]:
            np.testing.assert_allclose(out[kx][key], out[keras_ref][key], rtol=1e-5, err_msg=key)
    else:
        for a, b in zip(out[kx], out[keras_ref], strict=True):
            assert np.all(np.isfinite(np.asarray(a, np.float64)))
            np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Zero gradients and gradients of 1e30 under each clipping option
# --------------------------------------------------------------------------------------------

CLIPS = [
    {},
    {"clipnorm": 1.0},
    {"global_clipnorm": 1.0},
    {"clipvalue": 0.5},
    {"clipnorm": 1.0, "momentum": 0.9, "nesterov": True},
]
CLIP_IDS = ["none", "clipnorm", "global_clipnorm", "clipvalue", "clipnorm_nesterov"]


@pytest.mark.parametrize("clip", CLIPS, ids=CLIP_IDS)
def test_zero_gradients_under_clipping(clip: dict, kx: Any, keras_ref: Any) -> None:
    # A zero output against zero targets: every gradient is exactly 0, so a norm-based clip
    # divides 0 by a zero norm; Keras guards it and the weights do not move.
    x = np.random.default_rng(7).standard_normal((4, 2)).astype(np.float32)
    y = np.zeros((4, 1), np.float32)
    start = [
        np.full((2, 3), 0.5, np.float32),
        np.zeros(3, np.float32),
        np.zeros((3, 1), np.float32),
        np.zeros(1, np.float32),
    ]
    res = {}
    for lib in (keras_ref, kx):
        m = lib.Sequential([lib.Input((2,)), lib.layers.Dense(3), lib.layers.Dense(1)])
        m.set_weights(start)
        m.compile(optimizer=lib.optimizers.SGD(0.1, **clip), loss="mse")
        losses = [m.train_on_batch(x, y)] + m.fit(x, y, epochs=2, verbose=0).history["loss"]
        res[lib] = (losses, [np.asarray(w) for w in m.get_weights()])
    assert res[kx][0] == res[keras_ref][0] == [0.0, 0.0, 0.0]
    assert_weights_close(res[kx][1], start, rtol=0, atol=0)
    assert_weights_close(res[keras_ref][1], start, rtol=0, atol=0)


S_HUGE = 1e15  # inputs and targets of 1e15: loss ~1e30, kernel gradient ~1e30
XH = np.array([[1.0, -1.0], [2.0, 1.0], [0.5, 3.0]], np.float32)
YH = np.array([[-1.0], [1.0], [2.0]], np.float32)
W_H = [np.array([[0.1], [0.3]], np.float32)]


def _huge(lib: Any, clip: dict, scale: float) -> tuple[float, list]:
    m = lib.Sequential([lib.Input((2,)), lib.layers.Dense(1, use_bias=False)])
    m.set_weights(W_H)
    m.compile(optimizer=lib.optimizers.SGD(0.1, **clip), loss="mse")
    x, y = XH * np.float32(scale), YH * np.float32(scale)
    loss = m.train_on_batch(x, y)
    if clip:  # unclipped, a second step of ~1e29 weights would overflow (in Keras too)
        m.train_on_batch(x, y)
    return loss, [np.asarray(w) for w in m.get_weights()]


@pytest.mark.parametrize("clip", CLIPS, ids=CLIP_IDS)
def test_gradients_of_1e30_under_clipping(clip: dict, kx: Any, keras_ref: Any) -> None:
    loss, weights = _huge(kx, clip, S_HUGE)
    assert np.isfinite(loss) and all(np.all(np.isfinite(w)) for w in weights)
    k_loss, k_weights = _huge(keras_ref, clip, S_HUGE)
    np.testing.assert_allclose(loss, k_loss, rtol=1e-5)  # ~1e30, finite in both
    if not clip or "clipvalue" in clip:
        # No norm involved: the same numbers as Keras at this scale.
        assert_weights_close(weights, k_weights, rtol=1e-5)
    else:
        # Keras's float32 norm overflows at 1e30 (update dropped, or NaN for
        # global_clipnorm). A clipped update does not depend on the gradient's scale, so
        # the right answer is Keras's own on the problem scaled by 1e-15 (gradients ~1).
        _, expected = _huge(keras_ref, clip, 1.0)
        assert_weights_close(weights, expected, rtol=1e-5, atol=1e-7)
        assert not np.array_equal(weights[0], W_H[0]), "the clipped update was dropped"


def test_huge_gradients_reported_by_gradient_stats(kx: Any) -> None:
    m = kx.Sequential([kx.Input((2,)), kx.layers.Dense(1, use_bias=False)])
    m.set_weights(W_H)
    m.compile(optimizer=kx.optimizers.SGD(0.1, clipnorm=1.0), loss="mse")
    m.train_on_batch(XH * np.float32(S_HUGE), YH * np.float32(S_HUGE))
    stats = m.gradient_stats()
    (norm,) = stats["last_grad_norms"].values()
    assert np.isfinite(norm) and norm > 1e29
    assert list(stats["clip_fired"].values()) == [1]
