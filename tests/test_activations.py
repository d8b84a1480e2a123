"""kerox.keras.activations against real keras.activations (JAX backend) on random inputs.

Oracle: Keras 3's own functions evaluated on the same float32 arrays. Tolerance: rtol 1e-6,
plus atol 1e-6 because JAX computes in float32 and loses relative precision where results
are tiny (softmax tails, gelu for very negative x); kerox evaluates in float64 and rounds once.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from kerox.keras import activations

os.environ.setdefault("KERAS_BACKEND", "jax")

RTOL, ATOL = 1e-6, 1e-6


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


def _inputs(shape=(64, 33), scale=4.0, seed=0):
    x = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)
    x.flat[:8] = [-100.0, -30.0, -1e-7, 0.0, 1e-7, 30.0, 100.0, -0.0]
    return x


@pytest.mark.parametrize("name", [*activations.SUPPORTED, "swish"])
@pytest.mark.parametrize("scale", [0.1, 4.0])
def test_matches_keras(name, scale):
    keras = _keras()
    x = _inputs(scale=scale)
    ours = activations.get(name)(x)
    theirs = np.asarray(keras.activations.get(name)(x))
    assert ours.dtype == np.float32 and ours.shape == x.shape
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_gelu_approximate_matches_keras():
    keras = _keras()
    x = _inputs()
    ours = activations.gelu(x, approximate=True)
    theirs = np.asarray(keras.activations.gelu(x, approximate=True))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    # and it is a different function from the exact form
    assert np.abs(activations.gelu(x) - ours).max() > 1e-4


@pytest.mark.parametrize("axis", [0, 1, -1, -2])
def test_softmax_axis_matches_keras(axis):
    keras = _keras()
    x = _inputs(shape=(5, 7, 3))
    theirs = np.asarray(keras.activations.softmax(x, axis=axis))
    np.testing.assert_allclose(activations.softmax(x, axis=axis), theirs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"negative_slope": 0.3},
        {"max_value": 6.0},
        {"max_value": 2.5},
        {"threshold": 1.0},
        {"negative_slope": 0.1, "max_value": 3.0, "threshold": 0.5},
    ],
)
def test_relu_options_match_keras(kwargs):
    keras = _keras()
    x = _inputs()
    theirs = np.asarray(keras.activations.relu(x, **kwargs))
    np.testing.assert_allclose(activations.relu(x, **kwargs), theirs, rtol=RTOL, atol=ATOL)


def test_elu_alpha_matches_keras():
    keras = _keras()
    x = _inputs()
    theirs = np.asarray(keras.activations.elu(x, alpha=0.5))
    np.testing.assert_allclose(activations.elu(x, alpha=0.5), theirs, rtol=RTOL, atol=ATOL)


def test_dtypes():
    assert activations.relu([1, -2, 3]).dtype == np.float32  # ints -> float32
    assert activations.sigmoid(np.zeros(3, np.float64)).dtype == np.float64
    assert activations.tanh(np.float32(0.5)).dtype == np.float32
    assert activations.linear([[1, 2]]).shape == (1, 2)


def test_get_and_errors_match_keras():
    keras = _keras()
    assert activations.get(None) is activations.linear
    assert activations.get(activations.relu) is activations.relu
    custom = lambda x: x  # noqa: E731
    assert activations.get(custom) is custom
    assert activations.get("swish") is activations.silu
    for bad in ["foo", "Relu", 3]:
        with pytest.raises(ValueError) as theirs:
            keras.activations.get(bad)
        with pytest.raises(ValueError) as ours:
            activations.get(bad)
        assert str(ours.value) == str(theirs.value)
    assert str(ours.value) == "Could not interpret activation function identifier: 3"


def test_serialize_matches_keras():
    keras = _keras()
    for name in [*activations.SUPPORTED, "swish"]:
        assert activations.serialize(activations.get(name)) == keras.activations.serialize(
            keras.activations.get(name)
        )
    assert activations.get({"class_name": "function", "config": "tanh"}) is activations.tanh


def test_supported_and_engine_names():
    assert activations.SUPPORTED == (
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "elu",
        "selu",
        "gelu",
        "softplus",
        "silu",
    )
    assert activations.engine_name("swish") == "silu"
    assert activations.engine_name(activations.swish) == "silu"
    assert activations.engine_name(None) == "linear"
    assert activations.engine_name("foo") is None

    def relu(x):  # a user function named like a builtin is not the builtin
        return x

    assert activations.engine_name(relu) is None
    assert activations.serialize(relu) == "relu"
