"""kerox._summary.print_summary against real Keras 3's ``model.summary()``.

Oracle: for each case a real Keras Sequential model is built, and a duck-typed fake model is
made from it (same names, classes, output shapes, parameter counts, weight shapes, optimizer
variables); the text Keras passes to ``print_fn`` must equal ours, for several terminal widths
($COLUMNS), ``line_length``, ``positions`` and ``show_trainable`` values.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from kerox import _summary

os.environ.setdefault("KERAS_BACKEND", "jax")


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


class FakeWeight:
    def __init__(self, v) -> None:
        self.shape = tuple(v.shape)
        self.dtype = str(v.dtype)


class FakeModel:
    pass


class FakeOptimizer:
    pass


def fake_from_keras(km) -> FakeModel:
    """A kerox-like duck-typed model mirroring the Keras model ``km``."""
    m = FakeModel()
    m.name, m.built, m.layers = km.name, km.built, []
    for kl in km.layers:
        layer = type(kl.__class__.__name__, (), {})()  # same class name, nothing else
        layer.name, layer.built = kl.name, kl.built
        try:
            layer.output_shape = tuple(kl.output.shape)
        except (AttributeError, ValueError):
            layer.output_shape = None
        n = kl.count_params() if kl.built else 0
        layer.count_params = lambda n=n: n
        layer.weights = [FakeWeight(w) for w in kl.weights]
        layer.trainable = kl.trainable
        m.layers.append(layer)
    m.trainable_weights = [FakeWeight(w) for w in km.trainable_weights]
    m.non_trainable_weights = [FakeWeight(w) for w in km.non_trainable_weights]
    opt = getattr(km, "optimizer", None)
    m.optimizer = None
    if opt is not None:
        m.optimizer = FakeOptimizer()
        m.optimizer.built = opt.built
        m.optimizer.variables = [FakeWeight(v) for v in opt.variables]
    return m


def _run(fn):
    out: list[str] = []
    try:
        fn(out.append)
    except ValueError as e:
        out.append(f"ValueError: {e}")
    return out


def assert_same_summary(km, **kwargs) -> str:
    theirs = _run(lambda p: km.summary(print_fn=p, **kwargs))
    ours = _run(lambda p: _summary.print_summary(fake_from_keras(km), print_fn=p, **kwargs))
    assert ours == theirs
    return ours[0]


@pytest.fixture
def spec_model():
    keras = _keras()
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((8,)),
            layers.Dense(16, activation="relu", name="dense"),
            layers.BatchNormalization(name="batch_normalization"),
            layers.Dense(3, activation="softmax", name="dense_1"),
        ],
        name="sequential",  # explicit: Keras numbers auto-names globally
    )


@pytest.mark.parametrize("columns", ["80", "120", "100", "60", "45", "200"])
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"show_trainable": True},
        {"line_length": 100},
        {"line_length": 50, "show_trainable": True},
        {"positions": [0.3, 0.7, 1.0]},
        {"line_length": 70, "positions": [0.5, 0.75, 0.9]},
        {"line_length": 10},
    ],
)
def test_matches_keras_across_widths(monkeypatch, spec_model, columns, kwargs):
    monkeypatch.setenv("COLUMNS", columns)
    assert_same_summary(spec_model, **kwargs)


def test_spec_example_text(monkeypatch, spec_model):
    # The verified K3 output of spec §1.6 (an 80-column terminal).
    monkeypatch.setenv("COLUMNS", "80")
    text = assert_same_summary(spec_model)
    assert text.startswith('Model: "sequential"\n┏━━━')
    assert "│ batch_normalization             │ (None, 16)             │            64 │" in text
    assert "│ (BatchNormalization)            │                        │               │" in text
    assert text.endswith(
        " Total params: 259 (1.01 KB)\n"
        " Trainable params: 227 (908.00 B)\n"
        " Non-trainable params: 32 (128.00 B)\n"
    )


def test_unbuilt_and_long_names(monkeypatch):
    keras = _keras()
    monkeypatch.setenv("COLUMNS", "80")
    unbuilt = keras.Sequential(
        [
            keras.layers.Dense(3, name="a_very_long_layer_name_that_does_not_fit_in_its_cell"),
            keras.layers.Dense(4),
        ]
    )
    text = assert_same_summary(unbuilt)
    assert "0 (unbuilt)" in text and "│ ?" in text
    built = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Dense(1000, name="x" * 70),
            keras.layers.Dense(10, name="short name with spaces in it, wrapped on words"),
        ],
        name="my model",
    )
    for line_length in (None, 40):
        assert_same_summary(built, line_length=line_length)
    assert " Total params: 795,010 (3.03 MB)\n" in assert_same_summary(built, line_length=120)


def test_thousands_separators_and_sizes(monkeypatch):
    keras = _keras()
    monkeypatch.setenv("COLUMNS", "100")
    km = keras.Sequential(
        [keras.Input((784,)), keras.layers.Dense(2048), keras.layers.Dense(2048)]
    )  # about 5.8 M parameters: exercises "MB"
    text = assert_same_summary(km)
    assert "MB)" in text


def test_optimizer_params_after_fit(monkeypatch, spec_model):
    keras = _keras()
    monkeypatch.setenv("COLUMNS", "80")
    spec_model.compile(keras.optimizers.SGD(momentum=0.9), loss="mse")
    before = assert_same_summary(spec_model)  # compiled, optimizer not built yet
    assert "Optimizer params" not in before
    spec_model.fit(np.zeros((4, 8)), np.zeros((4, 3)), verbose=0)
    after = assert_same_summary(spec_model)
    assert " Optimizer params: 229 (916.00 B)\n" in after  # spec §1.6
    assert " Total params: 488 (1.91 KB)\n" in after


def test_layer_range(monkeypatch, spec_model):
    monkeypatch.setenv("COLUMNS", "80")
    assert_same_summary(spec_model, layer_range=["batch.*", "dense_1"])
    assert_same_summary(spec_model, layer_range=["dense_1", "dense"])
    assert_same_summary(spec_model, layer_range=["nope", "dense"])
    assert_same_summary(spec_model, layer_range=["dense"])


def test_default_print_goes_to_stdout(monkeypatch, capsys, spec_model):
    monkeypatch.setenv("COLUMNS", "80")
    spec_model.summary()
    theirs = capsys.readouterr().out
    _summary.print_summary(fake_from_keras(spec_model))
    assert capsys.readouterr().out == theirs


def test_readable_memory_size_matches_keras():
    _keras()
    from keras.src.utils.summary_utils import readable_memory_size

    for size in [0, 1, 908.0, 1023, 1024, 1035.5, 5.5 * 1024**2, 3 * 1024**3, 7 * 1024**5, 1e20]:
        assert _summary.readable_memory_size(size) == readable_memory_size(size)
