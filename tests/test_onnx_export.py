"""`model.export(path, format="onnx")` (kerox/keras/_onnx.py).

Oracle: onnxruntime runs the exported file; its outputs must equal kerox's own
``model.predict`` (the Rust engine) within 1e-5. The exporter's intermediate numbers are never
used as expected values. Graph structure (op types, input/output names and shapes) is read
back from the written file with the ``onnx`` package.

onnx/onnxruntime missing: skip, unless ``KEROX_REQUIRE_ORACLE=1`` (then the tests fail).
"""

from __future__ import annotations

import importlib
import os
import sys

import numpy as np
import pytest
from conftest import REQUIRE_ORACLE
from kerox import keras
from kerox.keras import activations

ATOL = 1e-5


def _oracle(name: str):
    """Import ``name``; a missing module skips, or fails under KEROX_REQUIRE_ORACLE=1."""
    if not REQUIRE_ORACLE:
        return pytest.importorskip(name)
    try:
        return importlib.import_module(name)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        pytest.fail(f"KEROX_REQUIRE_ORACLE=1 but {name} cannot be imported: {exc}")


@pytest.fixture(scope="module")
def onnx():
    return _oracle("onnx")


@pytest.fixture(scope="module")
def ort():
    return _oracle("onnxruntime")


def run_ort(ort, path, x: np.ndarray) -> np.ndarray:
    """Run the exported file with onnxruntime (CPU, one thread) on ``x``."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["input"]
    assert [o.name for o in sess.get_outputs()] == ["output"]
    (out,) = sess.run(["output"], {"input": np.ascontiguousarray(x, dtype=np.float32)})
    return out


def export_and_compare(model, ort, path, x: np.ndarray, atol: float = ATOL) -> float:
    """Export ``model`` to ``path``, run it with onnxruntime, compare with ``model.predict``.

    Returns the max abs difference.
    """
    model.export(path, format="onnx", verbose=False)
    expected = model.predict(x, batch_size=256, verbose=0)
    got = run_ort(ort, path, x)
    assert got.dtype == np.float32
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    return float(np.max(np.abs(got.astype(np.float64) - expected)))


def op_types(onnx, path) -> list[str]:
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def io_dims(onnx, path) -> tuple[list, list]:
    """(input dims, output dims) of the graph; symbolic dims as their names."""
    graph = onnx.load(str(path)).graph

    def dims(vi):
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    return dims(graph.input[0]), dims(graph.output[0])


def randomize_bn(layer, seed: int) -> None:
    """Non-trivial gamma/beta/moving statistics for one BatchNormalization layer."""
    rng = np.random.default_rng(seed)
    ranges = {
        "gamma": (0.5, 1.5),
        "beta": (-0.5, 0.5),
        "moving_mean": (-0.5, 0.5),
        "moving_variance": (0.3, 2.0),
    }
    for v in layer.weights:
        v.assign(rng.uniform(*ranges[v.name], v.shape).astype(np.float32))


def dyadic_dense_model(layers_after, units=5, in_dim=6, seed=0):
    """Input(in_dim) -> Dense(units) with small dyadic weights -> ``layers_after``.

    Inputs from :func:`dyadic_inputs` times these weights sum exactly in float32 whatever the
    summation order, so engine and onnxruntime see identical pre-activations and any
    difference comes from the activation itself.
    """
    rng = np.random.default_rng(seed)
    dense, *rest = layers_after
    model = keras.Sequential([keras.Input((in_dim,)), dense, *rest])
    kernel = rng.integers(-4, 5, (in_dim, units)) * 0.5
    bias = rng.integers(-8, 9, units) * 0.125
    dense.set_weights([kernel.astype(np.float32), bias.astype(np.float32)])
    return model


def dyadic_inputs(n=64, in_dim=6, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.integers(-32, 33, (n, in_dim)) * 0.25  # |pre-activation| up to ~97
    x[0], x[1], x[2] = 8.0, -8.0, 0.0
    return x.astype(np.float32)


# ------------------------------------------------------------------------------------------
# The seed model on real MNIST


def test_seed_model_on_mnist_test_images(ort, onnx, tmp_path):
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    x_train = x_train[:10000].astype(np.float32) / 255.0
    y_train = keras.utils.to_categorical(y_train[:10000], 10)
    x_test = x_test.astype(np.float32) / 255.0
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(256, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, clipnorm=1.0),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    model.fit(x_train, y_train, epochs=1, batch_size=32, verbose=0)
    bn = model.layers[3]
    # The moving statistics moved away from their initial 0 / 1.
    assert np.max(np.abs(bn.moving_mean.numpy())) > 0.05
    assert np.max(np.abs(bn.moving_variance.numpy() - 1.0)) > 0.05

    path = tmp_path / "seed.onnx"
    diff = export_and_compare(model, ort, path, x_test)
    print(f"max abs difference onnxruntime vs predict on 10,000 MNIST test images: {diff:.3g}")
    assert diff <= 1e-5
    # BN after a relu Dense stays a standalone per-feature affine.
    assert op_types(onnx, path) == [
        "Flatten",
        "Gemm",
        "Relu",
        "Gemm",
        "Relu",
        "Mul",
        "Add",
        "Gemm",
        "Relu",
        "Gemm",
        "Softmax",
    ]
    assert io_dims(onnx, path) == (["batch", 28, 28], ["batch", 10])
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    # Trained for real: accuracy far above chance (0.1), and both runtimes pick the same
    # classes (a near-tie may flip at most a handful of the 10,000).
    probs = run_ort(ort, path, x_test)
    assert (probs.argmax(axis=1) == y_test).mean() > 0.6
    same = probs.argmax(axis=1) == model.predict(x_test, verbose=0).argmax(axis=1)
    assert same.sum() >= 9995


# ------------------------------------------------------------------------------------------
# Activations


ALL_ACTIVATIONS = [*activations.SUPPORTED, "swish"]


@pytest.mark.parametrize("via", ["dense", "activation_layer"])
@pytest.mark.parametrize("act", ALL_ACTIVATIONS)
def test_each_activation(ort, onnx, tmp_path, act, via):
    if via == "dense":
        model = dyadic_dense_model([keras.layers.Dense(5, activation=act)])
    else:
        model = dyadic_dense_model([keras.layers.Dense(5), keras.layers.Activation(act)])
    x = dyadic_inputs()
    path = tmp_path / f"{act}.onnx"
    export_and_compare(model, ort, path, x)
    # Also relative to the size of the values (softplus/elu/selu reach ~100).
    np.testing.assert_allclose(
        run_ort(ort, path, x), model.predict(x, verbose=0), rtol=1e-6, atol=2e-6
    )
    ops = op_types(onnx, path)
    assert ops[0] == "Gemm"
    if act == "linear":
        assert ops == ["Gemm"]


def test_activation_op_mapping(onnx, tmp_path):
    expected = {
        "linear": [],
        "relu": ["Relu"],
        "sigmoid": ["Sigmoid"],
        "tanh": ["Tanh"],
        "softmax": ["Softmax"],
        "elu": ["Elu"],
        "selu": ["Selu"],
        "softplus": ["Softplus"],
        "silu": ["Sigmoid", "Mul"],
        "swish": ["Sigmoid", "Mul"],
        "gelu": ["Mul", "Erf", "Add", "Mul", "Mul"],
    }
    assert set(expected) == set(ALL_ACTIVATIONS)
    for act, ops in expected.items():
        model = dyadic_dense_model([keras.layers.Dense(5, activation=act)])
        path = tmp_path / f"{act}.onnx"
        model.export(path, verbose=False)
        assert op_types(onnx, path) == ["Gemm", *ops], act
    softmax = onnx.load(str(tmp_path / "softmax.onnx")).graph.node[-1]
    assert softmax.attribute[0].name == "axis" and softmax.attribute[0].i == -1


# ------------------------------------------------------------------------------------------
# BatchNormalization


@pytest.mark.parametrize(
    "center, scale", [(True, True), (False, True), (True, False), (False, False)]
)
def test_bn_folded_into_linear_dense(ort, onnx, tmp_path, center, scale):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16),
            keras.layers.BatchNormalization(center=center, scale=scale, epsilon=0.01),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    randomize_bn(model.layers[1], seed=3)
    x = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    path = tmp_path / "fold.onnx"
    export_and_compare(model, ort, path, x)
    assert op_types(onnx, path) == ["Gemm", "Gemm", "Softmax"]  # no Mul/Add: folded


def test_bn_folded_through_dropout_without_bias(ort, onnx, tmp_path):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, use_bias=False),
            keras.layers.Dropout(0.3, seed=1),
            keras.layers.BatchNormalization(),
            keras.layers.BatchNormalization(epsilon=0.1),  # folds into the folded Dense again
            keras.layers.Dense(4),
        ]
    )
    randomize_bn(model.layers[2], seed=4)
    randomize_bn(model.layers[3], seed=5)
    x = np.random.default_rng(1).standard_normal((40, 8)).astype(np.float32)
    path = tmp_path / "fold2.onnx"
    export_and_compare(model, ort, path, x)
    assert op_types(onnx, path) == ["Gemm", "Gemm"]
    gemm = onnx.load(str(path)).graph.node[0]
    assert len(gemm.input) == 3  # the folded Dense gained a bias


@pytest.mark.parametrize("center, scale", [(True, True), (False, False)])
def test_standalone_bn_after_relu_dense(ort, onnx, tmp_path, center, scale):
    model = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(16, activation="relu"),
            keras.layers.BatchNormalization(center=center, scale=scale),
            keras.layers.Dense(3),
        ]
    )
    randomize_bn(model.layers[1], seed=6)
    x = np.random.default_rng(2).standard_normal((50, 8)).astype(np.float32)
    path = tmp_path / "standalone.onnx"
    export_and_compare(model, ort, path, x)
    assert op_types(onnx, path) == ["Gemm", "Relu", "Mul", "Add", "Gemm"]


def test_bn_as_first_layer_and_trained_in_fit(ort, onnx, tmp_path):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((5,)),
            keras.layers.BatchNormalization(momentum=0.5),
            keras.layers.Dense(7, activation="tanh"),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    rng = np.random.default_rng(3)
    x = (3.0 + 2.0 * rng.standard_normal((200, 5))).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) > 15).astype(np.float32)
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    model.fit(x, y, epochs=2, batch_size=20, verbose=0)
    assert np.all(model.layers[0].moving_mean.numpy() > 1.0)
    path = tmp_path / "first.onnx"
    export_and_compare(model, ort, path, x)
    assert op_types(onnx, path) == ["Mul", "Add", "Gemm", "Tanh", "Gemm", "Sigmoid"]


# ------------------------------------------------------------------------------------------
# Dropout, Activation, Flatten


def test_dropout_and_activation_layers(ort, onnx, tmp_path):
    keras.utils.set_random_seed(11)
    model = keras.Sequential(
        [
            keras.Input((10,)),
            keras.layers.Dense(12),
            keras.layers.Activation("tanh"),
            keras.layers.Dropout(0.5),
            keras.layers.Activation("linear"),
            keras.layers.Dense(6),
            keras.layers.Dropout(0.2),
            keras.layers.Activation("softmax"),
        ]
    )
    x = np.random.default_rng(4).standard_normal((30, 10)).astype(np.float32)
    path = tmp_path / "drop.onnx"
    export_and_compare(model, ort, path, x)
    assert op_types(onnx, path) == ["Gemm", "Tanh", "Gemm", "Softmax"]


@pytest.mark.parametrize("shape", [(28, 28), (4, 5, 3)])
def test_flatten_from_higher_rank_input(ort, onnx, tmp_path, shape):
    keras.utils.set_random_seed(5)
    model = keras.Sequential(
        [
            keras.Input(shape),
            keras.layers.Flatten(),
            keras.layers.Dense(9, activation="relu"),
            keras.layers.Flatten(),  # already 2-D: nothing to do
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    x = np.random.default_rng(5).random((13, *shape)).astype(np.float32)
    path = tmp_path / "flatten.onnx"
    export_and_compare(model, ort, path, x)
    assert op_types(onnx, path) == ["Flatten", "Gemm", "Relu", "Gemm", "Softmax"]
    assert io_dims(onnx, path) == (["batch", *shape], ["batch", 4])


def test_identity_only_model(ort, tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dropout(0.5)])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    export_and_compare(model, ort, tmp_path / "id.onnx", x)


# ------------------------------------------------------------------------------------------
# Dynamic batch, input_signature, opset


def test_dynamic_batch_sizes(ort, onnx, tmp_path):
    keras.utils.set_random_seed(9)
    model = keras.Sequential(
        [
            keras.Input((12,)),
            keras.layers.Dense(8, activation="gelu"),
            keras.layers.BatchNormalization(),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    randomize_bn(model.layers[1], seed=9)
    path = tmp_path / "dyn.onnx"
    model.export(path, verbose=False)
    assert io_dims(onnx, path) == (["batch", 12], ["batch", 3])
    rng = np.random.default_rng(9)
    for n in (1, 7, 300):
        x = rng.standard_normal((n, 12)).astype(np.float32)
        got = run_ort(ort, path, x)
        assert got.shape == (n, 3)
        np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=0, atol=ATOL)


def test_input_signature(ort, onnx, tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    path = tmp_path / "sig.onnx"
    model.export(path, verbose=False, input_signature=[(None, 6)])
    assert io_dims(onnx, path) == (["batch", 6], ["batch", 2])
    model.export(path, verbose=False, input_signature=(7, 6))
    assert io_dims(onnx, path) == ([7, 6], [7, 2])
    x = np.ones((7, 6), np.float32)
    np.testing.assert_allclose(run_ort(ort, path, x), model.predict(x, verbose=0), atol=ATOL)
    with pytest.raises(ValueError, match="does not match"):
        model.export(path, verbose=False, input_signature=(None, 5))
    with pytest.raises(ValueError, match="float32"):
        model.export(path, verbose=False, input_signature=np.zeros((1, 6), np.float64))


@pytest.mark.parametrize("opset", [13, 20])
def test_opset_version(ort, onnx, tmp_path, opset):
    model = dyadic_dense_model([keras.layers.Dense(5, activation="gelu")])
    path = tmp_path / f"op{opset}.onnx"
    model.export(path, verbose=False, opset_version=opset)
    proto = onnx.load(str(path))
    assert proto.opset_import[0].version == opset
    x = dyadic_inputs()
    np.testing.assert_allclose(run_ort(ort, path, x), model.predict(x, verbose=0), atol=ATOL)


def test_bad_arguments(tmp_path):
    model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="opset_version"):
        model.export(tmp_path / "m.onnx", verbose=False, opset_version=11)
    with pytest.raises(ValueError, match="Unrecognized"):
        model.export(tmp_path / "m.onnx", verbose=False, optimize=True)
    with pytest.raises(ValueError, match="format"):
        model.export(tmp_path / "m.onnx", format="tf_saved_model")
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------------------------------
# Errors


def test_unbuilt_model_raises(tmp_path):
    model = keras.Sequential([keras.layers.Dense(3)])
    assert not model.built
    with pytest.raises(ValueError, match="not been built"):
        model.export(tmp_path / "m.onnx", verbose=False)
    assert not (tmp_path / "m.onnx").exists()


def test_unsupported_layer_raises(tmp_path):
    class Doubler(keras.layers.Layer):
        def _engine_spec(self, input_shape):
            return None

    model = keras.Sequential([keras.Input((4,)), Doubler(name="my_doubler"), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"my_doubler.*Doubler"):
        model.export(tmp_path / "m.onnx", verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_missing_onnx_package(monkeypatch, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ImportError, match=r"pip install \"kerox\[onnx\]\""):
        model.export(tmp_path / "m.onnx", verbose=False)


# ------------------------------------------------------------------------------------------
# Writing


def test_write_is_atomic_and_replaces(ort, onnx, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, activation="tanh")])
    path = tmp_path / "m.onnx"
    path.write_bytes(b"old, not an onnx file")
    export_and_compare(model, ort, path, np.ones((3, 4), np.float32))
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]  # no temp file left behind
    # A failing export leaves the previous file alone.
    before = path.read_bytes()
    with pytest.raises(ValueError):
        model.export(path, verbose=False, opset_version=5)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.onnx"]
    # Path given as str, into a directory that does not exist yet.
    target = str(tmp_path / "sub" / "m2.onnx")
    model.export(target, verbose=False)
    assert os.listdir(tmp_path / "sub") == ["m2.onnx"]


def test_verbose_message(capsys, tmp_path):
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = str(tmp_path / "m.onnx")
    model.export(path)  # verbose=None prints, as Keras 3 does
    assert capsys.readouterr().out == f"Saved artifact at '{path}'.\n"
    model.export(path, verbose=True)
    assert capsys.readouterr().out == f"Saved artifact at '{path}'.\n"
    model.export(path, verbose=False)
    assert capsys.readouterr().out == ""
