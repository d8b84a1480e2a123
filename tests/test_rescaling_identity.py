"""``Rescaling`` and ``Identity`` against real Keras: inference, training through them, config,
saving, ONNX, and bad arguments."""

from __future__ import annotations

import numpy as np
import pytest
from kerox import keras as kx

keras = pytest.importorskip("keras")


def _data(n: int = 96, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 255, size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, 2)) / 255).astype(np.float32)
    return x, y


def _model(k, scale: float, offset: float, middle: bool):
    layers = [k.Input((6,))]
    if middle:
        layers += [k.layers.Dense(5, activation="tanh"), k.layers.Rescaling(scale, offset)]
    else:
        layers += [k.layers.Rescaling(scale, offset), k.layers.Identity()]
    layers += [k.layers.Dense(4, activation="relu"), k.layers.Identity(), k.layers.Dense(2)]
    return k.Sequential(layers)


@pytest.mark.parametrize(
    ("scale", "offset", "middle"),
    [(1 / 255, 0.0, False), (1 / 127.5, -1.0, False), (-0.7, 0.3, True)],
)
def test_training_matches_keras(scale: float, offset: float, middle: bool) -> None:
    x, y = _data()
    if middle:
        # Pixel-sized inputs into a tanh layer would saturate it and amplify rounding.
        x = x / np.float32(255)
    km, xm = _model(keras, scale, offset, middle), _model(kx, scale, offset, middle)
    xm.set_weights(km.get_weights())
    np.testing.assert_allclose(
        xm.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    km.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse", jit_compile=False)
    xm.compile(optimizer=kx.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    hk = km.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    hx = xm.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0).history
    np.testing.assert_allclose(hx["loss"], hk["loss"], rtol=1e-5, atol=1e-6)
    for a, b in zip(xm.get_weights(), km.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_layer_calls_and_configs_match_keras() -> None:
    x, _ = _data(8)
    for args in [(0.5,), (2.0, -3.0)]:
        ours, theirs = kx.layers.Rescaling(*args), keras.layers.Rescaling(*args)
        np.testing.assert_allclose(ours(x), np.asarray(theirs(x)), rtol=1e-6)
        assert ours.get_config() == theirs.get_config()
    np.testing.assert_array_equal(kx.layers.Identity()(x), x)
    assert kx.layers.Identity(name="i").get_config() == keras.layers.Identity(name="i").get_config()


def test_saving_round_trips_through_keras(tmp_path) -> None:
    x, _ = _data(10)
    xm = _model(kx, 1 / 255, 0.5, False)
    path = str(tmp_path / "m.keras")
    xm.save(path)
    back = keras.saving.load_model(path)
    np.testing.assert_allclose(
        back.predict(x, verbose=0), xm.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )
    km = _model(keras, 2.0, -1.0, True)
    path = str(tmp_path / "k.keras")
    km.save(path)
    ours = kx.models.load_model(path)
    np.testing.assert_allclose(
        ours.predict(x, verbose=0), km.predict(x, verbose=0), rtol=1e-5, atol=1e-6
    )


def test_onnx_export_matches_predict(tmp_path) -> None:
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    x, _ = _data(12)
    xm = _model(kx, -0.7, 0.3, True)
    path = str(tmp_path / "m.onnx")
    xm.export(path, format="onnx")
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, xm.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), [1.0, 2.0], True])
def test_bad_scale_or_offset_is_a_value_error(bad) -> None:
    with pytest.raises(ValueError, match="scale"):
        kx.layers.Rescaling(bad)
    with pytest.raises(ValueError, match="offset"):
        kx.layers.Rescaling(1.0, bad)
