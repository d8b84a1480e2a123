"""kerox.keras.initializers against Keras 3's formulas and real keras.initializers.

Oracles: (1) the closed-form limits / standard deviations of spec §2.3; (2) real Keras 3
(JAX backend): samples of the same initializer on the same shape must come from the same
distribution (two-sample Kolmogorov-Smirnov test; backends' RNGs differ, so values are not
compared bit for bit), and names, configs, serialization and error messages must match.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np
import pytest
from kerox import _random
from kerox.keras import initializers as ki
from kerox.keras import utils as kutils

os.environ.setdefault("KERAS_BACKEND", "jax")


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


SHAPE = (400, 300)  # fan_in 400, fan_out 300; 120,000 samples


def _ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic max |F_a - F_b|."""
    a, b = np.sort(a.ravel()), np.sort(b.ravel())
    grid = np.concatenate([a, b])
    fa = np.searchsorted(a, grid, side="right") / a.size
    fb = np.searchsorted(b, grid, side="right") / b.size
    return float(np.abs(fa - fb).max())


def _ks_critical(n: int, m: int, alpha: float = 1e-4) -> float:
    return math.sqrt(-math.log(alpha / 2) / 2) * math.sqrt((n + m) / (n * m))


# (kerox factory, keras factory name, kwargs, expected (kind, parameter) from spec §2.3)
FAN_AVG = (400 + 300) / 2
CASES = {
    "glorot_uniform": ("GlorotUniform", {}, ("uniform", math.sqrt(3 / FAN_AVG))),
    "glorot_normal": ("GlorotNormal", {}, ("truncated", math.sqrt(1 / FAN_AVG))),
    "he_uniform": ("HeUniform", {}, ("uniform", math.sqrt(6 / 400))),
    "he_normal": ("HeNormal", {}, ("truncated", math.sqrt(2 / 400))),
    "lecun_uniform": ("LecunUniform", {}, ("uniform", math.sqrt(3 / 400))),
    "lecun_normal": ("LecunNormal", {}, ("truncated", math.sqrt(1 / 400))),
    "random_normal": ("RandomNormal", {"mean": 0.3, "stddev": 0.2}, ("normal", 0.2)),
    "random_uniform": ("RandomUniform", {"minval": -0.2, "maxval": 0.6}, ("range", (-0.2, 0.6))),
    "truncated_normal": ("TruncatedNormal", {"stddev": 1.0}, ("truncated_raw", 1.0)),
    "vs_fan_out_untruncated": (
        "VarianceScaling",
        {"scale": 3.0, "mode": "fan_out", "distribution": "untruncated_normal"},
        ("normal", math.sqrt(3.0 / 300)),
    ),
    "vs_fan_avg_normal_alias": (
        "VarianceScaling",
        {"scale": 0.5, "mode": "fan_avg", "distribution": "normal"},
        ("truncated", math.sqrt(0.5 / FAN_AVG)),
    ),
    "vs_uniform": (
        "VarianceScaling",
        {"scale": 2.0, "mode": "fan_in", "distribution": "uniform"},
        ("uniform", math.sqrt(3 * 2.0 / 400)),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_distribution_matches_keras(case):
    keras = _keras()
    cls_name, kwargs, _ = CASES[case]
    ours = getattr(ki, cls_name)(seed=7, **kwargs)(SHAPE)
    theirs = np.asarray(getattr(keras.initializers, cls_name)(seed=7, **kwargs)(SHAPE))
    assert ours.shape == theirs.shape == SHAPE
    assert ours.dtype == np.float32
    d = _ks_statistic(ours, theirs)
    assert d < _ks_critical(ours.size, theirs.size), f"KS statistic {d}"
    if CASES[case][2][0] != "normal":  # bounded support: same extremes up to sampling noise
        assert ours.min() >= theirs.min() - 0.01 * theirs.std()
        assert ours.max() <= theirs.max() + 0.01 * theirs.std()


@pytest.mark.parametrize("case", sorted(CASES))
def test_statistics_match_formulas(case):
    cls_name, kwargs, (kind, param) = CASES[case]
    x = getattr(ki, cls_name)(seed=11, **kwargs)(SHAPE).astype(np.float64)
    mean = kwargs.get("mean", 0.0)
    if kind == "uniform":
        assert -param <= x.min() and x.max() < param
        assert x.max() > 0.999 * param and x.min() < -0.999 * param
        assert x.std() == pytest.approx(param / math.sqrt(3), rel=0.01)
    elif kind == "range":
        lo, hi = param
        assert lo <= x.min() and x.max() < hi
        assert x.mean() == pytest.approx((lo + hi) / 2, abs=0.005)
    elif kind == "normal":
        assert x.std() == pytest.approx(param, rel=0.01)
        assert x.mean() == pytest.approx(mean, abs=0.01 * param)
        assert np.abs(x - mean).max() > 4 * param  # untruncated tails exist
    elif kind == "truncated":  # VarianceScaling: std after truncation is the target
        bound = 2 * param / ki.TRUNCATED_STD
        assert np.abs(x).max() <= bound * (1 + 1e-6)
        assert np.abs(x).max() > 0.99 * bound
        assert x.std() == pytest.approx(param, rel=0.01)
    elif kind == "truncated_raw":  # TruncatedNormal: std is 0.8796 * stddev
        assert np.abs(x - mean).max() <= 2 * param * (1 + 1e-6)
        assert x.std() == pytest.approx(ki.TRUNCATED_STD * param, rel=0.01)


def test_conv_fans_match_keras():
    _keras()
    from keras.src.initializers.random_initializers import compute_fans

    for shape in [(), (7,), (3, 5), (3, 3, 16, 32), (2, 3, 4, 5, 6)]:
        assert ki.compute_fans(shape) == compute_fans(shape)
    assert ki.compute_fans((4, 5, 6), [0, 1], [2]) == compute_fans((4, 5, 6), [0, 1], [2])
    x = ki.HeUniform(seed=1)((3, 3, 16, 32))
    assert np.abs(x).max() < math.sqrt(6 / (3 * 3 * 16))


CONFIG_CASES = [
    ("Zeros", {}),
    ("Ones", {}),
    ("Constant", {}),
    ("Constant", {"value": 3.5}),
    ("RandomNormal", {}),
    ("RandomNormal", {"mean": 1.0, "stddev": 2.0, "seed": 3}),
    ("RandomUniform", {"minval": 0.0, "maxval": 2.0, "seed": 4}),
    ("RandomUniform", {}),
    ("TruncatedNormal", {"seed": 9}),
    ("VarianceScaling", {}),
    ("VarianceScaling", {"scale": 2.0, "mode": "fan_avg", "distribution": "UNIFORM", "seed": 1}),
    ("GlorotUniform", {}),
    ("GlorotNormal", {"seed": 5}),
    ("HeUniform", {}),
    ("HeNormal", {}),
    ("LecunUniform", {}),
    ("LecunNormal", {"seed": 0}),
    ("Orthogonal", {}),
    ("Orthogonal", {"gain": 2.0, "seed": 3}),
    ("OrthogonalInitializer", {"gain": 0.5}),
]


@pytest.mark.parametrize("cls_name, kwargs", CONFIG_CASES)
def test_config_and_serialization_match_keras(cls_name, kwargs):
    keras = _keras()
    ours = getattr(ki, cls_name)(**kwargs)
    theirs = getattr(keras.initializers, cls_name)(**kwargs)
    assert ours.get_config() == theirs.get_config()
    assert list(ours.get_config()) == list(theirs.get_config())
    assert ki.serialize(ours) == keras.initializers.serialize(theirs)
    # Keras's serialized dict deserializes to an equal kerox initializer.
    back = ki.get(keras.initializers.serialize(theirs))
    assert type(back) is type(ours) and back.get_config() == ours.get_config()
    assert type(ours.clone()) is type(ours) and ours.clone().get_config() == ours.get_config()


STRING_IDS = [
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "random_normal",
    "random_uniform",
    "truncated_normal",
    "variance_scaling",
    "zeros",
    "zero",
    "ones",
    "one",
    "normal",
    "uniform",
    "GlorotUniform",
    "Zeros",
    "Initializer",
]


@pytest.mark.parametrize("identifier", STRING_IDS)
def test_get_string_matches_keras(identifier):
    keras = _keras()
    ours, theirs = ki.get(identifier), keras.initializers.get(identifier)
    assert type(ours).__name__ == type(theirs).__name__
    assert ours.get_config() == theirs.get_config()


def test_get_other_identifiers():
    assert ki.get(None) is None
    init = ki.HeNormal(seed=1)
    assert ki.get(init) is init
    assert isinstance(ki.get(ki.Ones), ki.Ones)
    fn = lambda shape, dtype=None: np.full(shape, 7.0, np.float32)  # noqa: E731
    assert ki.get(fn) is fn
    # Keras 3.15 raises KeyError('value') for get("constant"); kerox gives Constant(0.0).
    c = ki.get("constant")
    assert isinstance(c, ki.Constant) and c.get_config() == {"value": 0.0}
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.testing.assert_array_equal(ki.get(arr)((2, 3)), arr)
    with pytest.raises(ValueError, match="Expected `shape` to be"):
        ki.get(arr)((3, 2))
    assert ki.get({"class_name": "RandomNormal", "config": {"stddev": 2.0}}).stddev == 2.0
    assert ki.get({"class_name": "random_normal", "config": {"stddev": 2.0}}).stddev == 2.0


@pytest.mark.parametrize(
    "identifier", ["foo", 3, {"class_name": "Foo", "config": {}}, "glorot", "glorotUniform"]
)
def test_get_errors_match_keras(identifier):
    keras = _keras()
    with pytest.raises(ValueError) as theirs:
        keras.initializers.get(identifier)
    with pytest.raises(ValueError) as ours:
        ki.get(identifier)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.VarianceScaling(scale=0.0),
        lambda m: m.VarianceScaling(scale=-1.0),
        lambda m: m.VarianceScaling(distribution="gamma"),
        lambda m: m.RandomNormal(seed="x"),
        lambda m: m.GlorotUniform(seed=1.5),
        lambda m: m.Orthogonal(seed="x"),
        lambda m: m.Orthogonal(gain=2.0, seed=[1]),
    ],
)
def test_validation_errors_match_keras(make):
    keras = _keras()
    with pytest.raises(ValueError) as theirs:
        make(keras.initializers)
    with pytest.raises(ValueError) as ours:
        make(ki)
    assert _sets_sorted(str(ours.value)) == _sets_sorted(str(theirs.value))


def _sets_sorted(message: str) -> str:
    """``message`` with each printed set of strings in sorted order.

    Keras prints Python sets, whose order depends on the hash seed and on the process that
    compiled the module, so two correct messages can list the same names in another order.
    """

    def one(match: re.Match[str]) -> str:
        names = re.findall(r"'([^']*)'", match.group(0))
        return "{" + ", ".join(repr(n) for n in sorted(names)) + "}"

    return re.sub(r"\{'[^{}]*'\}", one, message)


def test_sets_sorted_normalizes_only_order():
    assert _sets_sorted("one of {'b', 'a'}") == _sets_sorted("one of {'a', 'b'}")
    assert _sets_sorted("one of {'b', 'a'}") != _sets_sorted("one of {'a', 'c'}")


def test_invalid_mode_message():
    keras = _keras()
    with pytest.raises(ValueError) as theirs:
        keras.initializers.VarianceScaling(mode="fan_x")
    with pytest.raises(ValueError) as ours:
        ki.VarianceScaling(mode="fan_x")
    assert _sets_sorted(str(ours.value)) == _sets_sorted(str(theirs.value))


@pytest.mark.parametrize(
    "cls_name", ["RandomNormal", "TruncatedNormal", "GlorotUniform", "Orthogonal"]
)
def test_seeding_semantics(cls_name):
    cls = getattr(ki, cls_name)
    seeded = cls(seed=42)
    np.testing.assert_array_equal(seeded((5, 4)), seeded((5, 4)))  # same object: same values
    np.testing.assert_array_equal(seeded((5, 4)), cls(seed=42)((5, 4)))  # same seed
    assert not np.array_equal(seeded((5, 4)), cls(seed=43)((5, 4)))
    unseeded = cls()
    np.testing.assert_array_equal(unseeded((5, 4)), unseeded((5, 4)))  # Keras 3 semantics
    assert not np.array_equal(unseeded((5, 4)), cls()((5, 4)))  # different objects differ
    assert unseeded.get_config()["seed"] is None


def test_global_seed_makes_unseeded_reproducible():
    try:
        kutils.set_random_seed(123)
        first = [ki.GlorotUniform()((3, 3)), ki.RandomNormal()((4,))]
        kutils.set_random_seed(123)
        second = [ki.GlorotUniform()((3, 3)), ki.RandomNormal()((4,))]
    finally:
        _random._reset()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], ki.GlorotUniform()((3, 3)))


def test_constants_and_dtypes():
    np.testing.assert_array_equal(ki.Zeros()((2, 3)), np.zeros((2, 3), np.float32))
    np.testing.assert_array_equal(ki.Ones()(4), np.ones(4, np.float32))
    np.testing.assert_array_equal(ki.Constant(2.5)((2,)), [2.5, 2.5])
    for init in [ki.Zeros(), ki.Ones(), ki.Constant(1), ki.HeNormal(), ki.RandomUniform()]:
        assert init((3, 2)).dtype == np.float32
        assert init((3, 2), dtype="float64").dtype == np.float64
    with pytest.raises(ValueError):
        ki.RandomNormal()((2,), dtype="int32")


def test_uniform_upper_bound_is_exclusive():
    x = ki.RandomUniform(minval=1.0, maxval=1.0000002, seed=0)((100000,))
    assert x.max() < np.float32(1.0000002)
    assert (ki.RandomUniform(seed=1)((200000,)) < np.float32(0.05)).all()


# --------------------------------------------------------------------------------------------
# Orthogonal and Identity (keras/src/initializers/random_initializers.py, constant_initializers.py)
# --------------------------------------------------------------------------------------------


def _flat(w: np.ndarray) -> np.ndarray:
    """Keras's flattening for Orthogonal: ``(prod(shape[:-1]), shape[-1])``."""
    return w.reshape(-1, w.shape[-1]).astype(np.float64)


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (4, 4), (2, 3, 4)])
@pytest.mark.parametrize("gain", [1.0, 2.5, -0.5])
def test_orthogonal_is_orthogonal(shape, gain):
    w = ki.Orthogonal(gain=gain, seed=3)(shape)
    assert w.shape == shape and w.dtype == np.float32
    m = _flat(w)
    rows, cols = m.shape
    # rows >= cols: orthonormal columns (W^T W); rows < cols: orthonormal rows (W W^T).
    gram = m.T @ m if rows >= cols else m @ m.T
    np.testing.assert_allclose(gram, gain**2 * np.eye(min(rows, cols)), atol=2e-6 * gain**2)
    assert not np.allclose(m, gain * np.eye(rows, cols))  # random, not the identity


def test_orthogonal_dtype_and_empty_shapes():
    w = ki.Orthogonal(seed=1)((6, 4), dtype="float64")
    assert w.dtype == np.float64
    np.testing.assert_allclose(w.T @ w, np.eye(4), atol=1e-12)  # exact to float64 rounding
    assert ki.Orthogonal(seed=1)((0, 3)).shape == (0, 3)
    with pytest.raises(ValueError):
        ki.Orthogonal(seed=1)((3, 3), dtype="int32")


def test_orthogonal_global_seed_makes_unseeded_reproducible():
    try:
        kutils.set_random_seed(7)
        first = [ki.Orthogonal()((4, 4)), ki.get("orthogonal")((3, 5))]
        kutils.set_random_seed(7)
        second = [ki.Orthogonal()((4, 4)), ki.get("orthogonal")((3, 5))]
    finally:
        _random._reset()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], ki.Orthogonal()((4, 4)))


def test_orthogonal_distribution_matches_keras():
    """Entries of a 256x256 orthogonal matrix, ours vs Keras's (Haar measure).

    Sampling-error bounds (n = 256, 4 matrices per library):
    - the entries' std is 1/16 (sum of squares is exactly n);
    - the two pooled entry samples pass a two-sample KS test;
    - the trace of a Haar orthogonal matrix has mean 0 and variance 1, so the mean trace over
      4 matrices has std 0.5 (difference of the two libraries' means: std 0.71); without the
      sign correction by diag(R) the trace is about -8;
    - each diagonal entry is positive with probability 1/2 (1024 entries: std 0.016); without
      the sign correction about 23% are.
    """
    keras = _keras()
    shape, seeds = (256, 256), [11, 12, 13, 14]
    ours = np.stack([ki.Orthogonal(seed=s)(shape) for s in seeds]).astype(np.float64)
    theirs = np.stack(
        [np.asarray(keras.initializers.Orthogonal(seed=s)(shape)) for s in seeds]
    ).astype(np.float64)
    for w in (ours, theirs):
        assert w.std() == pytest.approx(1 / 16, rel=2e-3)
    d = _ks_statistic(ours, theirs)
    assert d < _ks_critical(ours.size, theirs.size), f"KS statistic {d}"
    traces = {
        name: float(np.trace(w, axis1=1, axis2=2).mean())
        for name, w in (("ours", ours), ("keras", theirs))
    }
    assert abs(traces["keras"]) < 2.5, traces  # the oracle obeys the bound
    assert abs(traces["ours"]) < 2.5, traces
    assert abs(traces["ours"] - traces["keras"]) < 3.6, traces
    for w in (ours, theirs):
        positive = float((np.diagonal(w, axis1=1, axis2=2) > 0).mean())
        assert abs(positive - 0.5) < 0.08, positive


def test_orthogonal_gain_scales_keras_formula():
    # Same seed, gain g: exactly g times the gain-1 matrix (the gain is applied last).
    base = ki.Orthogonal(seed=5)((6, 4), dtype="float64")
    np.testing.assert_allclose(ki.Orthogonal(gain=3.0, seed=5)((6, 4), "float64"), 3.0 * base)
    # A (2, 3, 4) kernel is the (6, 4) matrix reshaped (Keras flattens all but the last axis).
    np.testing.assert_allclose(ki.Orthogonal(seed=5)((2, 3, 4), "float64"), base.reshape(2, 3, 4))


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2), (1, 1)])
@pytest.mark.parametrize("gain", [1.0, 0.5, -3.0, 2])
def test_identity_matches_keras(shape, gain):
    keras = _keras()
    ours = ki.Identity(gain=gain)(shape)
    theirs = np.asarray(keras.initializers.Identity(gain=gain)(shape))
    assert ours.dtype == np.float32 and ours.shape == shape
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours, np.float32(gain) * np.eye(*shape, dtype=np.float32))
    assert ki.Identity(gain=gain)(shape, dtype="float64").dtype == np.float64


def test_identity_config_keeps_gain():
    keras = _keras()
    ours = ki.Identity(gain=2.5)
    # Keras 3.15's Identity has no get_config (returns {}); kerox keeps the gain, and Keras
    # reads kerox's serialized form back with the same gain.
    assert keras.initializers.Identity(gain=2.5).get_config() == {}
    assert ours.get_config() == {"gain": 2.5}
    assert ki.serialize(ours) == {
        "module": "keras.initializers",
        "class_name": "Identity",
        "config": {"gain": 2.5},
        "registered_name": None,
    }
    assert keras.initializers.deserialize(ki.serialize(ours)).gain == 2.5
    back = ki.deserialize(ki.serialize(ours))
    assert type(back) is ki.Identity and back.gain == 2.5
    # Keras's own serialized Identity ({}) loads as gain 1.0, as in Keras.
    theirs = keras.initializers.serialize(keras.initializers.Identity(gain=2.5))
    assert ki.get(theirs).gain == keras.initializers.deserialize(theirs).gain == 1.0
    assert ki.get("identity").get_config() == {"gain": 1.0}
    assert ki.get("IdentityInitializer")((2, 2)).tolist() == [[1.0, 0.0], [0.0, 1.0]]


def _keras_alias_table():
    _keras()
    from keras.src.initializers import ALL_OBJECTS_DICT

    # STFT (conv kernels for spectrograms) is not a dense-layer initializer: kerox omits it.
    return {k: v for k, v in ALL_OBJECTS_DICT.items() if v.__name__ != "STFT"}


def test_every_keras_alias_resolves_to_the_same_class():
    keras = _keras()
    table = _keras_alias_table()
    assert {"orthogonal", "OrthogonalInitializer", "identity", "IdentityInitializer"} <= set(table)
    for name, cls in table.items():
        ours = ki.get(name)
        assert type(ours).__name__ == cls.__name__, name
        assert type(ki.get({"class_name": name, "config": {}})).__name__ == cls.__name__, name
        if cls.__name__ == "Constant":  # Keras 3.15: get("constant") raises KeyError('value')
            continue
        theirs = keras.initializers.get(name)
        if cls.__name__ != "Identity":  # see test_identity_config_keeps_gain
            assert ours.get_config() == theirs.get_config(), name
    # Names Keras does not know are rejected, as by Keras.
    for name in ["Orthogonalinitializer", "ortho", "eye", "IDENTITY"]:
        with pytest.raises(ValueError, match="Could not interpret initializer identifier"):
            ki.get(name)
        with pytest.raises(ValueError, match="Could not interpret initializer identifier"):
            keras.initializers.get(name)


def test_module_attributes_match_keras():
    keras = _keras()
    public = [n for n in dir(keras.initializers) if not n.startswith("_")]
    for name in public:
        obj = getattr(keras.initializers, name)
        if isinstance(obj, type):
            if obj.__name__ == "STFT":
                continue
            ours = getattr(ki, name)
            assert ours is getattr(ki, obj.__name__), name
            assert ours.__name__ == obj.__name__, name
        else:  # get / serialize / deserialize
            assert callable(getattr(ki, name)), name
        assert name in ki.__all__, name
    for name in ki.__all__:
        assert hasattr(ki, name), name


@pytest.mark.parametrize(
    "make, shape",
    [
        (lambda m: m.Orthogonal(seed=1), (3,)),
        (lambda m: m.Orthogonal(seed=1), ()),
        (lambda m: m.Identity(), (3,)),
        (lambda m: m.Identity(), (2, 3, 4)),
        (lambda m: m.Identity(), ()),
    ],
)
def test_bad_shapes_match_keras(make, shape):
    keras = _keras()
    with pytest.raises(ValueError) as theirs:
        make(keras.initializers)(shape)
    with pytest.raises(ValueError) as ours:
        make(ki)(shape)
    assert str(ours.value) == str(theirs.value)


@pytest.mark.parametrize("cls_name", ["Orthogonal", "Identity"])
@pytest.mark.parametrize("gain", [float("nan"), float("inf"), -float("inf"), "2", None, True])
def test_bad_gain_raises(cls_name, gain):
    with pytest.raises(ValueError, match="`gain`"):
        getattr(ki, cls_name)(gain=gain)


@pytest.mark.parametrize("init", ["orthogonal", "identity"])
def test_dense_with_orthogonal_or_identity_kernel_trains(init):
    keras = _keras()
    import kerox.keras as kx

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 5)).astype(np.float32)
    y = rng.standard_normal((16, 3)).astype(np.float32)
    model = kx.Sequential([kx.Input((5,)), kx.layers.Dense(3, kernel_initializer=init)])
    kernel, bias = model.get_weights()
    assert kernel.shape == (5, 3)
    np.testing.assert_array_equal(bias, np.zeros(3, np.float32))
    if init == "orthogonal":
        np.testing.assert_allclose(kernel.T.astype(np.float64) @ kernel, np.eye(3), atol=2e-6)
    else:
        np.testing.assert_array_equal(kernel, np.eye(5, 3, dtype=np.float32))
    layer_config = model.layers[-1].get_config()["kernel_initializer"]
    keras_config = keras.layers.Dense(3, kernel_initializer=init).get_config()
    if init == "orthogonal":
        assert layer_config == keras_config["kernel_initializer"]
    assert layer_config["class_name"] == keras_config["kernel_initializer"]["class_name"]

    lr = 0.1
    model.compile(optimizer=kx.optimizers.SGD(lr), loss="mse")
    history = model.fit(x, y, batch_size=16, epochs=1, shuffle=False, verbose=0)
    # One full-batch SGD step on MSE, by hand (float64): loss at the initial weights, then
    # W -= lr * 2/(N*units) x^T (xW + b - y), b -= lr * 2/(N*units) sum(xW + b - y).
    w0, x64, y64 = kernel.astype(np.float64), x.astype(np.float64), y.astype(np.float64)
    err = x64 @ w0 - y64
    assert history.history["loss"][0] == pytest.approx(float(np.mean(err**2)), rel=1e-5)
    grad_scale = 2.0 / err.size
    new_kernel, new_bias = model.get_weights()
    np.testing.assert_allclose(new_kernel, w0 - lr * grad_scale * x64.T @ err, atol=1e-5)
    np.testing.assert_allclose(new_bias, -lr * grad_scale * err.sum(axis=0), atol=1e-5)
