"""Bad inputs to fit / evaluate / predict / *_on_batch: a clear exception, nothing changed.

Part one (`BAD_CASES`) feeds wrong data and wrong arguments to each entry point and checks
that kerox raises the stated type with a message naming the argument, the shape (or value)
seen and the shape (or range) expected — and that the model's weights are untouched. Where
real Keras 3 raises the same type, the oracle is run too (`keras` column "same"); elsewhere
the column records what Keras 3.15 (JAX) does instead, e.g. trains silently on labels out of
range. `docs/reliability.md` has these cases as a table (a test below keeps the ids in sync).

Part two covers inputs that must be *accepted*: float64 / integer / bool arrays convert as
Keras converts them (compared with real Keras), Fortran-order, strided, reversed, read-only
and memory-mapped arrays train to exactly the weights of the float32 C-contiguous array
without a whole copy (tracemalloc), and lists / tuples work where Keras accepts them.

test_errors.py already covers compile/layer/optimizer arguments and the basic wrong-width
and length-mismatch cases for fit/evaluate/predict; this file does not repeat those.
"""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import assert_weights_close, build_model

RNG = np.random.default_rng(0)
X = RNG.standard_normal((10, 4)).astype(np.float32)
LABELS = (np.arange(10) % 3).astype(np.int64)
Y = np.eye(3, dtype=np.float32)[LABELS]
X5 = np.zeros((10, 5), np.float32)

DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"


# --------------------------------------------------------------------------------------------
# Models the cases run on
# --------------------------------------------------------------------------------------------


def _cce(lib: Any) -> Any:
    """Input((4,)) → Dense(3, softmax), categorical crossentropy, metric accuracy."""
    m = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=lib.optimizers.SGD(0.01), loss="categorical_crossentropy")
    return m


def _scce(lib: Any) -> Any:
    """Same network with sparse labels."""
    m = lib.Sequential([lib.Input((4,)), lib.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=lib.optimizers.SGD(0.01), loss="sparse_categorical_crossentropy")
    return m


def _unbuilt(lib: Any) -> Any:
    """No Input: the first Dense layer is built from the first data it sees."""
    m = lib.Sequential([lib.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=lib.optimizers.SGD(0.01), loss="categorical_crossentropy")
    return m


MODELS: dict[str, Callable[[Any], Any]] = {"cce": _cce, "scce": _scce, "unbuilt": _unbuilt}


def _fit(**kw: Any) -> Callable[[Any], Any]:
    return lambda m: m.fit(verbose=0, **kw)


def _ev(**kw: Any) -> Callable[[Any], Any]:
    return lambda m: m.evaluate(verbose=0, **kw)


def _pred(x: Any, **kw: Any) -> Callable[[Any], Any]:
    return lambda m: m.predict(x, verbose=0, **kw)


def _tob(x: Any, y: Any) -> Callable[[Any], Any]:
    return lambda m: m.train_on_batch(x, y)


def _teob(x: Any, y: Any, **kw: Any) -> Callable[[Any], Any]:
    return lambda m: m.test_on_batch(x, y, **kw)


def _pob(x: Any) -> Callable[[Any], Any]:
    return lambda m: m.predict_on_batch(x)


# --------------------------------------------------------------------------------------------
# The bad-input cases
# --------------------------------------------------------------------------------------------
# (id, model, call name, call(model), exception type, words the message must contain,
#  what Keras 3.15 (JAX) does: "same" = raises the same type (checked against the oracle))

BAD_CASES: list[tuple[str, str, str, Callable[[Any], Any], type, list[str], str]] = [
    # dtypes Keras and NumPy cannot train on
    ("x_object_dtype", "cce", "fit", _fit(x=X.astype(object), y=Y), TypeError,
     ["`x`", "object", "(10, 4)"], "ValueError: Invalid dtype: object"),
    ("x_string_dtype", "cce", "fit", _fit(x=X.astype(str), y=Y), TypeError,
     ["`x`", "<U", "(10, 4)"], "ValueError: Invalid dtype: str1024"),
    ("x_complex64", "cce", "fit", _fit(x=X.astype(np.complex64), y=Y), TypeError,
     ["`x`", "complex64"], "accepts, drops the imaginary part"),
    ("x_complex128_predict", "cce", "predict", _pred(X.astype(np.complex128)), TypeError,
     ["`x`", "complex128"], "accepts, drops the imaginary part"),
    ("y_object_dtype", "cce", "evaluate", _ev(x=X, y=Y.astype(object)), TypeError,
     ["`y`", "object", "(10, 3)"], "ValueError: Invalid dtype: object"),
    ("x_datetime_train_on_batch", "cce", "train_on_batch",
     _tob(np.zeros((10, 4), "datetime64[s]"), Y), TypeError, ["`x`", "datetime64"],
     "ValueError: Invalid dtype"),
    ("x_bytes_predict_on_batch", "cce", "predict_on_batch", _pob(X.astype("S8")), TypeError,
     ["`x`", "S8"], "ValueError: Invalid dtype"),
    # containers that are not one array
    ("x_dict", "cce", "fit", _fit(x={"a": X}, y=Y), ValueError, ["`x`", "dict", "'a'"],
     "same"),
    ("x_list_of_two_arrays", "cce", "predict", _pred([X, X]), ValueError,
     ["`x`", "2 arrays", "(10, 4)"], "uses the first array"),
    ("x_ragged_list", "cce", "fit", _fit(x=[[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], y=Y[:2]),
     ValueError, ["`x`", "ragged", "inhomogeneous"], "same"),
    ("x_scalar_predict", "cce", "predict", _pred(np.float32(3.0)), ValueError,
     ["`x`", "shape ()"], "IndexError"),
    ("y_scalar", "cce", "fit", _fit(x=X, y=np.float32(1.0)), ValueError, ["`y`", "shape ()"],
     "IndexError"),
    ("x_none", "cce", "fit", _fit(x=None, y=Y), ValueError, ["`x`"], "same"),
    ("y_none_evaluate", "cce", "evaluate", _ev(x=X, y=None), ValueError, ["`y`"], "same"),
    # no samples
    ("empty_fit", "cce", "fit", _fit(x=X[:0], y=Y[:0]), ValueError,
     ["non-empty", "`x`", "(0, 4)", "(None, 4)"], "StopIteration"),
    ("empty_evaluate", "cce", "evaluate", _ev(x=X[:0], y=Y[:0]), ValueError,
     ["non-empty", "`x`", "(0, 4)", "(None, 4)"], "StopIteration"),
    ("empty_predict", "cce", "predict", _pred(X[:0]), ValueError,
     ["non-empty", "`x`", "(0, 4)", "(None, 4)"], "UnboundLocalError"),
    ("empty_train_on_batch", "cce", "train_on_batch", _tob(X[:0], Y[:0]), ValueError,
     ["non-empty", "`x`", "(0, 4)", "(None, 4)"], "TypeError (gradient of shape (0,))"),
    ("empty_test_on_batch", "cce", "test_on_batch", _teob(X[:0], Y[:0]), ValueError,
     ["non-empty", "`x`", "(0, 4)", "(None, 4)"], "returns 0.0"),
    # x and y of different lengths
    ("length_mismatch_evaluate", "cce", "evaluate", _ev(x=X, y=Y[:9]), ValueError,
     ["'x' sizes: 10", "'y' sizes: 9", "(10, 4)", "(9, 3)"], "same"),
    ("length_mismatch_train_on_batch", "cce", "train_on_batch", _tob(X, Y[:9]), ValueError,
     ["'x' sizes: 10", "'y' sizes: 9", "(9, 3)"], "same"),
    ("length_mismatch_test_on_batch", "scce", "test_on_batch", _teob(X[:7], LABELS),
     ValueError, ["'x' sizes: 7", "'y' sizes: 10", "(7, 4)", "(10,)"], "same"),
    ("y_empty_x_not", "cce", "fit", _fit(x=X, y=Y[:0]), ValueError,
     ["'x' sizes: 10", "'y' sizes: 0"], "same"),
    # wrong number of features
    ("width_train_on_batch", "cce", "train_on_batch", _tob(X5, Y), ValueError,
     ["`x`", "(10, 5)", "(None, 4)"], "same"),
    ("width_test_on_batch", "cce", "test_on_batch", _teob(X5, Y), ValueError,
     ["`x`", "(10, 5)", "(None, 4)"], "same"),
    ("width_predict_on_batch", "cce", "predict_on_batch", _pob(X5), ValueError,
     ["`x`", "(10, 5)", "(None, 4)"], "same"),
    ("zero_features_fit", "cce", "fit", _fit(x=np.zeros((10, 0), np.float32), y=Y),
     ValueError, ["`x`", "(10, 0)", "(None, 4)"], "same"),
    # 1-D and 3-D x for a Dense first layer
    ("x_1d_fit", "cce", "fit", _fit(x=X[:, 0], y=Y), ValueError,
     ["`x`", "(10,)", "(None, 4)"], "same"),
    ("x_1d_single_sample_predict", "cce", "predict", _pred(X[0]), ValueError,
     ["`x`", "(4,)", "(None, 4)", "reshape(1, -1)"], "same"),
    ("x_1d_evaluate", "cce", "evaluate", _ev(x=X[:, 0], y=Y), ValueError,
     ["`x`", "(10,)", "(None, 4)"], "same"),
    ("x_1d_unbuilt_train_on_batch", "unbuilt", "train_on_batch", _tob(X[:, 0], Y), ValueError,
     ["`x`", "(10,)", "(samples, features...)", "reshape(-1, 1)"], "same"),
    ("x_3d_fit", "cce", "fit", _fit(x=X.reshape(10, 2, 2), y=Y), ValueError,
     ["`x`", "(10, 2, 2)", "(None, 4)"], "same"),
    ("x_3d_predict", "cce", "predict", _pred(X.reshape(10, 1, 4)), ValueError,
     ["`x`", "(10, 1, 4)", "(None, 4)"], "same"),
    ("x_3d_unbuilt_fit", "unbuilt", "fit", _fit(x=X.reshape(10, 2, 2), y=Y), ValueError,
     ["`x`", "(10, 2, 2)", "(batch, features)", "Flatten"], "same"),
    ("x_3d_unbuilt_predict_on_batch", "unbuilt", "predict_on_batch", _pob(X.reshape(10, 2, 2)),
     ValueError, ["`x`", "(10, 2, 2)", "(batch, features)"],
     "returns (10, 2, 3): Dense on the last axis"),
    # targets that do not fit the output
    ("onehot_too_narrow_fit", "cce", "fit", _fit(x=X, y=Y[:, :2]), ValueError,
     ["`y`", "(10, 2)", "(10, 3)"], "same"),
    ("onehot_too_wide_evaluate", "cce", "evaluate", _ev(x=X, y=np.zeros((10, 4), np.float32)),
     ValueError, ["`y`", "(10, 4)", "(10, 3)"], "same"),
    ("onehot_wrong_train_on_batch", "cce", "train_on_batch",
     _tob(X, np.zeros((10, 4), np.float32)), ValueError, ["`y`", "(10, 4)", "(10, 3)"],
     "same"),
    ("labels_for_onehot_test_on_batch", "cce", "test_on_batch", _teob(X, LABELS), ValueError,
     ["`y`", "(10,)", "(10, 3)"], "same"),
    ("onehot_3d_fit", "cce", "fit", _fit(x=X, y=Y.reshape(10, 1, 3)), ValueError,
     ["`y`", "(10, 1, 3)", "(10, 3)"], "same"),
    # sparse labels
    ("sparse_label_too_large_fit", "scce", "fit", _fit(x=X, y=LABELS + 1), ValueError,
     ["`y`", "label value of 3", "[0, 3)"], "trains silently"),
    ("sparse_label_negative_fit", "scce", "fit", _fit(x=X, y=LABELS - 1), ValueError,
     ["`y`", "label value of -1", "[0, 3)"], "trains silently"),
    ("sparse_label_too_large_evaluate", "scce", "evaluate", _ev(x=X, y=LABELS * 5), ValueError,
     ["`y`", "label value of 10", "[0, 3)"], "returns a number"),
    ("sparse_label_train_on_batch", "scce", "train_on_batch",
     _tob(X, np.full(10, 100, np.int32)), ValueError, ["`y`", "100", "[0, 3)"],
     "trains silently"),
    ("sparse_label_nan", "scce", "evaluate", _ev(x=X, y=np.full(10, np.nan)), ValueError,
     ["`y`", "NaN", "[0, 3)"], "returns a number"),
    ("sparse_two_columns", "scce", "fit", _fit(x=X, y=np.zeros((10, 2), np.int64)),
     ValueError, ["`y`", "(10, 2)", "(10,)", "(10, 1)"], "same"),
    ("sparse_onehot_given", "scce", "test_on_batch", _teob(X, Y), ValueError,
     ["`y`", "(10, 3)", "categorical_crossentropy"], "same"),
    # batch_size
    ("batch_size_zero_fit", "cce", "fit", _fit(x=X, y=Y, batch_size=0), ValueError,
     ["batch_size", "0", "positive"], "trains with batch_size=32"),
    ("batch_size_negative_evaluate", "cce", "evaluate", _ev(x=X, y=Y, batch_size=-1),
     ValueError, ["batch_size", "-1", "positive"], "StopIteration"),
    ("batch_size_zero_predict", "cce", "predict", _pred(X, batch_size=0), ValueError,
     ["batch_size", "0", "positive"], "predicts with batch_size=32"),
    ("batch_size_float", "cce", "fit", _fit(x=X, y=Y, batch_size=2.5), TypeError,
     ["batch_size", "2.5", "integer"], "same"),
    ("validation_batch_size_zero", "cce", "fit",
     _fit(x=X, y=Y, validation_data=(X, Y), validation_batch_size=0), ValueError,
     ["validation_batch_size", "0", "positive"], "uses batch_size"),
    # epochs
    ("epochs_negative", "cce", "fit", _fit(x=X, y=Y, epochs=-1), ValueError,
     ["epochs", "-1", "non-negative"], "trains no epoch"),
    ("epochs_float", "cce", "fit", _fit(x=X, y=Y, epochs=1.5), TypeError,
     ["epochs", "1.5", "integer"], "same"),
    ("initial_epoch_negative", "cce", "fit", _fit(x=X, y=Y, initial_epoch=-2), ValueError,
     ["initial_epoch", "-2", "non-negative"], "runs epochs -2, -1 and 0"),
    # validation_split
    ("validation_split_one", "cce", "fit", _fit(x=X, y=Y, validation_split=1.0), ValueError,
     ["validation_split", "1.0", "[0, 1)"], "same"),
    ("validation_split_negative", "cce", "fit", _fit(x=X, y=Y, validation_split=-0.1),
     ValueError, ["validation_split", "-0.1", "[0, 1)"], "trains without validation"),
    ("validation_split_above_one", "cce", "fit", _fit(x=X, y=Y, validation_split=1.5),
     ValueError, ["validation_split", "1.5", "[0, 1)"], "trains without validation"),
    ("validation_split_string", "cce", "fit", _fit(x=X, y=Y, validation_split="0.1"),
     TypeError, ["validation_split", "'0.1'", "[0, 1)"], "same"),
    # validation_data
    ("validation_data_wrong_width", "cce", "fit",
     _fit(x=X, y=Y, validation_data=(X5[:4], Y[:4])), ValueError,
     ["`validation_data[0]`", "(4, 5)", "(None, 4)"], "same"),
    ("validation_data_wrong_target", "cce", "fit",
     _fit(x=X, y=Y, validation_data=(X[:4], Y[:4, :2])), ValueError,
     ["`validation_data[1]`", "(4, 2)", "(4, 3)"], "same"),
    ("validation_data_length_mismatch", "cce", "fit",
     _fit(x=X, y=Y, validation_data=(X[:4], Y[:3])), ValueError,
     ["'validation_data[0]' sizes: 4", "'validation_data[1]' sizes: 3"], "same"),
    ("validation_data_1d_x", "cce", "fit", _fit(x=X, y=Y, validation_data=(X[:4, 0], Y[:4])),
     ValueError, ["`validation_data[0]`", "(4,)", "(None, 4)"], "same"),
    ("validation_data_labels_out_of_range", "scce", "fit",
     _fit(x=X, y=LABELS, validation_data=(X, LABELS + 3)), ValueError,
     ["`validation_data[1]`", "label value of 5", "[0, 3)"], "trains silently"),
    ("validation_data_one_tuple", "cce", "fit", _fit(x=X, y=Y, validation_data=(X,)),
     ValueError, ["validation_data", "(x_val, y_val)", "length 1"], "same"),
    ("validation_data_bare_array", "cce", "fit", _fit(x=X, y=Y, validation_data=X),
     ValueError, ["validation_data", "(x_val, y_val)", "ndarray"], "same"),
    ("test_on_batch_sample_weight_length", "cce", "test_on_batch",
     _teob(X, Y, sample_weight=np.ones(len(X) + 1)), ValueError,
     ["sample_weight", f"({len(X)},)", f"({len(X) + 1},)"], "TypeError from a broadcast"),
]  # fmt: skip

_IDS = [c[0] for c in BAD_CASES]
assert len(set(_IDS)) == len(_IDS), "duplicate case ids"


def _raise_info(lib: Any, model: str, call: Callable[[Any], Any]) -> tuple[BaseException, Any]:
    m = MODELS[model](lib)
    with pytest.raises(Exception) as info:
        call(m)
    return info.value, m


@pytest.mark.parametrize(
    "model,call,exc_type,words,keras_does",
    [c[1:2] + c[3:] for c in BAD_CASES],
    ids=_IDS,
)
def test_bad_input_raises_clear_error(
    model: str,
    call: Callable[[Any], Any],
    exc_type: type,
    words: list[str],
    keras_does: str,
    kx: Any,
    keras_ref: Any,
) -> None:
    before = None
    m = MODELS[model](kx)
    if m.built:
        before = [np.array(w) for w in m.get_weights()]
    with pytest.raises(Exception) as info:
        call(m)
    err = info.value
    assert type(err) is exc_type, f"raised {type(err).__name__}: {err}"
    missing = [w for w in words if w not in str(err)]
    assert not missing, f"message lacks {missing}: {err}"
    # Nothing lost: a rejected call leaves every weight as it was.
    if before is not None:
        for a, b in zip(m.get_weights(), before, strict=True):
            np.testing.assert_array_equal(np.asarray(a), b)
    if keras_does == "same":
        kerr, _ = _raise_info(keras_ref, model, call)
        assert isinstance(kerr, exc_type), f"Keras raised {type(kerr).__name__}: {kerr}"


def test_at_least_forty_cases_over_every_entry_point() -> None:
    calls = {c[2] for c in BAD_CASES}
    assert len(BAD_CASES) >= 40
    assert calls == {
        "fit",
        "evaluate",
        "predict",
        "train_on_batch",
        "test_on_batch",
        "predict_on_batch",
    }


def test_reliability_doc_lists_every_case() -> None:
    # docs/reliability.md's table is written by hand from BAD_CASES: keep them in sync.
    text = DOC.read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z0-9_]+)` \| `([a-z_]+)` \|", text, flags=re.M))
    missing = [c[0] for c in BAD_CASES if c[0] not in rows]
    assert not missing, f"docs/reliability.md lacks rows for {missing}"
    stale = sorted(set(rows) - set(_IDS))
    assert not stale, f"docs/reliability.md lists cases that no longer exist: {stale}"
    wrong = [c[0] for c in BAD_CASES if rows[c[0]] != c[2]]
    assert not wrong, f"docs/reliability.md names the wrong call for {wrong}"


def test_rejected_targets_do_not_poison_metrics(kx: Any) -> None:
    # A fit refused for bad targets must not leave metrics resolved from those targets:
    # (10, 1) targets would pick sparse accuracy, and the next, correct call would then fail.
    m = kx.Sequential([kx.Input((4,)), kx.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    with pytest.raises(ValueError, match=r"\(10, 1\)"):
        m.fit(X, Y[:, :1], verbose=0)
    loss, acc = m.evaluate(X, Y, verbose=0)
    fresh = kx.Sequential([kx.Input((4,)), kx.layers.Dense(3, activation="softmax")])
    fresh.set_weights(m.get_weights())
    fresh.compile(optimizer="sgd", loss="categorical_crossentropy", metrics=["accuracy"])
    assert [loss, acc] == fresh.evaluate(X, Y, verbose=0)
    m.fit(X, Y, verbose=0, epochs=2)
    assert np.isfinite(m.evaluate(X, Y, verbose=0)[0])


def test_predict_on_batch_and_call_accept_an_empty_batch(kx: Any, keras_ref: Any) -> None:
    # Keras returns an empty batch of outputs here (only its `predict` fails).
    for lib in (keras_ref, kx):
        m = _cce(lib)
        assert np.asarray(m.predict_on_batch(X[:0])).shape == (0, 3)
    assert np.asarray(_cce(kx)(X[:0])).shape == (0, 3)


# --------------------------------------------------------------------------------------------
# Accepted inputs: dtypes convert as Keras converts them
# --------------------------------------------------------------------------------------------

SPEC = [("Dense", {"units": 5, "activation": "relu"}), ("Dense", {"units": 3})]
FIT = {"batch_size": 4, "epochs": 2, "shuffle": False, "verbose": 0}


def _trained(lib: Any, x: Any, y: Any, loss: str = "mse", start: Any = None) -> list:
    m = build_model(lib, SPEC, (4,))
    m.set_weights(start if start is not None else _START)
    m.compile(optimizer=lib.optimizers.SGD(0.05, momentum=0.5), loss=loss)
    m.fit(x, y, **FIT)
    return [np.asarray(w) for w in m.get_weights()]


_START = [
    np.random.default_rng(1).uniform(-0.5, 0.5, s).astype(np.float32)
    for s in [(4, 5), (5,), (5, 3), (3,)]
]
XI = np.random.default_rng(2).integers(-3, 4, size=(22, 4))
YR = np.random.default_rng(3).standard_normal((22, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "dtype", ["float64", "int64", "int32", "int8", "uint8", "uint16", "bool", "float16"]
)
def test_numeric_dtypes_train_like_float32(dtype: str, kx: Any) -> None:
    # Every float/int/bool dtype is read as its float32 value (Keras casts inputs to the
    # layer's float32 compute dtype): same weights as with the float32 array, bit for bit.
    x = np.abs(XI) if dtype.startswith("uint") else XI
    xd = (x > 0) if dtype == "bool" else x.astype(dtype)
    expected = _trained(kx, xd.astype(np.float32), YR)
    assert_weights_close(_trained(kx, xd, YR), expected, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", ["float64", "int64", "bool"])
def test_numeric_dtypes_match_keras(dtype: str, kx: Any, keras_ref: Any) -> None:
    x = (XI > 0) if dtype == "bool" else XI.astype(dtype)
    if dtype == "float64":
        x = x + np.random.default_rng(4).standard_normal(x.shape) * 1e-3
    assert_weights_close(_trained(kx, x, YR.astype(np.float64)), _trained(keras_ref, x, YR))


@pytest.mark.parametrize(
    "loss,y",
    [
        ("categorical_crossentropy", np.eye(3, dtype=np.int64)[np.arange(22) % 3]),
        ("categorical_crossentropy", np.eye(3, dtype=bool)[np.arange(22) % 3]),
        ("sparse_categorical_crossentropy", (np.arange(22) % 3).astype(np.uint8)),
        ("sparse_categorical_crossentropy", (np.arange(22) % 3).astype(np.int32)[:, None]),
        ("sparse_categorical_crossentropy", (np.arange(22) % 3).astype(np.float64)),
    ],
    ids=["onehot_int64", "onehot_bool", "labels_uint8", "labels_int32_column", "labels_float"],
)
def test_target_dtypes_train_like_float32(loss: str, y: np.ndarray, kx: Any) -> None:
    x = XI.astype(np.float32)
    ref = y.astype(np.int64) if loss.startswith("sparse") else y.astype(np.float32)
    assert_weights_close(_trained(kx, x, y, loss), _trained(kx, x, ref, loss), rtol=0, atol=0)


def test_fractional_sparse_labels_truncate_as_keras_casts(kx: Any) -> None:
    # Keras casts float labels to int (truncation toward zero): 1.7 is class 1.
    x = XI.astype(np.float32)
    labels = np.arange(22) % 3
    loss = "sparse_categorical_crossentropy"
    got = _trained(kx, x, labels + 0.7, loss)
    assert_weights_close(got, _trained(kx, x, labels, loss), rtol=0, atol=0)


# --------------------------------------------------------------------------------------------
# Accepted inputs: any memory layout, read in place
# --------------------------------------------------------------------------------------------


def _layouts(tmp_path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The same (x, y) values in many memory layouts."""
    x = XI.astype(np.float32)
    wide = np.zeros((22, 9), np.float32)
    wide[:, ::2][:, :4] = x
    tall = np.zeros((44, 4), np.float32)
    tall[::2] = x
    ro_x, ro_y = x.copy(), YR.copy()
    ro_x.flags.writeable = False
    ro_y.flags.writeable = False
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", YR)
    np.save(tmp_path / "xf.npy", np.asfortranarray(x))
    return {
        "fortran": (np.asfortranarray(x), np.asfortranarray(YR)),
        "column_stride": (wide[:, ::2][:, :4], YR),
        "row_stride": (tall[::2], YR),
        "reversed_rows": (x[::-1].copy()[::-1], YR[::-1].copy()[::-1]),
        "transposed_view": (np.ascontiguousarray(x.T).T, np.ascontiguousarray(YR.T).T),
        "read_only": (ro_x, ro_y),
        "mmap": (np.load(tmp_path / "x.npy", mmap_mode="r"), np.load(tmp_path / "y.npy", "r")),
        "mmap_fortran": (np.load(tmp_path / "xf.npy", mmap_mode="r"), YR),
        "float64_fortran_strided": (np.asfortranarray(np.repeat(x, 2, 0), np.float64)[::2], YR),
    }


def test_every_layout_trains_evaluates_and_predicts_identically(kx: Any, tmp_path: Path) -> None:
    x = XI.astype(np.float32)
    expected = _trained(kx, x, YR)
    m = build_model(kx, SPEC, (4,))
    m.set_weights(expected)
    m.compile(optimizer="sgd", loss="mse")
    exp_loss, exp_pred = m.evaluate(x, YR, verbose=0), m.predict(x, verbose=0)
    for name, (lx, ly) in _layouts(tmp_path).items():
        np.testing.assert_array_equal(np.asarray(lx, np.float32), x, err_msg=name)
        assert_weights_close(_trained(kx, lx, ly), expected, rtol=0, atol=0, what=name)
        assert m.evaluate(lx, ly, verbose=0) == exp_loss, name
        np.testing.assert_array_equal(m.predict(lx, verbose=0), exp_pred, err_msg=name)
        np.testing.assert_array_equal(m.predict_on_batch(lx), m.predict_on_batch(x), name)
    # Read-only and memory-mapped inputs are not written to.
    assert not _layouts(tmp_path)["read_only"][0].flags.writeable


def _peak_during(fn: Callable[[], Any]) -> int:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_mapped_file_is_not_copied(kx: Any, tmp_path: Path) -> None:
    # A 200 MiB float32 .npy read with mmap_mode="r": fit (with a validation split),
    # evaluate and predict never allocate anything near the array's size.
    n, d = 51_200, 1024
    path = tmp_path / "big.npy"
    big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, d))
    for s in range(0, n, 8192):
        big[s : s + 8192] = np.random.default_rng(s).standard_normal((min(8192, n - s), d))
    big.flush()
    del big
    x = np.load(path, mmap_mode="r")
    y = (np.arange(n) % 2).astype(np.float32)
    m = kx.Sequential([kx.Input((d,)), kx.layers.Dense(1, activation="sigmoid")])
    m.compile(optimizer="sgd", loss="binary_crossentropy")
    size = x.nbytes
    peak = _peak_during(
        lambda: m.fit(x, y, batch_size=1024, validation_split=0.1, shuffle=True, verbose=0)
    )
    assert peak < size / 20, f"fit allocated {peak / 2**20:.1f} MiB for a {size / 2**20} MiB x"
    peak = _peak_during(lambda: m.evaluate(x, y, batch_size=4096, verbose=0))
    assert peak < size / 20, f"evaluate allocated {peak / 2**20:.1f} MiB"
    peak = _peak_during(lambda: m.predict(x, batch_size=4096, verbose=0))
    assert peak < size / 20, f"predict allocated {peak / 2**20:.1f} MiB"
    assert isinstance(x, np.memmap) and not x.flags.writeable


@pytest.mark.parametrize("layout", ["fortran", "column_stride", "float64", "read_only"])
def test_large_in_memory_layouts_are_not_copied(layout: str, kx: Any) -> None:
    base = np.random.default_rng(5).standard_normal((20_000, 512))  # float64, 80 MB
    if layout == "fortran":
        x = np.asfortranarray(base, dtype=np.float32)
    elif layout == "column_stride":
        x = np.repeat(base.astype(np.float32), 2, axis=1)[:, ::2]
    elif layout == "float64":
        x = base
    else:
        x = base.astype(np.float32)
        x.flags.writeable = False
    y = (np.arange(len(x)) % 3).astype(np.int64)
    m = kx.Sequential([kx.Input((512,)), kx.layers.Dense(3, activation="softmax")])
    m.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    peak = _peak_during(lambda: m.fit(x, y, batch_size=500, verbose=0))
    assert peak < x.nbytes / 20, f"fit allocated {peak / 2**20:.1f} MiB for {layout}"


# --------------------------------------------------------------------------------------------
# Accepted inputs: lists and tuples
# --------------------------------------------------------------------------------------------


def test_one_array_in_a_list_or_tuple_is_the_input_as_in_keras(kx: Any, keras_ref: Any) -> None:
    # Keras takes `fit([x], [y])` / `predict((x,))` as the model's one input and target.
    x = XI.astype(np.float32)
    expected = _trained(kx, x, YR)
    assert_weights_close(_trained(kx, [x], [YR]), expected, rtol=0, atol=0)
    assert_weights_close(_trained(kx, (x,), (YR,)), expected, rtol=0, atol=0)
    assert_weights_close(_trained(keras_ref, [x], [YR]), expected)
    m = build_model(kx, SPEC, (4,))
    m.compile(optimizer="sgd", loss="mse")
    p = m.predict(x, verbose=0)
    np.testing.assert_array_equal(m.predict((x,), verbose=0), p)
    np.testing.assert_array_equal(m.predict_on_batch([x]), p)
    assert m.evaluate([x], [YR], verbose=0) == m.evaluate(x, YR, verbose=0)
    assert m.test_on_batch((x,), (YR,)) == m.test_on_batch(x, YR)
    h = m.fit(x, YR, validation_data=[x, YR], verbose=0)  # a list pair, as Keras allows
    assert "val_loss" in h.history


def test_nested_python_lists_are_arrays(kx: Any) -> None:
    # Keras refuses nested Python lists ("Unrecognized data type"); kerox reads them as the
    # array NumPy makes of them, so the numbers are those of the array.
    x = XI.astype(np.float32)
    expected = _trained(kx, x, YR)
    assert_weights_close(_trained(kx, x.tolist(), YR.tolist()), expected, rtol=0, atol=0)
    rows = tuple(tuple(r) for r in x.tolist())
    assert_weights_close(_trained(kx, rows, YR), expected, rtol=0, atol=0)
    labels = (np.arange(22) % 3).tolist()
    loss = "sparse_categorical_crossentropy"
    assert_weights_close(
        _trained(kx, x, labels, loss), _trained(kx, x, np.array(labels), loss), rtol=0, atol=0
    )
