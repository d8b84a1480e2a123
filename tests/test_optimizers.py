"""Every optimizer against real Keras 3 (JAX backend), with the base options and schedules.

As in `test_keras_parity.py`: kerox and Keras start from the same weights, train with
`shuffle=False` on the same seeded data, and must end with the same weights, History and
optimizer variables (every slot, in Keras's order) to float32 rounding. Cases with mostly-zero
inputs send kerox's first Dense layer down its sparse-input path with every rule. Options that
only show when they act are also run in Keras without the option, which must end clearly
elsewhere. Then: bit-identical results for 1/2/3 threads, saving and resuming across files
both ways (kerox saves, Keras resumes, and the reverse), `learning_rate` / `iterations` as
variables, and bad input.
"""

from __future__ import annotations

import os
import warnings

import kerox
import numpy as np
import pytest
from conftest import (
    assert_history_close,
    assert_weights_close,
    build_model,
    make_data,
    max_abs_diff,
    twin_models,
)

# tanh before BatchNormalization: a ReLU unit active on every sample of a batch would make
# BN(relu(z + b)) independent of its bias b, whose gradient is then rounding noise, which
# adaptive rules scale up to full steps (in Keras itself, a 1-ulp change of the start weights
# then moves that bias by ~lr).
ARCH = [
    ("Dense", {"units": 32, "activation": "relu"}),
    ("Dense", {"units": 16, "activation": "tanh"}),
    ("BatchNormalization", {}),
    ("Dense", {"units": 10, "activation": "softmax"}),
]
N_TRAIN = 488  # 30 batches of 16 and one of 8
FEATURES = 24
BATCH = 16


def schedule(lib, spec):
    name, kw = spec
    return getattr(lib.optimizers.schedules, name)(**kw)


def make_opt(lib, spec):
    """`(class name, kwargs)`; a `learning_rate` given as `(schedule name, kwargs)` is built
    in `lib`."""
    name, kw = spec
    kw = dict(kw)
    if isinstance(kw.get("learning_rate"), tuple):
        kw["learning_rate"] = schedule(lib, kw["learning_rate"])
    return getattr(lib.optimizers, name)(**kw)


# (id, optimizer spec, contrast spec or None, fraction of zero inputs)
CASES = [
    ("adam_defaults", ("Adam", {}), None, 0.0),
    (
        "adam_options_amsgrad",
        (
            "Adam",
            {
                "learning_rate": 0.003,
                "beta_1": 0.8,
                "beta_2": 0.99,
                "epsilon": 1e-4,
                "amsgrad": True,
            },
        ),
        ("Adam", {"learning_rate": 0.003, "beta_1": 0.8, "beta_2": 0.99, "epsilon": 1e-4}),
        0.0,
    ),
    (
        "adamw",
        ("AdamW", {"learning_rate": 0.002, "weight_decay": 0.5}),
        ("Adam", {"learning_rate": 0.002}),
        0.0,
    ),
    ("rmsprop_defaults", ("RMSprop", {}), None, 0.0),
    (
        "rmsprop_momentum_centered",
        ("RMSprop", {"learning_rate": 0.002, "rho": 0.8, "momentum": 0.5, "centered": True}),
        ("RMSprop", {"learning_rate": 0.002, "rho": 0.8}),
        0.0,
    ),
    ("rmsprop_momentum", ("RMSprop", {"learning_rate": 0.001, "momentum": 0.9}), None, 0.0),
    ("adagrad", ("Adagrad", {"learning_rate": 0.05, "initial_accumulator_value": 0.5}), None, 0.0),
    ("adadelta", ("Adadelta", {"learning_rate": 1.0, "rho": 0.9}), None, 0.0),
    ("adamax", ("Adamax", {"learning_rate": 0.001, "beta_1": 0.8}), None, 0.0),
    ("nadam", ("Nadam", {"learning_rate": 0.001}), None, 0.0),
    ("lion", ("Lion", {"learning_rate": 1e-4, "beta_1": 0.95, "beta_2": 0.98}), None, 0.0),
    # Base options with several rules.
    (
        "adam_clipnorm",
        ("Adam", {"learning_rate": 0.002, "clipnorm": 0.05}),
        ("Adam", {"learning_rate": 0.002}),
        0.0,
    ),
    (
        "rmsprop_clipvalue",
        ("RMSprop", {"learning_rate": 0.002, "clipvalue": 0.02}),
        ("RMSprop", {"learning_rate": 0.002}),
        0.0,
    ),
    (
        "nadam_global_clipnorm",
        ("Nadam", {"learning_rate": 0.002, "global_clipnorm": 0.05}),
        ("Nadam", {"learning_rate": 0.002}),
        0.0,
    ),
    (
        "adagrad_weight_decay",
        ("Adagrad", {"learning_rate": 0.05, "weight_decay": 0.5}),
        ("Adagrad", {"learning_rate": 0.05}),
        0.0,
    ),
    (
        "adam_ema",
        ("Adam", {"learning_rate": 0.002, "use_ema": True, "ema_momentum": 0.9}),
        ("Adam", {"learning_rate": 0.002}),
        0.0,
    ),
    (
        "adamax_ema_overwrite",
        ("Adamax", {"learning_rate": 0.002, "use_ema": True, "ema_overwrite_frequency": 7}),
        ("Adamax", {"learning_rate": 0.002, "use_ema": True}),
        0.0,
    ),
    (
        "adam_accumulate",
        ("Adam", {"learning_rate": 0.01, "gradient_accumulation_steps": 3}),
        ("Adam", {"learning_rate": 0.01}),
        0.0,
    ),
    (
        "sgd_momentum_accumulate_ema",
        (
            "SGD",
            {
                "learning_rate": 0.05,
                "momentum": 0.9,
                "gradient_accumulation_steps": 2,
                "use_ema": True,
            },
        ),
        ("SGD", {"learning_rate": 0.05, "momentum": 0.9}),
        0.0,
    ),
    ("adam_loss_scale_factor", ("Adam", {"loss_scale_factor": 128.0}), None, 0.0),
    # Schedules, evaluated for each step as Keras does.
    (
        "adam_exponential_decay",
        (
            "Adam",
            {
                "learning_rate": (
                    "ExponentialDecay",
                    {"initial_learning_rate": 0.003, "decay_steps": 10, "decay_rate": 0.5},
                )
            },
        ),
        ("Adam", {"learning_rate": 0.003}),
        0.0,
    ),
    (
        "sgd_piecewise_constant",
        (
            "SGD",
            {
                "learning_rate": (
                    "PiecewiseConstantDecay",
                    {"boundaries": [10, 20], "values": [0.1, 0.02, 0.001]},
                )
            },
        ),
        ("SGD", {"learning_rate": 0.1}),
        0.0,
    ),
    (
        "rmsprop_cosine_warmup",
        (
            "RMSprop",
            {
                "learning_rate": (
                    "CosineDecay",
                    {
                        "initial_learning_rate": 0.0,
                        "decay_steps": 20,
                        "warmup_target": 0.003,
                        "warmup_steps": 8,
                    },
                )
            },
        ),
        ("RMSprop", {"learning_rate": 0.003}),
        0.0,
    ),
    (
        "adam_polynomial_accumulate",
        (
            "Adam",
            {
                "gradient_accumulation_steps": 2,
                "learning_rate": (
                    "PolynomialDecay",
                    {
                        "initial_learning_rate": 0.01,
                        "decay_steps": 12,
                        "end_learning_rate": 0.001,
                        "power": 2.0,
                    },
                ),
            },
        ),
        None,
        0.0,
    ),
    (
        "nadam_inverse_time",
        (
            "Nadam",
            {
                "learning_rate": (
                    "InverseTimeDecay",
                    {
                        "initial_learning_rate": 0.01,
                        "decay_steps": 5,
                        "decay_rate": 1.0,
                        "staircase": True,
                    },
                )
            },
        ),
        None,
        0.0,
    ),
    (
        "adamax_cosine_restarts",
        (
            "Adamax",
            {
                "learning_rate": (
                    "CosineDecayRestarts",
                    {
                        "initial_learning_rate": 0.002,
                        "first_decay_steps": 5,
                        "t_mul": 1.5,
                        "m_mul": 0.8,
                        "alpha": 0.1,
                    },
                )
            },
        ),
        None,
        0.0,
    ),
] + [
    # Every rule with MNIST-like mostly-zero inputs (kerox's sparse-input first layer).
    (f"sparse_inputs_{name.lower()}", (name, kw), None, 0.8)
    for name, kw in [
        ("Adam", {"learning_rate": 0.002}),
        ("AdamW", {"learning_rate": 0.002}),
        ("RMSprop", {"momentum": 0.5, "centered": True}),
        ("Adagrad", {"learning_rate": 0.05}),
        ("Adagrad", {"learning_rate": 0.05, "clipnorm": 0.05}),
        ("Adadelta", {"learning_rate": 1.0}),
        ("Adamax", {"learning_rate": 0.001}),
        ("Nadam", {"learning_rate": 0.001}),
        ("Lion", {"learning_rate": 1e-4}),
        ("SGD", {"learning_rate": 0.05, "use_ema": True, "gradient_accumulation_steps": 2}),
        ("Adam", {"learning_rate": 0.002, "clipnorm": 0.02, "gradient_accumulation_steps": 2}),
    ]
]
# Sparse cases of the same rule need distinct ids.
CASES[-7] = ("sparse_inputs_adagrad_clipnorm", *CASES[-7][1:])
CASES[-1] = ("sparse_inputs_adam_clipnorm_accumulate", *CASES[-1][1:])


def _data(zero_fraction, n=N_TRAIN, seed=1):
    x, y = make_data(n, FEATURES, "onehot", seed=seed)
    if zero_fraction:
        rng = np.random.default_rng(7)
        x = np.where(rng.random(x.shape) < zero_fraction, 0.0, x).astype(x.dtype)
    return x, y


def _train(lib, model, spec, x, y, epochs=1):
    opt = make_opt(lib, spec)
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])
    h = model.fit(x, y, batch_size=BATCH, epochs=epochs, shuffle=False, verbose=0)
    return opt, {k: [float(v) for v in vs] for k, vs in h.history.items()}


def opt_values(opt):
    return [np.asarray(v.numpy() if hasattr(v, "numpy") else v) for v in opt.variables]


def assert_lion_close(got, want, lr):
    """Lion moves every weight by exactly ±lr per step, so a momentum mix within rounding of
    0 can take the other sign in two implementations whose gradients differ by rounding:
    such a weight ends 2·lr (or a few times that) away. All others agree to rounding, and
    flips are rare."""
    flips = total = 0
    for g, w in zip(got, want):
        d = np.abs(np.asarray(g, np.float64) - np.asarray(w, np.float64))
        close = d <= 1e-6 + 1e-4 * np.abs(w)
        flips += int((~close).sum())
        total += d.size
        assert (d[~close] <= 6 * lr + 1e-6).all(), f"Lion weights differ by {d.max()}"
    assert flips <= 0.01 * total, f"{flips}/{total} Lion weights differ"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_optimizer_matches_keras(case, kx, keras_ref):
    _, spec, contrast, zeros = case
    x, y = _data(zeros)
    km, rm = twin_models(kx, keras_ref, ARCH, (FEATURES,), seed=3)
    w0 = [np.asarray(w) for w in km.get_weights()]
    kopt, kh = _train(kx, km, spec, x, y)
    ropt, rh = _train(keras_ref, rm, spec, x, y)
    assert_history_close(kh, rh, counts={"accuracy": N_TRAIN})
    if spec[0] == "Lion":
        assert_lion_close(km.get_weights(), rm.get_weights(), spec[1]["learning_rate"])
    else:
        assert_weights_close(km.get_weights(), rm.get_weights())
    kv, rv = opt_values(kopt), opt_values(ropt)
    names = [v.path for v in ropt.variables]
    assert len(kv) == len(rv), f"optimizer variables: kerox {len(kv)}, Keras {len(rv)} {names}"
    assert int(kv[0]) == int(rv[0]), "iteration"
    if spec[0] != "Lion":  # Lion's momentum follows the gradients, checked through the weights
        assert_weights_close(kv[1:], rv[1:], labels=names[1:], what="optimizer variables")
    assert int(np.asarray(kopt.iterations)) == int(np.asarray(ropt.iterations))
    if contrast is not None:
        rm2 = build_model(keras_ref, ARCH, (FEATURES,))
        rm2.set_weights(w0)
        _train(keras_ref, rm2, contrast, x, y)
        diff = max_abs_diff(rm2.get_weights(), rm.get_weights())
        assert diff > 1e-3, f"option {spec} did not change the result (diff {diff})"


RULES = [
    ("SGD", {"learning_rate": 0.05, "momentum": 0.9, "nesterov": True}),
    ("Adam", {"learning_rate": 0.005, "amsgrad": True, "clipnorm": 0.5}),
    ("AdamW", {"learning_rate": 0.005}),
    ("RMSprop", {"momentum": 0.5, "centered": True, "global_clipnorm": 0.5}),
    ("Adagrad", {"learning_rate": 0.05}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adamax", {"learning_rate": 0.005, "use_ema": True}),
    ("Nadam", {"learning_rate": 0.002, "gradient_accumulation_steps": 2}),
    ("Lion", {"learning_rate": 1e-4, "clipvalue": 0.01}),
]


@pytest.fixture
def restore_threads():
    before = kerox.config.get_num_threads()
    yield
    kerox.config.set_num_threads(before)


@pytest.mark.parametrize("spec", RULES, ids=[r[0] for r in RULES])
def test_thread_counts_give_identical_bits(spec, kx, restore_threads):
    """Wide layers and batch 128 so that the update and weight gradient split over threads."""
    arch = [
        ("Dense", {"units": 256, "activation": "relu"}),
        ("BatchNormalization", {}),
        ("Dense", {"units": 10, "activation": "softmax"}),
    ]
    rng = np.random.default_rng(5)
    x = rng.standard_normal((700, 300)).astype(np.float32)
    x[rng.random(x.shape) < 0.8] = 0.0
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 700)]
    results = []
    for threads in (1, 2, 3):
        kerox.config.set_num_threads(threads)
        kx.utils.set_random_seed(11)
        m = build_model(kx, arch, (300,))
        opt = make_opt(kx, spec)
        m.compile(optimizer=opt, loss="categorical_crossentropy")
        for bs in (128, 16):
            m.fit(x, y, batch_size=bs, epochs=1, shuffle=False, verbose=0)
        results.append([np.asarray(w) for w in m.get_weights()] + opt_values(opt)[1:])
    for threads, r in zip((2, 3), results[1:]):
        for a, b in zip(results[0], r):
            assert a.tobytes() == b.tobytes(), f"{spec[0]}: {threads} threads differ from 1"


RESUME = [
    ("SGD", {"learning_rate": 0.02, "momentum": 0.9}),
    ("Adam", {"learning_rate": 0.005, "amsgrad": True}),
    ("AdamW", {"learning_rate": 0.005, "weight_decay": 0.1}),
    ("RMSprop", {"momentum": 0.5, "centered": True}),
    ("Adagrad", {"learning_rate": 0.05}),
    ("Adadelta", {"learning_rate": 1.0}),
    ("Adamax", {"learning_rate": 0.005}),
    ("Nadam", {"learning_rate": 0.002}),
    ("Lion", {"learning_rate": 1e-4}),
    ("RMSprop", {"gradient_accumulation_steps": 3}),
    (
        "Adam",
        {
            "learning_rate": (
                "ExponentialDecay",
                {"initial_learning_rate": 0.01, "decay_steps": 20, "decay_rate": 0.5},
            )
        },
    ),
]


# Every optimizer through `.keras`; `.weights.h5` (the same variables, read by
# `load_weights` into a compiled model) for one-, two- and three-slot rules and Nadam's extra
# variable.
RESUME_CASES = [(spec, "keras") for spec in RESUME] + [
    (RESUME[i], "weights.h5") for i in (0, 1, 3, 7)
]


@pytest.mark.parametrize("spec, fmt", RESUME_CASES, ids=[f"{s[0]}-{f}" for s, f in RESUME_CASES])
def test_resume_across_files_both_ways(spec, fmt, kx, keras_ref, tmp_path):
    """One epoch in A, save, load in B, one more epoch: the weights equal A's own two epochs
    (the optimizer state travels in Keras's layout), for A, B = kerox, Keras and the reverse.
    ARCH's layers are not bound to a name, so both sides use the default layer names."""
    x, y = _data(0.0, n=400)
    km, rm = twin_models(kx, keras_ref, ARCH, (FEATURES,), seed=4)
    libs = {"kerox": (kx, km), "keras": (keras_ref, rm)}
    for a, b in (("kerox", "keras"), ("keras", "kerox")):
        lib_a, model_a = libs[a]
        lib_b, _ = libs[b]
        w0 = [np.asarray(w) for w in model_a.get_weights()]
        src, ref = build_model(lib_a, ARCH, (FEATURES,)), build_model(lib_a, ARCH, (FEATURES,))
        for m in (src, ref):
            m.set_weights(w0)
            _train(lib_a, m, spec, x, y)
        path = str(tmp_path / f"{a}.{fmt}")
        if fmt == "keras":
            src.save(path)
            dst = lib_b.models.load_model(path)
        else:
            src.save_weights(path)
            dst = build_model(lib_b, ARCH, (FEATURES,))
            dst.compile(
                optimizer=make_opt(lib_b, spec),
                loss="categorical_crossentropy",
                metrics=["accuracy"],
            )
            # Build the optimizer's state (one step on no data is not possible in Keras, so
            # a step whose effect the load overwrites).
            dst.train_on_batch(x[:BATCH], y[:BATCH])
            dst.load_weights(path)
        # The reference trains on without a file in between. (No EMA case: Keras 3.15 cannot
        # call `fit` a second time on a model whose optimizer has `use_ema=True`.)
        dst.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        ref.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        assert_weights_close(dst.get_weights(), ref.get_weights(), what=f"{a} -> {b} ({fmt})")


def test_learning_rate_and_iterations_are_variables(kx, keras_ref):
    for lib in (kx, keras_ref):
        opt = lib.optimizers.Adam(learning_rate=0.01)
        assert float(opt.learning_rate.numpy()) == pytest.approx(0.01)
        opt.learning_rate.assign(0.5)
        assert float(opt.learning_rate.numpy()) == 0.5
        opt.learning_rate = 0.25
        assert float(np.asarray(opt.learning_rate)) == 0.25
        assert int(opt.iterations.numpy()) == 0
    assert float(kx.optimizers.SGD(0.5).learning_rate) == 0.5
    # Set mid-training by a per-batch callback. (Keras-JAX ignores a learning rate set inside
    # `fit`: its jitted state overwrites it. The reference is Keras stepping batch by batch
    # with `train_on_batch`, the rate set between steps, as the TensorFlow backend does.)
    x, y = _data(0.0, n=200)
    km, rm = twin_models(kx, keras_ref, ARCH, (FEATURES,), seed=6)
    rates = []

    def halve(batch, logs):
        if batch % 3 == 2:
            lr = km.optimizer.learning_rate
            lr.assign(float(lr.numpy()) * 0.5)
        rates.append(float(km.optimizer.learning_rate.numpy()))

    for lib, model in ((kx, km), (keras_ref, rm)):
        model.compile(optimizer=lib.optimizers.RMSprop(0.01), loss="categorical_crossentropy")
    km.fit(
        x,
        y,
        batch_size=BATCH,
        epochs=1,
        shuffle=False,
        verbose=0,
        callbacks=[kx.callbacks.LambdaCallback(on_batch_end=halve)],
    )
    for b, start in enumerate(range(0, len(x), BATCH)):
        rm.train_on_batch(x[start : start + BATCH], y[start : start + BATCH])
        rm.optimizer.learning_rate = rates[b]
    assert_weights_close(km.get_weights(), rm.get_weights())
    assert km.optimizer.learning_rate.numpy() == rm.optimizer.learning_rate.numpy()
    assert km.optimizer.iterations.numpy() == rm.optimizer.iterations.numpy() == 13


def test_schedule_learning_rate_is_read_only_and_evaluated_at_the_step(kx, keras_ref):
    x, y = _data(0.0, n=160)
    for lib in (kx, keras_ref):
        s = lib.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5)
        opt = lib.optimizers.SGD(s)
        m = build_model(lib, ARCH, (FEATURES,))
        m.compile(optimizer=opt, loss="categorical_crossentropy")
        m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
        assert float(np.asarray(opt.learning_rate)) == pytest.approx(0.05, rel=1e-6)
        with pytest.raises(TypeError, match="not settable"):
            opt.learning_rate = 0.1


def test_user_schedule_runs_per_chunk_and_nan_stops_naming_the_step(kx):
    calls = []

    class Halving(kx.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            calls.append(int(step))
            return 0.1 * 0.5 ** (int(step) // 8)

    x, y = _data(0.0, n=160)
    m = build_model(kx, ARCH, (FEATURES,))
    m.compile(optimizer=kx.optimizers.SGD(Halving()), loss="categorical_crossentropy")
    m.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    assert sorted(set(calls)) == list(range(20))

    class Broken(kx.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return float("nan") if int(step) >= 12 else 0.01

    m = build_model(kx, ARCH, (FEATURES,))
    m.compile(optimizer=kx.optimizers.Adam(Broken()), loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="step 12"):
        m.fit(x, y, batch_size=BATCH, epochs=2, verbose=0)
    assert int(m.optimizer.iterations) <= 12


@pytest.mark.parametrize(
    "name", ["sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "lion"]
)
def test_string_names_resolve_as_keras(name, kx, keras_ref):
    ko, ro = kx.optimizers.get(name), keras_ref.optimizers.get(name)
    assert type(ko).__name__ == type(ro).__name__
    kc, rc = ko.get_config(), ro.get_config()
    kc.pop("name"), rc.pop("name")
    assert kc == rc


def test_unsupported_keras_optimizers_are_named(kx):
    for name in ("ftrl", "Adafactor", "lamb"):
        with pytest.raises(ValueError, match="kerox does not implement.*Adam"):
            kx.optimizers.get(name)


@pytest.mark.parametrize(
    "make, arg",
    [
        (lambda o: o.Adam(learning_rate=-0.1), "learning_rate"),
        (lambda o: o.Adam(learning_rate=float("nan")), "learning_rate"),
        (lambda o: o.Adam(epsilon=0.0), "epsilon"),
        (lambda o: o.Adam(epsilon=-1e-7), "epsilon"),
        (lambda o: o.Adam(beta_1=1.0), "beta_1"),
        (lambda o: o.Nadam(beta_2=1.5), "beta_2"),
        (lambda o: o.Adamax(beta_1=-0.1), "beta_1"),
        (lambda o: o.RMSprop(rho=1.0), "rho"),
        (lambda o: o.Adadelta(rho=-0.5), "rho"),
        (lambda o: o.RMSprop(momentum=2.0), "momentum"),
        (lambda o: o.Adagrad(initial_accumulator_value=-1.0), "initial_accumulator_value"),
        (lambda o: o.Lion(beta_1=0.0), "beta_1"),
        (lambda o: o.Adam(clipnorm=1.0, clipvalue=1.0), "clipnorm"),
        (lambda o: o.RMSprop(clipnorm=-1.0), "clipnorm"),
        (lambda o: o.Adagrad(global_clipnorm=-0.5), "global_clipnorm"),
        (lambda o: o.SGD(clipvalue=-0.1), "clipvalue"),
        (lambda o: o.Adam(weight_decay=-0.1), "weight_decay"),
        (lambda o: o.AdamW(weight_decay=None), "weight_decay"),
        (lambda o: o.Adam(gradient_accumulation_steps=1), "gradient_accumulation_steps"),
        (lambda o: o.Adam(use_ema=True, ema_momentum=1.5), "ema_momentum"),
        (lambda o: o.Adam(use_ema=True, ema_overwrite_frequency=0), "ema_overwrite_frequency"),
        (lambda o: o.get("adamm"), "adamm"),
        (lambda o: o.schedules.ExponentialDecay(0.1, 0, 0.5), "decay_steps"),
    ],
)
def test_bad_settings_raise_value_error_naming_the_argument(make, arg, kx):
    with pytest.raises(ValueError, match=arg):
        make(kx.optimizers)


def test_wrong_optimizer_state_in_a_file_is_refused_and_changes_nothing(kx, tmp_path):
    import h5py

    x, y = _data(0.0, n=160)
    m = build_model(kx, ARCH, (FEATURES,))
    m.compile(optimizer=kx.optimizers.Adam(0.01), loss="categorical_crossentropy")
    m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    path = str(tmp_path / "m.weights.h5")
    m.save_weights(path)
    with h5py.File(path, "r+") as f:  # a velocity slot of the wrong shape
        v = f["optimizer/vars"]
        del v["3"]
        v.create_dataset("3", data=np.zeros((FEATURES, 31), np.float32))
    before = [np.asarray(w) for w in m.get_weights()]
    slots = opt_values(m.optimizer)
    m2 = build_model(kx, ARCH, (FEATURES,))
    m2.set_weights(before)
    with pytest.raises(ValueError, match="optimizer/vars/3"):
        m.load_weights(path)
    assert_weights_close(m.get_weights(), before, rtol=0, atol=0)
    assert_weights_close(opt_values(m.optimizer)[1:], slots[1:], rtol=0, atol=0)
    # A .keras file whose optimizer state has the wrong number of variables is refused.
    kpath = str(tmp_path / "m.keras")
    m.save(kpath)
    import zipfile

    with zipfile.ZipFile(kpath) as z:
        members = {n: z.read(n) for n in z.namelist()}
    wpath = tmp_path / "w.h5"
    wpath.write_bytes(members["model.weights.h5"])
    with h5py.File(wpath, "r+") as f:
        del f["optimizer/vars"][str(len(f["optimizer/vars"]) - 1)]
    members["model.weights.h5"] = wpath.read_bytes()
    bad = str(tmp_path / "bad.keras")
    with zipfile.ZipFile(bad, "w") as z:
        for n, data in members.items():
            z.writestr(n, data)
    with pytest.raises(ValueError, match="does not fit"):
        kx.models.load_model(bad)


def test_loading_another_optimizers_state_warns_as_keras(kx, tmp_path):
    x, y = _data(0.0, n=64)
    m = build_model(kx, ARCH, (FEATURES,))
    m.compile(optimizer=kx.optimizers.Adam(0.01), loss="categorical_crossentropy")
    m.fit(x, y, batch_size=BATCH, epochs=1, verbose=0)
    path = str(tmp_path / "m.weights.h5")
    m.save_weights(path)
    m2 = build_model(kx, ARCH, (FEATURES,))
    m2.compile(optimizer=kx.optimizers.SGD(0.1, momentum=0.9), loss="categorical_crossentropy")
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        m2.load_weights(path)
    assert any("Skipping variable loading for optimizer" in str(x.message) for x in w)
    assert_weights_close(m2.get_weights(), m.get_weights(), rtol=0, atol=0)


def test_ema_weights_replace_the_trained_ones_at_the_end_of_fit(kx):
    """Hand-checked: with ema_momentum 0 the average is the last weights; with 1 (after the
    first step, which copies) the average stays at the weights after step one."""
    x, y = _data(0.0, n=64)
    km = build_model(kx, ARCH, (FEATURES,))
    km.compile(
        optimizer=kx.optimizers.SGD(0.1, use_ema=True, ema_momentum=1.0),
        loss="categorical_crossentropy",
    )
    ref = build_model(kx, ARCH, (FEATURES,))
    ref.set_weights(km.get_weights())
    ref.compile(optimizer=kx.optimizers.SGD(0.1), loss="categorical_crossentropy")
    km.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    ref.fit(x[:BATCH], y[:BATCH], batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
    trainable = [i for i, w in enumerate(km.weights) if w.trainable]
    kw, rw = km.get_weights(), ref.get_weights()
    assert_weights_close([kw[i] for i in trainable], [rw[i] for i in trainable], rtol=0, atol=0)


def test_adam_without_optimizer_module_import_side_effects():
    """`import kerox as tf; tf.keras.optimizers.Adam` and `optimizer="adam"` in compile."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    m = kerox.keras.Sequential([kerox.keras.Input((3,)), kerox.keras.layers.Dense(2)])
    m.compile(optimizer="adam", loss="mse")
    assert type(m.optimizer).__name__ == "Adam"
    assert m.optimizer.get_config()["learning_rate"] == pytest.approx(0.001)
