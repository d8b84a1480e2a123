"""Saving and loading, checked against real Keras 3 (JAX backend) in both directions.

Every file kerox writes is opened by real Keras and every file real Keras writes is opened by
kerox; what comes out is compared with what went in *and* with what Keras itself does:

1. kerox → Keras: a trained kerox model saved as ``.keras`` opens in ``keras.models.load_model``
   with the same predictions, weights and optimizer state (iteration, learning rate, momentum
   slots equal to those of a Keras twin trained identically) and continues training exactly as
   the kerox original does.
2. Keras → kerox: the same, the other way; ``compile=False`` gives an uncompiled model.
3. Coverage: layers, build modes, losses, metrics and SGD options, each taken through
   kerox → Keras → kerox and Keras → kerox → Keras. The archives are compared with the ones
   real Keras writes for the same model (zip members, ``config.json``, ``model.weights.h5``
   layout), and continued training from every reloaded state is compared.
4. ``.weights.h5`` files both ways, with the HDF5 layout of real Keras.
5. Legacy ``.h5``: files written by Keras 3 (``save("m.h5")``, legacy ``save_weights``) and
   hand-made Keras 2 files (keras-spec §8.3), topological and ``by_name`` loading.
6. ``get_config`` / ``from_config`` / ``to_json`` / ``model_from_json`` against Keras.

Known, unavoidable differences between a kerox-written and a Keras-written description of the
same model are normalised in one place (``_normalise_config`` / ``_normalise_attr``); each is
explained there. Nothing else is normalised.

Sizes are tiny (96 training samples, widths <= 16, one epoch, then one more) to keep the
suite fast on a shared 2-core machine.
"""

from __future__ import annotations

import copy
import io
import json
import re
import subprocess
import sys
import warnings
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import pytest
from conftest import (
    assert_weights_close,
    initial_weights,
    make_data,
    make_loss,
    make_optimizer,
    max_abs_diff,
)

h5py = pytest.importorskip("h5py")

N_TRAIN = 96  # 6 batches of 16
N_MORE = 64  # data for the continued epoch (4 batches of 16)
N_TEST = 40
BATCH = 16
D = 8
CLASSES = 4
# kerox-vs-Keras agreement of predictions from identical weights (inference only)
P_RTOL, P_ATOL = 1e-5, 1e-6


# --------------------------------------------------------------------------------------------
# Model descriptions (names are always explicit: auto-names depend on process-wide counters)
# --------------------------------------------------------------------------------------------


def dense(name, units, activation=None, **kw):
    return ("Dense", dict(units=units, activation=activation, name=name, **kw))


def bn(name="bn", **kw):
    return ("BatchNormalization", dict(name=name, **kw))


def act(name, activation):
    return ("Activation", dict(activation=activation, name=name))


HEAD4 = dense("head", CLASSES, "softmax")
BASE = [dense("fc1", 16, "relu"), bn(), HEAD4]


def build(lib, spec, input_shape=(D,), mode="input", name="seq"):
    """Sequential named ``name`` from ``spec``.

    mode: "input" (``keras.Input(shape, name="inp")`` first), "input_shape" (legacy
    ``input_shape=`` on the first layer), "deferred" (no input shape: built by the first fit),
    "unbuilt" (same as deferred; the caller never trains it).
    """
    layers = []
    for i, (kind, kw) in enumerate(spec):
        kw = dict(kw)
        if i == 0 and mode == "input_shape":
            kw["input_shape"] = tuple(input_shape)
        layers.append(getattr(lib.layers, kind)(**kw))
    if mode == "input":
        layers = [lib.Input(shape=tuple(input_shape), name="inp"), *layers]
    return lib.Sequential(layers, name=name)


# --------------------------------------------------------------------------------------------
# Normalisation of unavoidable differences, and structural comparison
# --------------------------------------------------------------------------------------------


def _norm_opt_name(name):
    # Keras auto-names optimizers per process ("sgd", "sgd_1", "sgd_2", ...). The counter is an
    # accident of how many optimizers this test process created; the base name is not.
    return re.sub(r"_\d+$", "", name) if isinstance(name, str) else name


def _normalise_config(cfg, auto_input_name=False):
    """Deep copy of a Keras object config with the unavoidable differences removed:

    * ``shared_object_id`` (Keras writes ``id(obj)`` of the shared DTypePolicy: a memory
      address, different in every process) is dropped wherever it appears;
    * the optimizer name loses its per-process counter suffix (see ``_norm_opt_name``);
    * with ``auto_input_name`` (model built without an explicit ``keras.Input``), the
      auto-generated InputLayer name ("input_layer", "input_layer_3", ...) is replaced by a
      placeholder: it comes from a per-process counter in each library;
    * tuples become lists (JSON has only lists; an in-memory ``get_config()`` of Keras holds
      some shapes as tuples). Container types of in-memory configs are checked separately, in
      ``test_get_config_shape_types_match_keras``.
    """
    cfg = json.loads(json.dumps(cfg))  # deep copy; tuples -> lists

    def walk(obj):
        if isinstance(obj, dict):
            obj.pop("shared_object_id", None)
            if obj.get("module") == "keras.optimizers" and isinstance(obj.get("config"), dict):
                obj["config"]["name"] = _norm_opt_name(obj["config"].get("name"))
            if (
                auto_input_name
                and obj.get("class_name") == "InputLayer"
                and isinstance(obj.get("config"), dict)
            ):
                obj["config"]["name"] = "<auto>"
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(cfg)
    return cfg


def config_diff(got, want, path="$"):
    """All differences between two JSON-like objects, as readable lines (empty: equal).

    Dict key order is not compared (JSON objects are unordered); list order is.
    """
    out = []
    if isinstance(want, dict) and isinstance(got, dict):
        for k in want:
            if k not in got:
                out.append(f"{path}.{k}: missing in kerox (Keras: {json.dumps(want[k])[:120]})")
            else:
                out += config_diff(got[k], want[k], f"{path}.{k}")
        for k in got:
            if k not in want:
                out.append(f"{path}.{k}: extra in kerox ({json.dumps(got[k])[:120]})")
    elif isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            out.append(f"{path}: kerox has {len(got)} entries, Keras {len(want)}")
        for i, (g, w) in enumerate(zip(got, want)):
            out += config_diff(g, w, f"{path}[{i}]")
    elif type(got) is not type(want) and not (
        isinstance(got, (int, float))
        and isinstance(want, (int, float))
        and not isinstance(got, bool)
        and not isinstance(want, bool)
    ):
        out.append(f"{path}: kerox {got!r} ({type(got).__name__}) != Keras {want!r}")
    elif got != want:
        out.append(f"{path}: kerox {got!r} != Keras {want!r}")
    return out


def assert_same_opt_config(got_optimizer, want_optimizer):
    wrap = lambda o: {"module": "keras.optimizers", "config": o.get_config()}  # noqa: E731
    assert_same_config(wrap(got_optimizer), wrap(want_optimizer), "optimizer config")


def assert_same_config(got, want, what, auto_input_name=False):
    diff = config_diff(
        _normalise_config(got, auto_input_name), _normalise_config(want, auto_input_name)
    )
    assert not diff, f"{what} differs from Keras:\n  " + "\n  ".join(diff[:40])


def _normalise_attr(key, value, path):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.ndarray):
        value = [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
    if key == "name" and path.startswith("optimizer"):
        value = _norm_opt_name(value)
    return value


def h5_layout(f):
    """{path: ("group", attrs) | ("dataset", shape, dtype)} of an open HDF5 file."""
    out = {"/": ("group", {k: _normalise_attr(k, v, "") for k, v in f.attrs.items()})}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", tuple(obj.shape), str(obj.dtype))
        else:
            attrs = {k: _normalise_attr(k, v, name) for k, v in obj.attrs.items()}
            out[name] = ("group", attrs)

    f.visititems(visit)
    return out


def h5_values(f):
    out = {}
    f.visititems(
        lambda name, obj: (
            out.__setitem__(name, np.asarray(obj)) if isinstance(obj, h5py.Dataset) else None
        )
    )
    return out


# The optimizer's iteration counter: Keras writes int64 with the TensorFlow backend (kerox
# follows TF, the reference backend) and int32 with JAX (the backend these tests run).
_ITERATION_DTYPES = {"int32", "int64"}


def _same_entry(key, got, want):
    if key == "optimizer/vars/0" and got[:2] == want[:2]:
        return {got[2], want[2]} <= _ITERATION_DTYPES
    return got == want


def assert_same_layout(got, want, what):
    problems = []
    for k in sorted(set(got) | set(want)):
        if k not in got:
            problems.append(f"{k}: missing in kerox's file (Keras: {want[k]})")
        elif k not in want:
            problems.append(f"{k}: extra in kerox's file ({got[k]})")
        elif not _same_entry(k, got[k], want[k]):
            problems.append(f"{k}: kerox {got[k]} != Keras {want[k]}")
    assert not problems, f"{what}: HDF5 layout differs from Keras:\n  " + "\n  ".join(problems)


class Archive:
    """The three members of a ``.keras`` zip file."""

    def __init__(self, path):
        with zipfile.ZipFile(path) as z:
            self.names = z.namelist()
            self.metadata = json.loads(z.read("metadata.json"))
            self.config = json.loads(z.read("config.json"))
            raw = z.read("model.weights.h5")
        self.h5 = h5py.File(io.BytesIO(raw), "r")
        self.layout = h5_layout(self.h5)
        self.values = h5_values(self.h5)


def assert_archive_like_keras(got: Archive, want: Archive, auto_input_name=False):
    assert got.names == want.names, f"zip members {got.names} != Keras {want.names}"
    # Keras's keys must be there; an extra key (kerox writes "kerox_version") is harmless:
    # Keras's loader reads only `keras_version`.
    missing = set(want.metadata) - set(got.metadata)
    assert not missing, f"metadata.json lacks {sorted(missing)} (Keras: {want.metadata})"
    assert re.fullmatch(r"3\.\d+\.\d+.*", str(got.metadata["keras_version"])), got.metadata
    assert re.fullmatch(r"\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d", got.metadata["date_saved"]), got.metadata
    assert_same_config(got.config, want.config, "config.json", auto_input_name)
    assert_same_layout(got.layout, want.layout, "model.weights.h5")


# --------------------------------------------------------------------------------------------
# Keras helpers
# --------------------------------------------------------------------------------------------


@contextmanager
def keras_loads_everything():
    """Real Keras only *warns* when it skips optimizer variables or objects it cannot load;
    here that is a failure (it would mean kerox wrote a state Keras does not accept)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    bad = [
        str(w.message)
        for w in caught
        if "Skipping" in str(w.message) or "could not be loaded" in str(w.message)
    ]
    assert not bad, "Keras did not load everything:\n" + "\n".join(bad)


def opt_values(keras_model):
    return [np.asarray(v) for v in keras_model.optimizer.variables]


def opt_labels(keras_model):
    # Slot names embed the variable path, which includes the model name for a model built in
    # this process ("sgd/seq_fc1_kernel_momentum") but not for one rebuilt by load_model
    # ("sgd/fc1_kernel_momentum", also when Keras loads its own archive): drop that prefix.
    model = keras_model.name
    return [
        re.sub(r"_\d+/", "/", v.path.replace(f"/{model}_", "/"), count=1)
        for v in keras_model.optimizer.variables
    ]


def predict(model, x):
    return np.asarray(model.predict(x, batch_size=BATCH, verbose=0))


def assert_predict_equal(got, want, what="predict"):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    np.testing.assert_allclose(got, want, rtol=P_RTOL, atol=P_ATOL, err_msg=what)


def assert_exact(got, want, what):
    assert_weights_close(got, want, rtol=0, atol=0, what=what)


def fit(model, x, y, epochs=1):
    return model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)


# --------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------

MOMENTUM = {"learning_rate": 0.05, "momentum": 0.9}


@dataclass
class Case:
    id: str
    arch: list = field(default_factory=lambda: list(BASE))
    target: str = "onehot"
    loss: object = "categorical_crossentropy"
    optimizer: object = field(default_factory=lambda: dict(MOMENTUM))
    metrics: list | None = field(default_factory=lambda: ["accuracy"])
    input_shape: tuple = (D,)
    mode: str = "input"
    randomize_bn: bool = False
    stochastic: bool = False  # active Dropout: kerox and Keras draw different masks

    @property
    def same_start(self):
        # A deferred model has no weights before its first fit, so the twins cannot be given
        # the same start; everything that does not need equal starts is still checked.
        return self.mode == "input" or self.mode == "input_shape"

    @property
    def twins(self):
        return self.same_start and not self.stochastic


def data(case, n, seed):
    x, y = make_data(n, int(np.prod(case.input_shape)), case.target, seed=seed, classes=CLASSES)
    return x.reshape((n, *case.input_shape)), y


def compile_model(lib, model, case):
    model.compile(
        optimizer=make_optimizer(lib, case.optimizer),
        loss=make_loss(lib, case.loss),
        metrics=None if case.metrics is None else list(case.metrics),
    )


def trained_twins(kx, keras, case):
    """kerox and Keras models of ``case`` after one identical epoch (same start weights when
    the build mode allows it)."""
    km = build(kx, case.arch, case.input_shape, case.mode)
    rm = build(keras, case.arch, case.input_shape, case.mode)
    if case.same_start:
        km.set_weights(initial_weights(case.arch, case.input_shape, 0, case.randomize_bn))
        rm.set_weights(km.get_weights())
    compile_model(kx, km, case)
    compile_model(keras, rm, case)
    x, y = data(case, N_TRAIN, seed=1)
    fit(km, x, y)
    fit(rm, x, y)
    return km, rm


SIG1 = dense("head", 1, "sigmoid")
LIN4 = dense("head", CLASSES)
ACT_PAIRS = [
    ("linear", "relu"),
    ("sigmoid", "tanh"),
    ("softmax", "elu"),
    ("selu", "gelu"),
    ("softplus", "silu"),
    ("swish", None),
]

CASES = [
    Case("base_dense_bn_momentum"),
    Case("dense_no_bias", arch=[dense("fc1", 16, "relu", use_bias=False), HEAD4]),
    *[
        Case(
            f"act_{a}_{b}",
            arch=[dense("h1", 12, a), dense("h2", 8, b), HEAD4],
            optimizer={"learning_rate": 0.05},
        )
        for a, b in ACT_PAIRS
    ],
    Case(
        "bn_momentum_epsilon",
        arch=[dense("fc1", 16, "relu"), bn(momentum=0.9, epsilon=0.01), HEAD4],
        randomize_bn=True,
    ),
    Case(
        "bn_center_false_scale_false",
        arch=[dense("fc1", 16, "relu"), bn("bn1", center=False), bn("bn2", scale=False), HEAD4],
        randomize_bn=True,
    ),
    Case(
        "bn_no_affine_first",
        arch=[bn("bn0", center=False, scale=False, momentum=0.8), dense("fc1", 12, "relu"), HEAD4],
    ),
    Case(
        "bn_frozen",
        arch=[dense("fc1", 16, "relu"), bn(trainable=False), HEAD4],
        randomize_bn=True,
    ),
    Case(
        "activation_layers",
        arch=[dense("fc1", 12), act("a1", "tanh"), dense("fc2", CLASSES), act("a2", "softmax")],
    ),
    Case(
        "dropout_seeded",
        arch=[dense("fc1", 16, "relu"), ("Dropout", {"rate": 0.25, "seed": 7, "name": "drop"})]
        + [HEAD4],
        stochastic=True,
    ),
    Case(
        "flatten_3d_input",
        arch=[("Flatten", {"name": "flat"}), dense("fc1", 12, "relu"), bn(), HEAD4],
        input_shape=(2, 4),
    ),
    Case("mode_input_shape", mode="input_shape"),
    Case("mode_deferred_build", mode="deferred"),
    # ---- losses and metrics ----
    Case("loss_sparse_str", target="sparse", loss="sparse_categorical_crossentropy"),
    Case(
        "loss_bce_str",
        arch=[dense("fc1", 16, "relu"), bn(), SIG1],
        target="binary",
        loss="binary_crossentropy",
    ),
    Case(
        "loss_mse_str_no_metrics",
        arch=[dense("fc1", 16, "tanh"), dense("head", 3)],
        target="regression",
        loss="mse",
        metrics=None,
    ),
    Case(
        "loss_mse_class",
        arch=[dense("fc1", 16, "tanh"), dense("head", 3)],
        target="regression",
        loss=("MeanSquaredError", {}),
        metrics=[],
    ),
    Case("loss_cce_class_smoothing", loss=("CategoricalCrossentropy", {"label_smoothing": 0.1})),
    Case(
        "loss_cce_class_logits",
        arch=[dense("fc1", 16, "relu"), LIN4],
        loss=("CategoricalCrossentropy", {"from_logits": True}),
    ),
    Case(
        "loss_sparse_class_logits",
        arch=[dense("fc1", 16, "relu"), LIN4],
        target="sparse",
        loss=("SparseCategoricalCrossentropy", {"from_logits": True}),
    ),
    Case(
        "loss_bce_class_logits_smoothing",
        arch=[dense("fc1", 16, "relu"), dense("head", 1)],
        target="binary",
        loss=("BinaryCrossentropy", {"from_logits": True, "label_smoothing": 0.2}),
    ),
    # ---- SGD options ----
    Case("sgd_plain", optimizer={"learning_rate": 0.05}),
    Case("sgd_constructor_defaults", optimizer={}),
    Case("sgd_string", optimizer="sgd"),
    Case("sgd_nesterov", optimizer={"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    Case("sgd_weight_decay", optimizer={"learning_rate": 0.05, "weight_decay": 0.02}),
    Case("sgd_clipnorm", optimizer={"learning_rate": 0.1, "clipnorm": 0.1}),
    Case("sgd_clipvalue", optimizer={"learning_rate": 0.1, "clipvalue": 0.02}),
    Case(
        "sgd_global_clipnorm_momentum",
        optimizer={"learning_rate": 0.1, "momentum": 0.5, "global_clipnorm": 0.2},
    ),
    Case(
        "sgd_custom_lr_named",
        optimizer={"learning_rate": 0.0123, "momentum": 0.3, "name": "my_sgd"},
    ),
]


# --------------------------------------------------------------------------------------------
# 1. kerox → Keras
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_kerox_archive_opens_in_keras_with_full_state(nesterov, kx, keras_ref, tmp_path):
    keras = keras_ref
    case = Case(
        "full_state",
        arch=[dense("fc1", 16, "relu"), bn(), dense("fc2", 8, "relu"), HEAD4],
        optimizer={"learning_rate": 0.05, "momentum": 0.9, "nesterov": nesterov},
        randomize_bn=True,
    )
    km, rm = trained_twins(kx, keras, case)
    xt, _ = data(case, N_TEST, seed=3)
    path = tmp_path / "m.keras"
    km.save(str(path))

    with keras_loads_everything():
        loaded = keras.models.load_model(str(path))
    assert type(loaded).__name__ == "Sequential"
    assert [ly.name for ly in loaded.layers] == [ly.name for ly in rm.layers]
    assert_exact(loaded.get_weights(), km.get_weights(), "Keras-loaded weights vs kerox")
    assert_predict_equal(predict(loaded, xt), predict(km, xt), "Keras-loaded predict vs kerox")

    # Optimizer: same configuration and the state a Keras twin has after the same epoch.
    opt = loaded.optimizer
    assert type(opt).__name__ == "SGD"
    assert float(opt.momentum) == 0.9 and bool(opt.nesterov) is nesterov
    assert opt_labels(loaded) == opt_labels(rm), "optimizer variable list differs"
    got, want = opt_values(loaded), opt_values(rm)
    assert int(got[0]) == int(want[0]) == N_TRAIN // BATCH, f"iterations {got[0]} / {want[0]}"
    assert got[0].dtype == want[0].dtype, f"iteration dtype {got[0].dtype} != {want[0].dtype}"
    assert float(got[1]) == float(want[1]), f"learning_rate {got[1]} != {want[1]}"
    assert_weights_close(
        got[2:], want[2:], labels=opt_labels(rm)[2:], what="momentum slots (vs Keras twin)"
    )
    assert min(float(np.abs(m).max()) for m in want[2:]) > 1e-4, "momentum slots are ~0"

    # One more epoch in both: the Keras-loaded model continues as the kerox original does.
    x2, y2 = data(case, N_MORE, seed=2)
    fit(loaded, x2, y2)
    fit(km, x2, y2)
    fit(rm, x2, y2)
    assert_weights_close(km.get_weights(), loaded.get_weights(), what="continued training")
    assert_weights_close(km.get_weights(), rm.get_weights(), what="continued (Keras twin)")

    # Contrast: the same weights with a fresh optimizer end clearly elsewhere, so the
    # comparison above really depends on the saved momentum.
    fresh = keras.models.load_model(str(path), compile=False)
    compile_model(keras, fresh, case)
    fit(fresh, x2, y2)
    assert max_abs_diff(fresh.get_weights(), rm.get_weights()) > 1e-3


# --------------------------------------------------------------------------------------------
# 2. Keras → kerox
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nesterov", [False, True], ids=["momentum", "nesterov"])
def test_keras_archive_opens_in_kerox_and_continues(nesterov, kx, keras_ref, tmp_path):
    keras = keras_ref
    case = Case(
        "keras_to_kerox",
        optimizer={"learning_rate": 0.05, "momentum": 0.9, "nesterov": nesterov},
        randomize_bn=True,
    )
    rm = build(keras, case.arch, case.input_shape)
    rm.set_weights(initial_weights(case.arch, case.input_shape, 3, True))
    compile_model(keras, rm, case)
    x, y = data(case, N_TRAIN, seed=1)
    fit(rm, x, y)
    path = tmp_path / "k.keras"
    rm.save(str(path))
    xt, _ = data(case, N_TEST, seed=3)

    km = kx.models.load_model(str(path))
    assert isinstance(km, kx.Sequential)
    assert km.name == rm.name
    assert [ly.name for ly in km.layers] == [ly.name for ly in rm.layers]
    assert [type(ly).__name__ for ly in km.layers] == [type(ly).__name__ for ly in rm.layers]
    assert_exact(km.get_weights(), rm.get_weights(), "kerox-loaded weights vs Keras")
    assert_predict_equal(predict(km, xt), predict(rm, xt), "kerox-loaded predict vs Keras")
    assert km.compiled
    opt = km.optimizer
    assert isinstance(opt, kx.optimizers.SGD)
    assert opt.iterations == int(rm.optimizer.iterations) == N_TRAIN // BATCH
    assert np.float32(opt.learning_rate) == np.float32(rm.optimizer.learning_rate)
    assert opt.momentum == 0.9 and opt.nesterov is nesterov
    assert opt.get_config() == rm.optimizer.get_config()

    x2, y2 = data(case, N_MORE, seed=2)
    fit(km, x2, y2)
    fit(rm, x2, y2)
    assert_weights_close(km.get_weights(), rm.get_weights(), what="continued training")
    assert km.optimizer.iterations == int(rm.optimizer.iterations)


def test_keras_archive_compile_false(kx, keras_ref, tmp_path):
    keras = keras_ref
    case = Case("compile_false")
    rm = build(keras, case.arch, case.input_shape)
    compile_model(keras, rm, case)
    x, y = data(case, N_TRAIN, seed=1)
    fit(rm, x, y)
    path = str(tmp_path / "k.keras")
    rm.save(path)

    # What Keras does: an uncompiled model whose fit() asks for compile().
    rl = keras.models.load_model(path, compile=False)
    with pytest.raises(ValueError, match="compile"):
        rl.fit(x, y, verbose=0)

    for load in (kx.models.load_model, kx.saving.load_model):
        km = load(path, compile=False)
        assert not km.compiled
        with pytest.raises(ValueError, match="must call `compile"):
            km.fit(x, y, verbose=0)
        assert_exact(km.get_weights(), rm.get_weights(), "weights with compile=False")
        assert_predict_equal(predict(km, x), predict(rm, x))


def test_saving_api_is_reachable_from_the_keras_namespace():
    # `from kerox import keras; keras.saving.load_model(...)` must work in a fresh process.
    code = (
        "from kerox import keras\n"
        "assert callable(keras.saving.load_model)\n"
        "assert callable(keras.models.load_model)\n"
        "assert callable(keras.models.model_from_json)\n"
        "assert callable(keras.Sequential.from_config)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


# --------------------------------------------------------------------------------------------
# 3. Coverage: kerox → Keras → kerox and Keras → kerox → Keras
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_roundtrip_both_ways(case, kx, keras_ref, tmp_path):
    keras = keras_ref
    auto_input = case.mode != "input"
    km, rm = trained_twins(kx, keras, case)
    xt, _ = data(case, N_TEST, seed=3)
    a, b = str(tmp_path / "kerox.keras"), str(tmp_path / "keras.keras")
    km.save(a)
    rm.save(b)

    arch_a, arch_b = Archive(a), Archive(b)
    if case.twins:
        names = sorted(arch_b.values)
        got = [arch_a.values.get(k, np.zeros(0)) for k in names]
        want = [arch_b.values[k] for k in names]
        assert_weights_close(got, want, labels=names, what="archived values")

    # kerox → Keras
    with keras_loads_everything():
        rl_a = keras.models.load_model(a)
    assert_exact(rl_a.get_weights(), km.get_weights(), "Keras-loaded kerox weights")
    assert_predict_equal(predict(rl_a, xt), predict(km, xt), "Keras-loaded kerox model")
    assert int(rl_a.optimizer.iterations) == km.optimizer.iterations == N_TRAIN // BATCH
    assert float(rl_a.optimizer.learning_rate) == float(np.float32(km.optimizer.learning_rate))
    assert_same_opt_config(rl_a.optimizer, rm.optimizer)
    if case.twins:
        assert_weights_close(
            opt_values(rl_a), opt_values(rm), labels=opt_labels(rm), what="optimizer state"
        )

    # Keras → kerox
    km_b = kx.models.load_model(b)
    assert_exact(km_b.get_weights(), rm.get_weights(), "kerox-loaded Keras weights")
    assert_predict_equal(predict(km_b, xt), predict(rm, xt), "kerox-loaded Keras model")
    assert km_b.optimizer.iterations == int(rm.optimizer.iterations)
    assert km_b.optimizer.get_config() == rm.optimizer.get_config()

    # Keras → kerox → Keras: kerox keeps Keras's description and the whole state.
    c = str(tmp_path / "keras_kerox.keras")
    km_b.save(c)
    assert_same_config(Archive(c).config, arch_b.config, "re-saved config.json")
    with keras_loads_everything():
        rl_c = keras.models.load_model(c)
    assert_exact(rl_c.get_weights(), rm.get_weights(), "Keras→kerox→Keras weights")
    assert_exact(opt_values(rl_c), opt_values(rm), "Keras→kerox→Keras optimizer state")

    # kerox → Keras → kerox
    d = str(tmp_path / "kerox_keras.keras")
    rl_a.save(d)
    km_d = kx.models.load_model(d)
    assert_exact(km_d.get_weights(), km.get_weights(), "kerox→Keras→kerox weights")
    assert_predict_equal(predict(km_d, xt), predict(km, xt), "kerox→Keras→kerox predict")
    assert km_d.optimizer.iterations == km.optimizer.iterations

    # Continued training from every reloaded state (dropout masks differ between the
    # libraries, so a stochastic model cannot be compared after training).
    if not case.stochastic:
        x2, y2 = data(case, N_MORE, seed=2)
        for m in (km, rl_a, km_d, rm, km_b):
            fit(m, x2, y2)
        assert_weights_close(rl_a.get_weights(), km.get_weights(), what="kerox state in Keras")
        assert_weights_close(km_d.get_weights(), km.get_weights(), what="kerox→Keras→kerox")
        assert_weights_close(km_b.get_weights(), rm.get_weights(), what="Keras state in kerox")

    # Last (so that the functional checks above report first): the kerox archive looks like
    # the one Keras writes for the same model.
    assert_archive_like_keras(arch_a, arch_b, auto_input_name=auto_input)


@pytest.mark.parametrize("direction", ["kerox_to_keras", "keras_to_kerox"])
def test_unbuilt_model_archive(direction, kx, keras_ref, tmp_path):
    keras = keras_ref
    spec = [dense("a", 4, "relu"), bn("n"), dense("b", 2)]
    src, dst = (kx, keras) if direction == "kerox_to_keras" else (keras, kx)
    m = build(src, spec, mode="unbuilt", name="never_built")
    path = str(tmp_path / "u.keras")
    m.save(path)
    ref = build(keras, spec, mode="unbuilt", name="never_built")
    ref_path = str(tmp_path / "ref.keras")
    ref.save(ref_path)
    if direction == "kerox_to_keras":
        assert_archive_like_keras(Archive(path), Archive(ref_path))
    loaded = dst.models.load_model(path)
    assert not loaded.built
    assert [ly.name for ly in loaded.layers] == ["a", "n", "b"]
    assert_same_config(loaded.get_config(), ref.get_config(), "unbuilt model config")
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    assert predict(loaded, x).shape == (5, 2)


# --------------------------------------------------------------------------------------------
# 4. `.weights.h5`
# --------------------------------------------------------------------------------------------

WEIGHT_ARCHS = {
    "dense_bn": BASE,
    "bn_frozen": [dense("fc1", 16, "relu"), bn(trainable=False), HEAD4],
    "no_bias_no_affine": [
        dense("fc1", 16, "relu", use_bias=False),
        bn(center=False, scale=False),
        ("Dropout", {"rate": 0.0, "name": "drop"}),
        HEAD4,
    ],
    "flatten": [("Flatten", {"name": "flat"}), dense("fc1", 12, "relu"), bn(), HEAD4],
}


def _weights_case(arch_id):
    shape = (2, 4) if arch_id == "flatten" else (D,)
    return Case(arch_id, arch=WEIGHT_ARCHS[arch_id], input_shape=shape, randomize_bn=True)


@pytest.mark.parametrize("arch_id", list(WEIGHT_ARCHS))
def test_weights_h5_both_ways(arch_id, kx, keras_ref, tmp_path):
    keras = keras_ref
    case = _weights_case(arch_id)
    km, rm = trained_twins(kx, keras, case)
    kw, rw = str(tmp_path / "kerox.weights.h5"), str(tmp_path / "keras.weights.h5")
    km.save_weights(kw)
    rm.save_weights(rw)
    with h5py.File(kw, "r") as fk, h5py.File(rw, "r") as fr:
        assert_same_layout(h5_layout(fk), h5_layout(fr), "save_weights file")
        vk, vr = h5_values(fk), h5_values(fr)
    names = sorted(vr)
    assert_weights_close([vk[n] for n in names], [vr[n] for n in names], labels=names)

    # kerox file → Keras: an uncompiled model gets the weights ...
    fresh = build(keras, case.arch, case.input_shape)
    with keras_loads_everything():
        fresh.load_weights(kw)
    assert_exact(fresh.get_weights(), km.get_weights(), "Keras load_weights(kerox file)")
    # ... and a model with a built optimizer also gets the optimizer state.
    withopt = build(keras, case.arch, case.input_shape)
    compile_model(keras, withopt, case)
    withopt.optimizer.build(withopt.trainable_variables)
    with keras_loads_everything():
        withopt.load_weights(kw)
    assert_weights_close(
        opt_values(withopt), opt_values(rm), labels=opt_labels(rm), what="optimizer state"
    )

    # Keras file → kerox
    back = build(kx, case.arch, case.input_shape)
    back.load_weights(rw)
    assert_exact(back.get_weights(), rm.get_weights(), "kerox load_weights(Keras file)")
    xt, _ = data(case, N_TEST, seed=3)
    assert_predict_equal(predict(back, xt), predict(rm, xt))


def test_load_weights_reads_keras_archive(kx, keras_ref, tmp_path):
    keras = keras_ref
    case = Case("weights_from_archive")
    rm = build(keras, case.arch)
    rm.set_weights(initial_weights(case.arch, case.input_shape, 5, True))
    path = str(tmp_path / "k.keras")
    rm.save(path)
    km = build(kx, case.arch)
    km.load_weights(path)
    assert_exact(km.get_weights(), rm.get_weights(), "load_weights(.keras)")


def test_weights_errors_match_keras(kx, keras_ref, tmp_path):
    keras = keras_ref
    case = Case("errors")
    rm, km = build(keras, case.arch), build(kx, case.arch)
    # save_weights needs the `.weights.h5` suffix in both.
    with pytest.raises(ValueError, match=r"weights\.h5"):
        rm.save_weights(str(tmp_path / "r.h5"))
    with pytest.raises(ValueError, match=r"weights\.h5"):
        km.save_weights(str(tmp_path / "k.h5"))
    # A file from another architecture is rejected, not half-loaded.
    other = [dense("fc1", 12, "relu"), bn(), HEAD4]
    src = build(keras, other)
    wpath = str(tmp_path / "other.weights.h5")
    src.save_weights(wpath)
    with pytest.raises(ValueError):
        build(keras, case.arch).load_weights(wpath)
    before = km.get_weights()
    with pytest.raises(ValueError):
        km.load_weights(wpath)
    assert_exact(km.get_weights(), before, "weights after a rejected load")
    # by_name only exists for legacy .h5 files.
    ok = str(tmp_path / "ok.weights.h5")
    rm.save_weights(ok)
    with pytest.raises(ValueError, match="by_name"):
        build(keras, case.arch).load_weights(ok, by_name=True)
    with pytest.raises(ValueError, match="by_name"):
        km.load_weights(ok, by_name=True)


# --------------------------------------------------------------------------------------------
# 5. Legacy `.h5`
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch_id", ["dense_bn", "bn_frozen"])
def test_keras3_legacy_h5_model_file(arch_id, kx, keras_ref, tmp_path):
    keras = keras_ref
    # Plain SGD. Keras 3.15's legacy loader compiles the model but builds its optimizer on no
    # variables: it restores no momentum slots, and `fit` on the loaded model even raises
    # ("optimizer was built with 0 variables"). The oracle for continued training is therefore
    # Keras's documented meaning of the file: the stored weights, compiled from the stored
    # training_config (SGD with the stored learning rate, fresh state).
    case = Case(
        arch_id,
        arch=WEIGHT_ARCHS[arch_id],
        optimizer={"learning_rate": 0.07},
        randomize_bn=True,
    )
    rm = build(keras, case.arch)
    rm.set_weights(initial_weights(case.arch, case.input_shape, 2, True))
    compile_model(keras, rm, case)
    x, y = data(case, N_TRAIN, seed=1)
    fit(rm, x, y)
    path = str(tmp_path / "m.h5")
    rm.save(path)
    xt, _ = data(case, N_TEST, seed=3)

    # load_weights into a model whose layer names differ (topological matching).
    renamed = [(k, {**kw, "name": kw["name"] + "_x"}) for k, kw in case.arch]
    km = build(kx, renamed)
    km.load_weights(path)
    assert_exact(km.get_weights(), rm.get_weights(), "load_weights(legacy .h5)")

    # load_model: architecture, weights and compile state, as Keras's own load_model.
    rl = keras.models.load_model(path)
    oracle = keras.models.load_model(path, compile=False)
    oracle.compile(
        optimizer=rl.optimizer.__class__.from_config(rl.optimizer.get_config()),
        loss=rl.loss,
        metrics=["accuracy"],
    )
    loaded = kx.models.load_model(path)
    assert [ly.name for ly in loaded.layers] == [ly.name for ly in rl.layers]
    assert_same_config(loaded.get_config(), rl.get_config(), "legacy-loaded config")
    assert_exact(loaded.get_weights(), rm.get_weights(), "load_model(legacy .h5)")
    assert_predict_equal(predict(loaded, xt), predict(rm, xt))
    assert loaded.compiled
    assert np.float32(loaded.optimizer.learning_rate) == np.float32(rl.optimizer.learning_rate)
    x2, y2 = data(case, N_MORE, seed=2)
    fit(loaded, x2, y2)
    fit(oracle, x2, y2)
    assert_weights_close(loaded.get_weights(), oracle.get_weights(), what="continued from .h5")

    not_compiled = kx.models.load_model(path, compile=False)
    assert not not_compiled.compiled
    assert_exact(not_compiled.get_weights(), rm.get_weights(), "compile=False weights")


def test_keras3_legacy_h5_uncompiled_and_weights_only(kx, keras_ref, tmp_path):
    keras = keras_ref
    from keras.src.legacy.saving import legacy_h5_format

    case = Case("legacy_weights", randomize_bn=True)
    rm = build(keras, case.arch)
    rm.set_weights(initial_weights(case.arch, case.input_shape, 4, True))
    # Never compiled: no training_config; Keras loads it uncompiled.
    full = str(tmp_path / "uncompiled.h5")
    rm.save(full)
    assert not getattr(keras.models.load_model(full), "compiled", False)
    loaded = kx.models.load_model(full)
    assert not loaded.compiled
    assert_exact(loaded.get_weights(), rm.get_weights(), "uncompiled legacy model")
    # Weights-only legacy file (what Keras 2's save_weights("w.h5") wrote).
    wpath = str(tmp_path / "w.h5")
    with h5py.File(wpath, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, rm)
    km = build(kx, case.arch)
    km.load_weights(wpath)
    assert_exact(km.get_weights(), rm.get_weights(), "legacy weights-only file")


def _keras2_weights_file(path, bn_trainable=True, full_model=False):
    """A Keras 2.x HDF5 file written by hand after keras-spec §8.3.

    Layers: dense (8→16, relu), batch_normalization, dropout, dense_1 (16→4, softmax).
    Returns {layer name: [arrays in weight_names order]}.
    """
    rng = np.random.default_rng(42)
    arrays = {
        "dense": [rng.standard_normal((D, 16)), rng.standard_normal(16)],
        "batch_normalization": [
            rng.uniform(0.5, 1.5, 16),
            rng.uniform(-0.5, 0.5, 16),
            rng.uniform(-0.5, 0.5, 16),
            rng.uniform(0.5, 2.0, 16),
        ],
        "dropout": [],
        "dense_1": [rng.standard_normal((16, CLASSES)), rng.standard_normal(CLASSES)],
    }
    arrays = {k: [np.asarray(a, dtype=np.float32) for a in v] for k, v in arrays.items()}
    suffixes = {
        "dense": ["kernel", "bias"],
        "batch_normalization": ["gamma", "beta", "moving_mean", "moving_variance"],
        "dropout": [],
        "dense_1": ["kernel", "bias"],
    }
    order = ["dense", "batch_normalization", "dropout", "dense_1"]
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if full_model else f
        root.attrs["layer_names"] = [n.encode() for n in order]
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.15.0"
        for name in sorted(order):  # Keras 2 creates the groups in name-sorted order
            g = root.create_group(name)
            wn = [f"{name}/{s}:0" for s in suffixes[name]]
            g.attrs["weight_names"] = [w.encode() for w in wn]
            for w, arr in zip(wn, arrays[name]):
                g.create_dataset(w, data=arr)  # "dense/kernel:0" → nested dense/dense/kernel:0
        top = root.create_group("top_level_model_weights")
        top.attrs["weight_names"] = np.array([], dtype="S")
        if full_model:
            f.attrs["backend"] = b"tensorflow"
            f.attrs["keras_version"] = b"2.15.0"
            f.attrs["model_config"] = json.dumps(_keras2_model_config(bn_trainable)).encode()
    return arrays


def _keras2_model_config(bn_trainable):
    init = {"class_name": "GlorotUniform", "config": {"seed": None}}
    zeros = {"class_name": "Zeros", "config": {}}
    ones = {"class_name": "Ones", "config": {}}

    def dense_cfg(name, units, activation, first=False):
        cfg = {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": init,
            "bias_initializer": zeros,
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        }
        if first:
            cfg["batch_input_shape"] = [None, D]
        return {"class_name": "Dense", "config": cfg}

    layers = [
        {
            "class_name": "InputLayer",
            "config": {
                "batch_input_shape": [None, D],
                "dtype": "float32",
                "sparse": False,
                "ragged": False,
                "name": "dense_input",
            },
        },
        dense_cfg("dense", 16, "relu", first=True),
        {
            "class_name": "BatchNormalization",
            "config": {
                "name": "batch_normalization",
                "trainable": bn_trainable,
                "dtype": "float32",
                "axis": [1],
                "momentum": 0.9,
                "epsilon": 0.01,
                "center": True,
                "scale": True,
                "beta_initializer": zeros,
                "gamma_initializer": ones,
                "moving_mean_initializer": zeros,
                "moving_variance_initializer": ones,
                "beta_regularizer": None,
                "gamma_regularizer": None,
                "beta_constraint": None,
                "gamma_constraint": None,
            },
        },
        {
            "class_name": "Dropout",
            "config": {
                "name": "dropout",
                "trainable": True,
                "dtype": "float32",
                "rate": 0.3,
                "noise_shape": None,
                "seed": None,
            },
        },
        dense_cfg("dense_1", CLASSES, "softmax"),
    ]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


K2_SPEC = [
    dense("dense", 16, "relu"),
    bn("batch_normalization"),
    ("Dropout", {"rate": 0.3, "name": "dropout"}),
    dense("dense_1", CLASSES, "softmax"),
]


@pytest.mark.parametrize("bn_trainable", [True, False], ids=["bn", "bn_frozen"])
def test_keras2_handmade_weights_file(bn_trainable, kx, keras_ref, tmp_path):
    keras = keras_ref
    path = str(tmp_path / "k2.h5")
    arrays = _keras2_weights_file(path)
    expected = [a for name in ["dense", "batch_normalization", "dense_1"] for a in arrays[name]]
    # Topological: the model's layer names do not matter.
    spec = [
        dense("p", 16, "relu"),
        bn("q", trainable=bn_trainable),
        ("Dropout", {"rate": 0.3, "name": "r"}),
        dense("s", CLASSES, "softmax"),
    ]
    ref = build(keras, spec)
    ref.load_weights(path)
    assert_exact(ref.get_weights(), expected, "Keras reading the hand-made file (sanity)")
    km = build(kx, spec)
    km.load_weights(path)
    assert_exact(km.get_weights(), expected, "kerox load_weights(Keras 2 file)")


def test_keras2_handmade_weights_by_name(kx, keras_ref, tmp_path):
    keras = keras_ref
    path = str(tmp_path / "k2.h5")
    arrays = _keras2_weights_file(path)
    # Fewer layers than the file: topological loading refuses, by_name matches names.
    spec = [dense("dense", 16, "relu"), dense("dense_1", CLASSES, "softmax")]
    for lib in (keras, kx):
        with pytest.raises(ValueError):
            build(lib, spec).load_weights(path)
    expected = arrays["dense"] + arrays["dense_1"]
    ref = build(keras, spec)
    ref.load_weights(path, by_name=True)
    assert_exact(ref.get_weights(), expected, "Keras by_name (sanity)")
    km = build(kx, spec)
    km.load_weights(path, by_name=True)
    assert_exact(km.get_weights(), expected, "kerox by_name")

    # Layers in another order plus one the file does not have: only names count.
    spec2 = [
        dense("dense", 16, "relu"),
        bn("not_in_file"),
        bn("batch_normalization"),
        dense("dense_1", CLASSES, "softmax"),
    ]
    ref2, km2 = build(keras, spec2), build(kx, spec2)
    start = ref2.get_weights()
    km2.set_weights(start)
    ref2.load_weights(path, by_name=True)
    km2.load_weights(path, by_name=True)
    assert_exact(km2.get_weights(), ref2.get_weights(), "kerox by_name vs Keras by_name")
    assert_exact(km2.get_weights()[2:6], start[2:6], "layer not in the file is untouched")


@pytest.mark.parametrize("bn_trainable", [True, False], ids=["bn", "bn_frozen"])
def test_keras2_handmade_model_file(bn_trainable, kx, keras_ref, tmp_path):
    keras = keras_ref
    path = str(tmp_path / "k2_model.h5")
    arrays = _keras2_weights_file(path, bn_trainable=bn_trainable, full_model=True)
    rl = keras.models.load_model(path)  # the oracle reads it
    km = kx.models.load_model(path)
    assert not km.compiled  # no training_config in the file
    assert [type(ly).__name__ for ly in km.layers] == [type(ly).__name__ for ly in rl.layers]
    assert_same_config(km.get_config(), rl.get_config(), "Keras 2 model config")
    expected = [a for name in ["dense", "batch_normalization", "dense_1"] for a in arrays[name]]
    assert_exact(km.get_weights(), expected, "Keras 2 model weights")
    x = np.random.default_rng(1).standard_normal((N_TEST, D)).astype(np.float32)
    assert_predict_equal(predict(km, x), predict(rl, x))


# --------------------------------------------------------------------------------------------
# 6. get_config / from_config / to_json / model_from_json
# --------------------------------------------------------------------------------------------

CONFIG_ARCHS = {
    "base": BASE,
    "everything": [
        ("Flatten", {"name": "flat"}),
        dense("fc1", 16, "elu", use_bias=False),
        bn("bn1", momentum=0.9, epsilon=0.01, center=False),
        ("Dropout", {"rate": 0.25, "seed": 3, "name": "drop"}),
        dense("fc2", 12, "swish", kernel_initializer="he_normal", bias_initializer="ones"),
        bn("bn2", scale=False, trainable=False),
        act("act", "gelu"),
        dense("head", 3, "softmax"),
    ],
}
CONFIG_MODES = ["input", "input_shape", "deferred", "unbuilt"]


def _config_twins(kx, keras, arch_id, mode):
    spec = CONFIG_ARCHS[arch_id]
    shape = (2, 4) if arch_id == "everything" else (D,)
    km = build(kx, spec, shape, mode)
    rm = build(keras, spec, shape, mode)
    if mode == "deferred":
        x = np.zeros((BATCH, *shape), np.float32)
        y = np.zeros((BATCH, spec[-1][1]["units"]), np.float32)
        for lib, m in ((kx, km), (keras, rm)):
            m.compile(optimizer=lib.optimizers.SGD(), loss="mse")
            fit(m, x, y)
    return km, rm


@pytest.mark.parametrize("mode", CONFIG_MODES)
@pytest.mark.parametrize("arch_id", list(CONFIG_ARCHS))
def test_get_config_equals_keras(arch_id, mode, kx, keras_ref):
    km, rm = _config_twins(kx, keras_ref, arch_id, mode)
    auto = mode != "input"
    assert_same_config(km.get_config(), rm.get_config(), "get_config()", auto_input_name=auto)
    assert_same_config(
        json.loads(km.to_json()), json.loads(rm.to_json()), "to_json()", auto_input_name=auto
    )


@pytest.mark.parametrize("mode", CONFIG_MODES)
@pytest.mark.parametrize("arch_id", list(CONFIG_ARCHS))
def test_from_config_and_json_both_ways(arch_id, mode, kx, keras_ref):
    keras = keras_ref
    km, rm = _config_twins(kx, keras, arch_id, mode)
    kcfg, kerox_cfg = rm.get_config(), km.get_config()

    # Keras description → kerox → same description; kerox description → Keras → same.
    from_keras = kx.Sequential.from_config(copy.deepcopy(kcfg))
    assert_same_config(from_keras.get_config(), kcfg, "kerox from_config(Keras config)")
    from_kerox = keras.Sequential.from_config(copy.deepcopy(kerox_cfg))
    auto = mode != "input"
    assert_same_config(from_kerox.get_config(), kcfg, "Keras from_config(kerox config)", auto)

    j_keras = kx.models.model_from_json(rm.to_json())
    j_kerox = keras.models.model_from_json(km.to_json())
    assert isinstance(j_keras, kx.Sequential)
    assert_same_config(j_keras.get_config(), kcfg, "kerox model_from_json(Keras json)")
    assert_same_config(j_kerox.get_config(), kcfg, "Keras model_from_json(kerox json)", auto)
    assert_same_config(
        json.loads(j_keras.to_json()), json.loads(rm.to_json()), "to_json after model_from_json"
    )
    # The rebuilt models have the layers and parameters of the original.
    for m in (from_keras, j_keras):
        assert [type(ly).__name__ for ly in m.layers] == [type(ly).__name__ for ly in rm.layers]
        assert [ly.name for ly in m.layers] == [ly.name for ly in rm.layers]
        assert m.built == rm.built
        for a, b in zip(m.layers, rm.layers):
            for attr in ("units", "use_bias", "momentum", "epsilon", "center", "scale", "rate"):
                if hasattr(b, attr):
                    assert getattr(a, attr) == getattr(b, attr), (a.name, attr)
            assert a.trainable == b.trainable, a.name
            if hasattr(b, "activation"):
                assert a.get_config()["activation"] == b.get_config()["activation"]
        if rm.built:
            assert [w.shape for w in m.get_weights()] == [w.shape for w in rm.get_weights()]


def _container_type_diff(got, want, path="$"):
    """Places where one config holds a tuple and the other a list (or vice versa)."""
    out = []
    if isinstance(got, (list, tuple)) and isinstance(want, (list, tuple)):
        if type(got) is not type(want):
            out.append(f"{path}: kerox {type(got).__name__} {got!r}, Keras {type(want).__name__}")
        for i, (g, w) in enumerate(zip(got, want)):
            out += _container_type_diff(g, w, f"{path}[{i}]")
    elif isinstance(got, dict) and isinstance(want, dict):
        for k in set(got) & set(want):
            out += _container_type_diff(got[k], want[k], f"{path}.{k}")
    return out


@pytest.mark.parametrize("mode", ["input", "input_shape"])
def test_get_config_shape_types_match_keras(mode, kx, keras_ref):
    # In memory, Keras's get_config() holds shapes as tuples (JSON makes them lists); code
    # that compares configs or uses them as dict keys sees the difference.
    km, rm = _config_twins(kx, keras_ref, "base", mode)
    diff = _container_type_diff(km.get_config(), rm.get_config())
    assert not diff, "get_config() container types differ from Keras:\n  " + "\n  ".join(diff)


@pytest.mark.parametrize("direction", ["keras_to_kerox", "kerox_to_keras"])
def test_model_from_json_of_compiled_model_compiles(direction, kx, keras_ref):
    # Keras's to_json() of a compiled model carries its compile_config, and model_from_json()
    # compiles the rebuilt model with it (keras.saving.deserialize_keras_object).
    keras = keras_ref
    case = Case("json_compiled", optimizer={"learning_rate": 0.03, "momentum": 0.5})
    km, rm = build(kx, case.arch), build(keras, case.arch)
    compile_model(kx, km, case)
    compile_model(keras, rm, case)
    assert_same_config(json.loads(km.to_json()), json.loads(rm.to_json()), "compiled to_json()")
    ref = keras.models.model_from_json(rm.to_json())
    if direction == "keras_to_kerox":
        got = kx.models.model_from_json(rm.to_json())
    else:
        got = keras.models.model_from_json(km.to_json())
    assert got.compiled and ref.compiled
    assert_same_opt_config(got.optimizer, ref.optimizer)
    assert_same_config(json.loads(got.to_json()), json.loads(ref.to_json()), "to_json() again")
