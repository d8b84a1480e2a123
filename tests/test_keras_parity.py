"""Numerical parity with real Keras 3 (JAX backend).

Each case builds one architecture in kerox and in Keras, gives the kerox model deterministic
start weights (seeded NumPy, through kerox's `set_weights`), copies kerox's weights into Keras
(`keras_model.set_weights(kerox_model.get_weights())`), trains both with `shuffle=False` on the
same seeded synthetic data (n not divisible by the batch size, so the short last batch is
exercised), and compares:

* every weight incl. BatchNormalization moving statistics (rtol 1e-4, atol 1e-6),
* `History.history` (same keys in the same order; values rtol 1e-4; accuracies may differ by
  one sample, i.e. an argmax tie broken differently by float rounding),
* `evaluate` results and `predict` outputs on a held-out set (predict atol scales with the
  output range for logit/regression heads).

Options that only show in the result when they act (clipping, weight decay, Nesterov) are
also run in Keras *without* the option: that run must end with clearly different weights,
which proves the chosen data/learning rate make the option fire.

Learning rates and start-weight seeds were chosen so that training is not chaotic: in Keras
itself, random 1-ulp changes of the start weights and of x (3 draws per case) move every
compared value by at most ~0.4 of the tolerance (most cases < 0.1). Predictions
stay away from the 1e-7 probability clip (keras-spec §5.6), so a correct implementation
agrees to float rounding whether it computes crossentropy from probabilities or logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from conftest import (
    ATOL,
    RTOL,
    assert_history_close,
    assert_weights_close,
    build_model,
    make_data,
    make_loss,
    make_optimizer,
    max_abs_diff,
    twin_models,
    weight_layout,
)

N_TRAIN = 3000  # 3000 = 187 * 16 + 8: the last batch has 8 samples
N_TEST = 400
N_FEATURES = 24
BATCH = 16


def dense(units, activation=None, **kw):
    return ("Dense", dict(units=units, activation=activation, **kw))


def bn(**kw):
    return ("BatchNormalization", kw)


def base_arch(hidden1="relu", hidden2="relu", head=None, bn_kwargs=None):
    """The parity workhorse: Dense(32) -> Dense(16) -> BN -> Dense(head)."""
    head = head or dense(10, "softmax")
    return [dense(32, hidden1), dense(16, hidden2), bn(**(bn_kwargs or {})), head]


@dataclass
class Case:
    id: str
    arch: list = field(default_factory=base_arch)
    target: str = "onehot"
    loss: object = "categorical_crossentropy"
    optimizer: object = field(default_factory=lambda: {"learning_rate": 0.02})
    metrics: list = field(default_factory=lambda: ["accuracy"])
    epochs: int = 1
    batch_size: int | None = BATCH
    validation: str | None = None  # None | "split" | "data"
    n_train: int = N_TRAIN
    input_shape: tuple = (N_FEATURES,)
    features: int = N_FEATURES  # of the synthetic data (input_shape reshapes them)
    randomize_bn: bool = False
    seed: int = 0  # seed of the deterministic initial weights (conftest.initial_weights)
    # Keras-only run with these optimizer kwargs must end with clearly different weights.
    contrast: dict | None = None
    # Fraction of input values set to exactly 0 (>= 2/3 sends kerox's first Dense layer down
    # its sparse-input path, as MNIST's pixels do).
    zero_fraction: float = 0.0


SOFTMAX10 = dense(10, "softmax")
LINEAR10 = dense(10)

CASES = [
    # ---- optimizer: SGD variants (keras-spec §4.2, §4.3) -------------------------------------
    Case("sgd_plain"),  # SGD(learning_rate=0.02)
    Case("sgd_constructor_defaults", optimizer={}),  # learning_rate=0.01
    Case("sgd_string", optimizer="sgd", metrics=["categorical_accuracy"]),
    Case("sgd_momentum", optimizer={"learning_rate": 0.005, "momentum": 0.9}),
    Case(
        "sgd_nesterov",
        optimizer={"learning_rate": 0.005, "momentum": 0.9, "nesterov": True},
        contrast={"learning_rate": 0.005, "momentum": 0.9},
    ),
    Case(
        "sgd_clipnorm",
        optimizer={"learning_rate": 0.05, "clipnorm": 0.1},
        contrast={"learning_rate": 0.05},
    ),
    Case(
        "sgd_clipvalue",
        optimizer={"learning_rate": 0.05, "clipvalue": 0.02},
        contrast={"learning_rate": 0.05},
    ),
    Case(
        "sgd_global_clipnorm",
        optimizer={"learning_rate": 0.05, "global_clipnorm": 0.2},
        contrast={"learning_rate": 0.05},
    ),
    Case(
        "sgd_weight_decay",
        optimizer={"learning_rate": 0.02, "weight_decay": 0.02},
        contrast={"learning_rate": 0.02},
    ),
    Case(
        "sgd_momentum_clipnorm_weight_decay",
        optimizer={"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.01, "clipnorm": 0.2},
        contrast={"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 0.01},
    ),
    # ---- mostly-zero inputs: kerox's sparse-input first layer (MNIST is ~81 % zeros) ----------
    Case("sparse_inputs_sgd_plain", zero_fraction=0.8),
    Case(
        "sparse_inputs_momentum_clipnorm",
        optimizer={"learning_rate": 0.01, "momentum": 0.9, "clipnorm": 0.2},
        zero_fraction=0.85,
        validation="data",
    ),
    Case(
        "sparse_inputs_global_clipnorm_wide",
        arch=[dense(64, "relu"), dense(16, "relu"), bn(), SOFTMAX10],
        optimizer={"learning_rate": 0.05, "global_clipnorm": 0.2},
        contrast={"learning_rate": 0.05},
        zero_fraction=0.75,
        batch_size=64,
    ),
    # Plain SGD with norm clipping on small sparse batches of many features: kerox takes the
    # first kernel's gradient norm from the batch's pair products, before a fused update.
    *(
        Case(
            f"sparse_inputs_{clip}_pair_products",
            arch=[dense(64, "relu"), dense(16, "relu"), bn(), SOFTMAX10],
            optimizer={"learning_rate": 0.05, clip: threshold},
            contrast={"learning_rate": 0.05},
            zero_fraction=0.8,
            input_shape=(200,),
            features=200,
        )
        for clip, threshold in [("clipnorm", 0.1), ("global_clipnorm", 0.2)]
    ),
    # ---- BatchNormalization (keras-spec §3) ---------------------------------------------------
    Case(
        "bn_momentum_epsilon",
        arch=base_arch(bn_kwargs={"momentum": 0.9, "epsilon": 0.01}),
        randomize_bn=True,
    ),
    Case(
        "bn_center_false_and_scale_false",
        arch=[dense(32, "relu"), bn(center=False), dense(16, "relu"), bn(scale=False), SOFTMAX10],
        randomize_bn=True,
    ),
    Case(
        "bn_first_no_affine",
        arch=[bn(center=False, scale=False, momentum=0.8), dense(32, "relu"), SOFTMAX10],
    ),
    Case("bn_frozen", arch=base_arch(bn_kwargs={"trainable": False}), randomize_bn=True),
    # 2993 = 187 * 16 + 1: the last training batch has a single sample (variance 0, §3.8).
    Case("bn_last_batch_of_one", n_train=2993),
    # ---- losses and metrics (keras-spec §5, §6.1) ---------------------------------------------
    Case(
        "cce_label_smoothing",
        loss=("CategoricalCrossentropy", {"label_smoothing": 0.1}),
        metrics=["categorical_accuracy"],
    ),
    Case(
        "cce_from_logits",
        arch=base_arch(head=LINEAR10),
        loss=("CategoricalCrossentropy", {"from_logits": True}),
    ),
    Case("sparse_cce_int_labels", target="sparse", loss="sparse_categorical_crossentropy"),
    Case(
        "sparse_cce_column_labels",
        target="sparse_col",
        loss="sparse_categorical_crossentropy",
        metrics=["sparse_categorical_accuracy"],
    ),
    Case(
        "sparse_cce_from_logits",
        arch=base_arch(head=LINEAR10),
        target="sparse",
        loss=("SparseCategoricalCrossentropy", {"from_logits": True}),
        optimizer={"learning_rate": 0.03},
    ),
    Case(
        "bce_sigmoid",
        arch=base_arch(head=dense(1, "sigmoid")),
        target="binary",
        loss="binary_crossentropy",
    ),
    Case(
        "bce_sigmoid_flat_labels",
        arch=base_arch(head=dense(1, "sigmoid")),
        target="binary_flat",
        loss="binary_crossentropy",
        metrics=["binary_accuracy"],
    ),
    Case(
        "bce_from_logits",
        arch=base_arch(head=dense(1)),
        target="binary",
        loss=("BinaryCrossentropy", {"from_logits": True}),
    ),
    Case(
        "bce_label_smoothing",
        arch=base_arch(head=dense(1, "sigmoid")),
        target="binary",
        loss=("BinaryCrossentropy", {"label_smoothing": 0.2}),
    ),
    # 3 sigmoid units + 'accuracy' resolves to CategoricalAccuracy in Keras 3 (§6.1).
    Case(
        "bce_multilabel_accuracy",
        arch=base_arch(head=dense(3, "sigmoid")),
        target="multilabel",
        loss="binary_crossentropy",
    ),
    Case(
        "mse_regression",
        arch=base_arch(head=dense(3)),
        target="regression",
        loss="mean_squared_error",
        metrics=[],
        optimizer={"learning_rate": 0.005},
    ),
    # MSE on one linear unit + 'accuracy' resolves to BinaryAccuracy (§6.1).
    Case(
        "mse_class_one_unit_accuracy",
        arch=base_arch(head=dense(1)),
        target="binary",
        loss=("MeanSquaredError", {}),
        optimizer={"learning_rate": 0.005},
    ),
    # ---- hidden activations (keras-spec §2.2) -------------------------------------------------
    Case(
        "act_sigmoid_and_tanh_layer",
        arch=[dense(32, "sigmoid"), dense(16), ("Activation", {"activation": "tanh"}), bn()]
        + [SOFTMAX10],
    ),
    Case("act_elu_selu", arch=base_arch("elu", "selu")),
    Case("act_gelu_softplus", arch=base_arch("gelu", "softplus")),
    Case("act_silu_swish", arch=base_arch("silu", "swish")),
    Case(
        "act_softmax_linear", arch=base_arch("softmax", "linear"), optimizer={"learning_rate": 0.05}
    ),
    # ---- fit options ---------------------------------------------------------------------------
    Case(
        "validation_split_3_epochs",
        validation="split",
        epochs=3,
        optimizer={"learning_rate": 0.02},
    ),
    Case("validation_data_2_epochs", validation="data", epochs=2, seed=2),
    Case(
        "flatten_no_bias_default_batch_size",
        arch=[("Flatten", {}), dense(32, "relu", use_bias=False), bn(), SOFTMAX10],
        input_shape=(4, 6),
        batch_size=None,  # Keras default: 32 (3000 = 93 * 32 + 24)
    ),
]


def _fit_kwargs(case, x_val, y_val):
    kw = {"epochs": case.epochs, "shuffle": False, "verbose": 0}
    if case.batch_size is not None:
        kw["batch_size"] = case.batch_size
    if case.validation == "split":
        kw["validation_split"] = 0.2
    elif case.validation == "data":
        kw["validation_data"] = (x_val, y_val)
    return kw


def _data(case):
    x, y = make_data(case.n_train, case.features, case.target, seed=1, input_shape=None)
    xt, yt = make_data(N_TEST, case.features, case.target, seed=2)
    if case.zero_fraction:
        rng = np.random.default_rng(7)
        x = np.where(rng.random(x.shape) < case.zero_fraction, 0.0, x).astype(x.dtype)
        xt = np.where(rng.random(xt.shape) < case.zero_fraction, 0.0, xt).astype(xt.dtype)
    if case.input_shape != (case.features,):
        x = x.reshape((-1, *case.input_shape))
        xt = xt.reshape((-1, *case.input_shape))
    return x, y, xt, yt


def _train(lib, model, case, x, y, xt, yt, optimizer=None):
    model.compile(
        optimizer=make_optimizer(lib, case.optimizer if optimizer is None else optimizer),
        loss=make_loss(lib, case.loss),
        metrics=list(case.metrics),
    )
    history = model.fit(x, y, **_fit_kwargs(case, xt, yt))
    bs = case.batch_size or 32
    return {
        "history": {k: [float(v) for v in vs] for k, vs in history.history.items()},
        "weights": [np.asarray(w) for w in model.get_weights()],
        "evaluate": model.evaluate(xt, yt, batch_size=bs, verbose=0),
        "predict": np.asarray(model.predict(xt, batch_size=bs, verbose=0)),
    }


def _counts(case):
    """Number of samples each history key averages over (for the one-flip accuracy allowance)."""
    n_val = 0
    n_fit = case.n_train
    if case.validation == "split":
        n_fit = int(np.floor(case.n_train * (1 - 0.2)))
        n_val = case.n_train - n_fit
    elif case.validation == "data":
        n_val = N_TEST
    counts = {}
    for name in case.metrics:
        counts[name] = n_fit
        counts["val_" + name] = n_val
    return counts


def compare_with_keras(got, want, case):
    labels = [
        f"layer {i} {name} {shape}" for i, name, shape in weight_layout(case.arch, case.input_shape)
    ]
    assert_history_close(got["history"], want["history"], counts=_counts(case))
    assert_weights_close(got["weights"], want["weights"], labels=labels)

    ge, we = got["evaluate"], want["evaluate"]
    if isinstance(we, list):
        assert isinstance(ge, list), f"evaluate returned {type(ge).__name__}, Keras a list"
        assert len(ge) == len(we), f"evaluate returned {ge}, Keras {we}"
        np.testing.assert_allclose(ge[0], we[0], rtol=RTOL, atol=ATOL, err_msg="evaluate loss")
        # metrics: rtol, or one of the N_TEST samples counted differently
        np.testing.assert_allclose(
            ge[1:], we[1:], rtol=RTOL, atol=1.0001 / N_TEST, err_msg="evaluate metrics"
        )
    else:
        assert isinstance(ge, float), f"evaluate returned {type(ge).__name__}, Keras a float"
        np.testing.assert_allclose(ge, we, rtol=RTOL, atol=ATOL, err_msg="evaluate()")

    gp, wp = got["predict"], want["predict"]
    assert gp.shape == wp.shape, f"predict shape {gp.shape} != Keras {wp.shape}"
    assert gp.dtype == np.float32, gp.dtype
    # atol scales with the output range (logits/regression outputs are O(5), probabilities <= 1)
    atol = ATOL * max(1.0, float(np.abs(wp).max()))
    np.testing.assert_allclose(gp, wp, rtol=RTOL, atol=atol, err_msg="predict()")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_training_matches_keras(case, kx, keras_ref):
    x, y, xt, yt = _data(case)
    km, rm = twin_models(
        kx, keras_ref, case.arch, case.input_shape, case.randomize_bn, seed=case.seed
    )
    # The copy really gave both the same start (and get_weights lists the same variables).
    w0 = [np.asarray(w) for w in km.get_weights()]
    assert_weights_close(rm.get_weights(), w0, rtol=0, atol=0, what="initial weights")

    got = _train(kx, km, case, x, y, xt, yt)
    want = _train(keras_ref, rm, case, x, y, xt, yt)
    compare_with_keras(got, want, case)

    if case.contrast is not None:
        # Same start, the option removed: Keras must end clearly elsewhere, otherwise this case
        # would not test the option at all.
        rm2 = build_model(keras_ref, case.arch, case.input_shape)
        rm2.set_weights(w0)
        other = _train(keras_ref, rm2, case, x, y, xt, yt, optimizer=case.contrast)
        diff = max_abs_diff(other["weights"], want["weights"])
        assert diff > 1e-2, f"option {case.optimizer} did not change the result (diff {diff})"
