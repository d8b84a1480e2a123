"""kerox.keras.optimizers.schedules against real Keras 3 (JAX backend).

Oracle: real Keras. Every built-in schedule is evaluated step by step by both libraries and the
values must agree to float32 rounding (relative 1e-6). kerox reproduces XLA's float32 cos and
log, its fused multiply-adds and its flush-to-zero, so on x86-64 Linux the values are in fact
identical bit for bit; the cases near the end of a long cosine decay, at restart steps, warming
down to 0 and underflowing fail at 1e-6 without that.

Keras's `CosineDecay` with a warmup and `CosineDecayRestarts` pick a branch with `ops.cond`,
which JAX compiles anew on every eager call (0.1-0.3 s each). Their sweeps over steps 0..60
are therefore checked against `KERAS_VALUES`: the values real Keras 3.15.1 (JAX 0.10.2, CPU)
returned, printed by `KERAS_BACKEND=jax python tests/test_schedules.py`.
`test_stored_keras_values_are_keras` recomputes the most telling step of each of those cases
with live Keras, so the table cannot drift from Keras unnoticed.

Also: `_values(first, count)` equals per-step `__call__` bit for bit, configs and serialization
match Keras's, user subclasses go through `_values`, and bad input raises the documented errors.
"""

from __future__ import annotations

import inspect
import json
import math
import os

import numpy as np
import pytest
from kerox.keras.optimizers import schedules as ks

os.environ.setdefault("KERAS_BACKEND", "jax")

RTOL = 1e-6
STEPS = (*range(61), 97, 250, 1000, 4096, 100_000)

# id -> (class name, kwargs, extra steps). Evaluated live in Keras at every step.
SWEEP_CASES = {
    "exp": (
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5},
        (),
    ),
    "exp_staircase": (
        "ExponentialDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 7, "decay_rate": 0.96, "staircase": True},
        (),
    ),
    # Grows, with a fractional decay_steps; overflows to inf by step 100_000.
    "exp_growth": (
        "ExponentialDecay",
        {"initial_learning_rate": 0.01, "decay_steps": 3.5, "decay_rate": 1.1},
        (),
    ),
    # 0.5 ** (4 * step) is subnormal for steps 32..37: XLA flushes it to 0.
    "exp_flush_to_zero": (
        "ExponentialDecay",
        {"initial_learning_rate": 1.0, "decay_steps": 0.25, "decay_rate": 0.5},
        (),
    ),
    "piecewise": (
        "PiecewiseConstantDecay",
        {"boundaries": [10, 20, 35], "values": [0.1, 0.05, 0.01, 0.001]},
        (),
    ),
    # Float boundaries are truncated to the integer step's dtype; int and float values mixed.
    "piecewise_float_boundaries": (
        "PiecewiseConstantDecay",
        {"boundaries": [10.5, 20.9], "values": [1, 0.5, 0.1]},
        (),
    ),
    "poly": ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 40}, ()),
    "poly_cycle_sqrt": (
        "PolynomialDecay",
        {
            "initial_learning_rate": 0.1,
            "decay_steps": 13,
            "end_learning_rate": 0.01,
            "power": 0.5,
            "cycle": True,
        },
        (),
    ),
    "poly_rising_square": (
        "PolynomialDecay",
        {"initial_learning_rate": 0.05, "decay_steps": 25, "end_learning_rate": 0.2, "power": 2.0},
        (),
    ),
    "poly_cycle_cubic_to_zero": (
        "PolynomialDecay",
        {
            "initial_learning_rate": 0.1,
            "decay_steps": 9,
            "end_learning_rate": 0.0,
            "power": 3.0,
            "cycle": True,
        },
        (),
    ),
    "inverse": (
        "InverseTimeDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 1.0, "decay_rate": 0.5},
        (),
    ),
    "inverse_staircase": (
        "InverseTimeDecay",
        {"initial_learning_rate": 0.3, "decay_steps": 6, "decay_rate": 0.7, "staircase": True},
        (),
    ),
    # alpha=0: 1 + cos(x) cancels near the end, where one ulp of cos shows.
    "cosine": ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 50}, ()),
    "cosine_alpha": (
        "CosineDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 33, "alpha": 0.1},
        (),
    ),
    # Over the last steps of a long decay 1 + cos(x) is ~1e-5: an ulp of cos is ~1e-2 there.
    "cosine_long": (
        "CosineDecay",
        {"initial_learning_rate": 0.1, "decay_steps": 1000},
        tuple(range(940, 1001)),
    ),
}

# id -> (class name, kwargs, extra steps, the step checked live). Compared with KERAS_VALUES.
COND_CASES = {
    "cosine_warmup_from_zero": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.0,
            "decay_steps": 40,
            "warmup_target": 0.1,
            "warmup_steps": 10,
        },
        (),
        42,
    ),
    "cosine_warmup_alpha": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.01,
            "decay_steps": 17,
            "alpha": 0.05,
            "warmup_target": 0.2,
            "warmup_steps": 7,
        },
        (),
        21,
    ),
    "cosine_warmup_down": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.3,
            "decay_steps": 30,
            "warmup_target": 0.1,
            "warmup_steps": 9,
        },
        (),
        33,
    ),
    "cosine_warmup_zero_steps": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.1,
            "decay_steps": 20,
            "warmup_target": 0.3,
            "warmup_steps": 0,
        },
        (),
        16,
    ),
    "restarts": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 5},
        (),
        4,
    ),
    "restarts_t3_m09_alpha": (
        "CosineDecayRestarts",
        {
            "initial_learning_rate": 0.1,
            "first_decay_steps": 4,
            "t_mul": 3.0,
            "m_mul": 0.9,
            "alpha": 0.1,
        },
        (),
        38,
    ),
    "restarts_t1_m05": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 7, "t_mul": 1.0, "m_mul": 0.5},
        (),
        26,
    ),
    # Steps 21 and 113: a float32 log other than XLA's puts step 21 in the wrong period, and
    # Keras divides by t_mul**i as a product with t_mul**-i.
    "restarts_t1_1": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 10, "t_mul": 1.1},
        (113,),
        21,
    ),
    "restarts_t1_2": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 50, "t_mul": 1.2},
        (182, 364),
        182,
    ),
    "restarts_t2_first_step": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 1, "t_mul": 2.0},
        (8191,),
        8191,
    ),
    # The ends of the first two periods, where 1 + cos(x) cancels.
    "restarts_long": (
        "CosineDecayRestarts",
        {"initial_learning_rate": 0.1, "first_decay_steps": 1000},
        (*range(960, 1001), *range(2960, 3001)),
        999,
    ),
    "cosine_warmup_long": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.0,
            "decay_steps": 1000,
            "warmup_target": 0.1,
            "warmup_steps": 10,
        },
        tuple(range(970, 1011)),
        1009,
    ),
    # Warming down to 0: 0.1 - 0.1 * s / 1000 cancels, which shows Keras's fused multiply-add.
    "cosine_warmup_to_zero": (
        "CosineDecay",
        {
            "initial_learning_rate": 0.1,
            "decay_steps": 10,
            "warmup_target": 0.0,
            "warmup_steps": 1000,
        },
        tuple(range(960, 1001)),
        999,
    ),
}

ALL_CASES = {
    **{k: v[:3] for k, v in SWEEP_CASES.items()},
    **{k: v[:3] for k, v in COND_CASES.items()},
}

# Real Keras's values (float32 bit patterns, hex) at STEPS + the case's extra steps.
KERAS_VALUES = {
    "cosine_warmup_from_zero": (
        "00000000 3c23d70b 3ca3d70b 3cf5c290 3d23d70b 3d4ccccd 3d75c290 3d8f5c29 3da3d70b 3db851eb "
        "3dcccccd 3dcc7bfd 3dcb8a0f 3dc9f87f 3dc7c9c7 3dc50159 3dc1a39a 3dbdb5da 3db93e4b 3db443fd "
        "3daecec8 3da8e74b 3da296d7 3d9be763 3d94e37d 3d8d9637 3d860b18 3d7c9c0f 3d6cd67a 3d5cde50 "
        "3d4ccccc 3d3cbb4a 3d2cc320 3d1cfd8a 3d0d8367 3cfcda53 3cdfa542 3cc395a5 3ca8d7db 3c8f9605 "
        "3c6ff02a 3c444680 3c1c7407 3bf16f2d 3bb29327 3b796e67 3b2060cd 3ab51380 3a215f00 39219e67 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000"
    ),
    "cosine_warmup_alpha": (
        "3c23d70a 3d18231c 3d83a83b 3dbb3ee7 3df2d594 3e153620 3e310176 3e4ccccd 3e4b24c4 3e463b1c "
        "3e3e3aa7 3e336929 3e2624f1 3e16e1a5 3e062457 3de8fde2 3dc51697 3da1cbcf 3d80512e 3d439533 "
        "3d0e844e 3cc67cac 3c867907 3c3e578f 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b "
        "3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b "
        "3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b "
        "3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b "
        "3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b 3c23d70b"
    ),
    "cosine_warmup_down": (
        "3e99999a 3e8e38e4 3e82d82e 3e6eeeef 3e582d83 3e416c17 3e2aaaaa 3e13e93e 3dfa4fa4 3dcccccd "
        "3dcc3d32 3dca8ff4 3dc7c9c7 3dc3f272 3dbf14bd 3db93e4b 3db27f7f 3daaeb42 3da296d7 3d99999a "
        "3d900cc2 3d860b18 3d77615b 3d62351a 3d4ccccc 3d37647e 3d22383d 3d0d8367 3cf3002a 3ccccccb "
        "3ca8d7db 3c87862a 3c526a70 3c1c7407 3bdb8107 3b8da5a7 3b2060cd 3a8f3633 398f9acd 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000"
    ),
    "cosine_warmup_zero_steps": (
        "3e99999a 3e98a78b 3e95d755 3e913ab4 3e8aeeb9 3e831b16 3e73e242 3e5f553c 3e4910a5 3e31a0dc "
        "3e199999 3e019258 3dd4451a 3da7bbf2 3d7d43c9 3d33f420 3ceaae0a 3c85ee5d 3bf09134 3af20e81 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 "
        "00000000 00000000 00000000 00000000 00000000 00000000"
    ),
    "restarts": (
        "3dcccccd 3db93e4b 3d860b18 3d0d8367 3c1c7407 3dcccccd 3dc7c9c7 3db93e4b 3da296d7 3d860b19 "
        "3d4ccccc 3d0d8367 3ca8d7d5 3c1c7410 3b2060cd 3dcccccd 3dcb8a0f 3dc7c9c7 3dc1a39a 3db93e4b "
        "3daecec8 3da296d7 3d94e37d 3d860b19 3d6cd677 3d4ccccc 3d2cc323 3d0d8367 3cdfa542 3ca8d7d5 "
        "3c6ff02a 3c1c7410 3bb29327 3b2060cd 3a215f00 3dcccccd 3dcc7bfe 3dcb8a0f 3dc9f87f 3dc7c9c7 "
        "3dc50159 3dc1a39a 3dbdb5da 3db93e4b 3db443fc 3daecec8 3da8e74b 3da296d7 3d9be762 3d94e37d "
        "3d8d9637 3d860b19 3d7c9c12 3d6cd677 3d5cde50 3d4ccccc 3d3cbb4a 3d2cc323 3d1cfd87 3d0d8367 "
        "3cfcda53 3da8e74b 3d115985 3d1fed95 3d0c51c3 3db524c5"
    ),
    "restarts_t3_m09_alpha": (
        "3dcccccd 3db1ce96 3d6147ad 3cbde465 3dba5e35 3db78ab0 3daf4170 3da21303 3d90e560 3d79c870 "
        "3d4ed915 3d23e9b9 3cf7ced7 3cb3184f 3c7cbd32 3c3a7330 3da9c779 3da97ec1 3da8a525 3da73c4f "
        "3da546fb 3da2c8fc 3d9fc72e 3d9c476a 3d985083 3d93ea33 3d8f1d0a 3d89f264 3d847453 3d7d5b13 "
        "3d715290 3d64e693 3d582f4a 3d4b457f 3d3e4259 3d313f33 3d245569 3d179e23 3d0b3223 3cfe5342 "
        "3ce7381b 3cd13fd3 3cbc9542 3ca960a0 3c97c759 3c87ebbf 3c73d967 3c5bcaef 3c47daf8 3c383060 "
        "3c2ce9aa 3c261ccd 3d9ad96a 3d9ad223 3d9abc50 3d9a97f7 3d9a651e 3d9a23d1 3d99d41e 3d997616 "
        "3d9909ce 3d521b4a 3d6fa04b 3d0b4326 3c3508ea 3c6b1fdb"
    ),
    "restarts_t1_m05": (
        "3dcccccd 3dc2a8c2 3da63ecf 3d7a5f4d 3d1f3a4a 3c9a37f0 3ba240a7 3d4ccccd 3d42a8c2 3d263ed0 "
        "3cfa5f4b 3c9f3a4d 3c1a37f0 3b2240ad 3ccccccd 3cc2a8c3 3ca63ece 3c7a5f4b 3c1f3a4d 3b9a37fb "
        "3aa2409a 3c4ccccd 3c42a8c3 3c263ece 3bfa5f4b 3b9f3a4d 3b1a37fb 3a22409a 3bcccccd 3bc2a8c3 "
        "3ba63ed2 3b7a5f57 3b1f3a42 3a9a37eb 39a2409a 3b4ccccd 3b42a8c3 3b263ed2 3afa5f57 3a9f3a42 "
        "3a1a37eb 3922409a 3acccccd 3ac2a8c3 3aa63ed2 3a7a5f57 3a1f3a42 399a37eb 38a2409a 3a4ccccd "
        "3a42a8c3 3a263ed2 39fa5f57 399f3a42 391a37eb 3822409a 39cccccd 39c2a8bf 39a63ed2 397a5f43 "
        "391f3a57 352240e7 2b1a37ab 00000000 00000000 00000000"
    ),
    "restarts_t1_1": (
        "3dcccccd 3dc7c9c7 3db93e4b 3da296d7 3d860b18 3d4ccccc 3d0d8367 3ca8d7db 3c1c7407 3b2060cd "
        "3dcccccd 3dc8a6ef 3dbc8b5b 3da9752f 3d90f043 3d69f233 3d2fa766 3cef7228 3c8d5e80 3c020b90 "
        "3b04bbc0 00000000 3dc95e2f 3dbf4d3e 3daf46b3 3d9a5d95 3d81f8b7 3d4f7563 3d1acbc0 3cd2f85d "
        "3c7b53aa 3bed8f27 3b04bba7 378d599a 3dca7f8b 3dc2ac99 3db5bbba 3da464a2 3d8f9d7d 3d711a7f "
        "3d40f6aa 3d117adf 3cca9258 3c7b53bd 3c01007a 3b33cce7 39755000 3dcbfb03 3dc6e5df 3dbd63af "
        "3dafe417 3d9f0598 3d8b8e43 3d6cc543 3d40f6aa 3d15b30d 3cd9eccf 3c913e1b 3c295eb0 3b9c1ed3 "
        "3aa5f300 3dc6d4db 3dc34ad6 3dc14348 3db99880 3d5cc615 3a9ca1b3"
    ),
    "restarts_t1_2": (
        "3dcccccd 3dcc9913 3dcbfe18 3dcafc78 3dc9953a 3dc7c9c7 3dc59bef 3dc30de7 3dc02241 3dbcdbf3 "
        "3db93e4b 3db54cf2 3db10be0 3dac7f65 3da7ac17 3da296d7 3d9d44c7 3d97bb48 3d91fff3 3d8c1890 "
        "3d860b18 3d7fbb50 3d732cfa 3d6677dd 3d59a8d5 3d4ccccc 3d3ff0c6 3d3321ba 3d266c9f 3d19de4a "
        "3d0d8367 3d016878 3ceb3367 3cd4460d 3cbe2013 3ca8d7db 3c9482d5 3c8135a2 3c5e0767 3c3bfeda "
        "3c1c7407 3bff0d93 3bcaa8c0 3b9bee67 3b661bb3 3b2060cd 3acde49a 3a682a33 39ceb533 38cee99a "
        "3dcccccd 3dcca8e0 3dcc3d32 3dcb8a0f 3dca8ff3 3dc94f91 3dc7c9c7 3dc5ffa7 3dc3f273 3dc1a39b "
        "3dbf14bc 3c368fdd 3c309b53 3c07a3a7 3ce95cb7 3b8fd7cd 3dcccccd 3ac37080"
    ),
    "restarts_t2_first_step": (
        "3dcccccd 3dcccccd 3d4ccccc 3dcccccd 3daecec8 3d4ccccc 3c6ff02a 3dcccccd 3dc50159 3daecec8 "
        "3d8d9637 3d4ccccc 3cfcda53 3c6ff02a 3b796e67 3dcccccd 3dcad519 3dc50159 3dbb8ae0 3daecec8 "
        "3d9f4a57 3d8d9637 3d74c127 3d4ccccc 3d24d873 3cfcda53 3cb609d3 3c6ff02a 3c0a0f60 3b796e67 "
        "3a7bd9cd 3dcccccd 3dcc4e92 3dcad519 3dc86405 3dc50159 3dc0b570 3dbb8ae0 3db58e68 3daecec8 "
        "3da75ca3 3d9f4a57 3d96abc8 3d8d9637 3d84200a 3d74c127 3d60dfb8 3d4ccccc 3d38b9e0 3d24d873 "
        "3d115985 3cfcda53 3cd88410 3cb609d3 3c95c0a5 3c6ff02a 3c39f327 3c0a0f60 3bc175c7 3b796e67 "
        "3b0d190d 3d38b9e0 39c52533 3a024f00 3dcccccb 3d3c287a 00000000"
    ),
    "restarts_long": (
        "3dcccccd 3dccccab 3dcccc48 3dcccba3 3dcccabb 3dccc991 3dccc825 3dccc677 3dccc486 3dccc253 "
        "3dccbfdd 3dccbd27 3dccba2d 3dccb6f1 3dccb373 3dccafb3 3dccabb1 3dcca76d 3dcca2e6 3dcc9e1d "
        "3dcc9913 3dcc93c6 3dcc8e37 3dcc8866 3dcc8253 3dcc7bfd 3dcc7567 3dcc6e8d 3dcc6772 3dcc6015 "
        "3dcc5876 3dcc5095 3dcc4872 3dcc400d 3dcc3767 3dcc2e7e 3dcc2553 3dcc1be7 3dcc1239 3dcc0849 "
        "3dcbfe18 3dcbf3a5 3dcbe8ef 3dcbddf9 3dcbd2c0 3dcbc747 3dcbbb8b 3dcbaf8f 3dcba350 3dcb96d0 "
        "3dcb8a0f 3dcb7d0c 3dcb6fc8 3dcb6242 3dcb547b 3dcb4673 3dcb382a 3dcb299f 3dcb1ad3 3dcb0bc7 "
        "3dcafc78 3dc81503 3daecec8 3dcccccd 3da925d3 3d1b09a4 39ceb533 39c4839a 39ba9400 39b0e600 "
        "39a7799a 399e4f33 399566cd 398cc000 39845b33 39787000 3968ad9a 39597000 394ab59a 393c7f33 "
        "392ecccd 39219e67 3914f4cd 3908ce67 38fa599a 38e41ccd 38cee99a 38babe67 38a79b33 3895819a "
        "38847000 3868d000 384ad000 382ee000 38150333 37fa6ccd 37cef99a 37a7a667 37847333 374ad99a "
        "37150000 36cf0000 36848000 36150000 35846667 3484cccd 3dcccccd 38cee99a 38c4b333 38babe67 "
        "38b10b33 38a79b33 389e6e67 3895819a 388cd800 38847000 38789667 3868d000 38598ccd 384ad000 "
        "383c9333 382ee000 3821b000 38150333 3808d99a 37fa6ccd 37e42ccd 37cef99a 37bac667 37a7a667 "
        "37958667 37847333 3768d99a 374ad99a 372ee667 37150000 36fa6667 36cf0000 36a7b333 36848000 "
        "364acccd 36150000 35cecccd 35846667 3514cccd 3484cccd 33866667 3dcccccd"
    ),
    "cosine_warmup_long": (
        "00000000 3c23d70b 3ca3d70b 3cf5c290 3d23d70b 3d4ccccd 3d75c290 3d8f5c29 3da3d70b 3db851eb "
        "3dcccccd 3dccccab 3dcccc48 3dcccba3 3dcccabb 3dccc991 3dccc825 3dccc677 3dccc486 3dccc253 "
        "3dccbfdd 3dccbd27 3dccba2d 3dccb6f1 3dccb373 3dccafb3 3dccabb1 3dcca76d 3dcca2e6 3dcc9e1d "
        "3dcc9913 3dcc93c6 3dcc8e37 3dcc8866 3dcc8253 3dcc7bfd 3dcc7567 3dcc6e8d 3dcc6772 3dcc6015 "
        "3dcc5876 3dcc5095 3dcc4872 3dcc400d 3dcc3767 3dcc2e7e 3dcc2553 3dcc1be7 3dcc1239 3dcc0849 "
        "3dcbfe18 3dcbf3a5 3dcbe8ef 3dcbddf9 3dcbd2c0 3dcbc747 3dcbbb8b 3dcbaf8f 3dcba350 3dcb96d0 "
        "3dcb8a0f 3dc8ffbb 3db10be0 37cef99a 00000000 00000000 39ceb533 39c4839a 39ba9400 39b0e600 "
        "39a7799a 399e4f33 399566cd 398cc000 39845b33 39787000 3968ad9a 39597000 394ab59a 393c7f33 "
        "392ecccd 39219e67 3914f4cd 3908ce67 38fa599a 38e41ccd 38cee99a 38babe67 38a79b33 3895819a "
        "38847000 3868d000 384ad000 382ee000 38150333 37fa6ccd 37cef99a 37a7a667 37847333 374ad99a "
        "37150000 36cf0000 36848000 36150000 35846667 3484cccd 00000000"
    ),
    "cosine_warmup_to_zero": (
        "3dcccccd 3dcc985f 3dcc63f1 3dcc2f84 3dcbfb16 3dcbc6a8 3dcb923a 3dcb5dcd 3dcb295f 3dcaf4f1 "
        "3dcac083 3dca8c15 3dca57a8 3dca233a 3dc9eecc 3dc9ba5e 3dc985f1 3dc95183 3dc91d15 3dc8e8a7 "
        "3dc8b43a 3dc87fcc 3dc84b5e 3dc816f0 3dc7e282 3dc7ae15 3dc779a7 3dc74539 3dc710cb 3dc6dc5e "
        "3dc6a7f0 3dc67382 3dc63f14 3dc60aa6 3dc5d639 3dc5a1cb 3dc56d5d 3dc538ef 3dc50482 3dc4d014 "
        "3dc49ba6 3dc46738 3dc432cb 3dc3fe5d 3dc3c9ef 3dc39581 3dc36113 3dc32ca6 3dc2f838 3dc2c3ca "
        "3dc28f5c 3dc25aef 3dc22681 3dc1f213 3dc1bda5 3dc18937 3dc154ca 3dc1205c 3dc0ebee 3dc0b780 "
        "3dc08313 3db8ef35 3d99999a 00000000 00000000 00000000 3b831273 3b7f971a 3b790967 3b727bb3 "
        "3b6bee00 3b65604d 3b5ed280 3b5844cd 3b51b71a 3b4b2967 3b449b9a 3b3e0de7 3b378033 3b30f280 "
        "3b2a64cd 3b23d700 3b1d494d 3b16bb9a 3b102de7 3b09a033 3b031267 3af90967 3aebee00 3aded29a "
        "3ad1b700 3ac49b9a 3ab78033 3aaa64cd 3a9d4967 3a902dcd 3a831267 3a6bee00 3a51b733 3a378067 "
        "3a1d4933 3a031267 39d1b733 399d499a 3951b667 38d1b667 00000000"
    ),
}


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


def _steps(case_id):
    return (*STEPS, *ALL_CASES[case_id][2])


def _make(lib_schedules, case_id):
    name, kwargs, _ = ALL_CASES[case_id]
    return getattr(lib_schedules, name)(**kwargs)


def _keras_values(keras, case_id, steps):
    schedule = _make(keras.optimizers.schedules, case_id)
    return np.array([np.asarray(schedule(int(s))) for s in steps], dtype=np.float32)


def _stored_keras_values(case_id):
    bits = np.array([int(h, 16) for h in KERAS_VALUES[case_id].split()], dtype=np.uint32)
    return bits.view(np.float32)


def _ours(case_id, steps):
    schedule = _make(ks, case_id)
    values = [schedule(s) for s in steps]
    assert all(type(v) is np.float32 for v in values)
    return np.array(values, dtype=np.float32)


def _assert_close(ours, expected, steps, what):
    ours64, exp64 = ours.astype(np.float64), expected.astype(np.float64)
    with np.errstate(invalid="ignore"):
        bad = ~((ours64 == exp64) | (np.abs(ours64 - exp64) <= RTOL * np.abs(exp64)))
    bad &= ~(np.isnan(ours64) & np.isnan(exp64))
    listed = [(steps[i], float(ours[i]), float(expected[i])) for i in np.flatnonzero(bad)[:8]]
    assert not bad.any(), f"{what}: {int(bad.sum())} steps differ (step, kerox, keras): {listed}"


# --------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case_id", sorted(SWEEP_CASES))
def test_values_match_keras_step_by_step(case_id):
    keras = _keras()
    steps = _steps(case_id)
    _assert_close(_ours(case_id, steps), _keras_values(keras, case_id, steps), steps, case_id)


@pytest.mark.parametrize("case_id", sorted(COND_CASES))
def test_values_match_stored_keras_values(case_id):
    steps = _steps(case_id)
    expected = _stored_keras_values(case_id)
    assert expected.shape == (len(steps),)
    _assert_close(_ours(case_id, steps), expected, steps, case_id)


@pytest.mark.parametrize("case_id", sorted(COND_CASES))
def test_stored_keras_values_are_keras(case_id):
    keras = _keras()
    step = COND_CASES[case_id][3]
    live = _keras_values(keras, case_id, [step])
    stored = _stored_keras_values(case_id)[_steps(case_id).index(step)]
    _assert_close(np.array([stored]), live, [step], f"KERAS_VALUES[{case_id!r}]")
    _assert_close(_ours(case_id, [step]), live, [step], case_id)


def test_float_steps_match_keras():
    # Keras casts a float step to float32; PiecewiseConstantDecay then compares in float32.
    keras = _keras()
    for case_id in ("piecewise_float_boundaries", "exp", "poly_cycle_sqrt", "cosine"):
        steps = [0.0, 2.5, 10.0, 10.4, 10.7, 20.9, 21.5, 33.3]
        ours = np.array([_make(ks, case_id)(s) for s in steps], dtype=np.float32)
        schedule = _make(keras.optimizers.schedules, case_id)
        theirs = np.array([np.asarray(schedule(s)) for s in steps], dtype=np.float32)
        _assert_close(ours, theirs, steps, case_id)


def test_call_accepts_numpy_scalars_and_rejects_non_scalars():
    schedule = _make(ks, "exp")
    expected = schedule(7)
    for step in (np.int64(7), np.int32(7), np.uint8(7), np.array(7), 7.0, np.float32(7)):
        assert schedule(step) == expected
    for bad in ("7", None, True, [7], np.array([7, 8]), 7 + 0j):
        with pytest.raises(TypeError, match="scalar step"):
            schedule(bad)


# --------------------------------------------------------------------------------------------
# _values: the training loop's window of steps
# --------------------------------------------------------------------------------------------

WINDOWS = ((0, 61), (0, 1), (5, 17), (95, 10), (4090, 12), (99_990, 20), (7, 0))


@pytest.mark.parametrize("case_id", sorted(ALL_CASES))
def test_values_window_is_bit_identical_to_call(case_id):
    schedule = _make(ks, case_id)
    for first, count in WINDOWS:
        per_step = np.array([schedule(s) for s in range(first, first + count)], dtype=np.float32)
        invalid = ~(np.isfinite(per_step) & (per_step >= 0))
        if invalid.any():
            step = first + int(np.argmax(invalid))
            with pytest.raises(ValueError, match=rf"returned .* at step {step};"):
                schedule._values(first, count)
            continue
        window = schedule._values(first, count)
        assert window.dtype == np.float32 and window.shape == (count,)
        assert window.flags["C_CONTIGUOUS"]
        assert np.array_equal(window.view(np.uint32), per_step.view(np.uint32)), (first, count)


def test_values_rejects_a_bad_window():
    schedule = _make(ks, "exp")
    with pytest.raises(ValueError, match="must be >= 0"):
        schedule._values(0, -1)
    with pytest.raises(ValueError, match="must be >= 0"):
        schedule._values(-1, 3)
    with pytest.raises(TypeError, match="must be integers"):
        schedule._values(1.5, 3)


def test_values_reports_where_a_builtin_schedule_stops_being_usable():
    keras = _keras()
    # 0.1 * 2.0 ** step: 2.0 ** 128 overflows float32, so step 128 is the first inf.
    schedule = ks.ExponentialDecay(0.1, 1, 2.0)
    with pytest.raises(ValueError, match=r"returned inf at step 128; it must return a finite"):
        schedule._values(100, 50)
    theirs = keras.optimizers.schedules.ExponentialDecay(0.1, 1, 2.0)
    assert np.isfinite(np.asarray(theirs(127))) and np.isinf(np.asarray(theirs(128)))
    # t_mul < 1 (accepted, as by Keras): the periods sum to first_decay_steps / (1 - t_mul)
    # = 20 steps, after which log() of a non-positive number gives NaN.
    schedule = ks.CosineDecayRestarts(0.1, 10, t_mul=0.5)
    assert np.isfinite(schedule._values(0, 20)).all()
    with pytest.raises(ValueError, match=r"returned nan at step 20;"):
        schedule._values(0, 30)


# --------------------------------------------------------------------------------------------
# User schedules
# --------------------------------------------------------------------------------------------


class InverseStep(ks.LearningRateSchedule):
    """The example from Keras's docstring."""

    def __init__(self, initial_learning_rate):
        self.initial_learning_rate = initial_learning_rate

    def __call__(self, step):
        return self.initial_learning_rate / (step + 1)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate}


class Returns(ks.LearningRateSchedule):
    """Returns 0.01 except at step 12, where it returns `value`."""

    def __init__(self, value):
        self.value = value

    def __call__(self, step):
        return self.value if step == 12 else 0.01


def test_user_schedule_through_values():
    schedule = InverseStep(0.1)
    for first, count in ((0, 50), (7, 3), (1000, 5), (3, 0)):
        # Hand computation: 0.1 / (step + 1) in Python floats, rounded once to float32.
        expected = np.array([0.1 / (s + 1) for s in range(first, first + count)], np.float32)
        window = schedule._values(first, count)
        assert window.dtype == np.float32 and window.flags["C_CONTIGUOUS"]
        assert np.array_equal(window, expected)
    assert InverseStep.from_config({"initial_learning_rate": 0.5})(1) == 0.25


@pytest.mark.parametrize(
    "value",
    [np.float64(0.02), np.float32(0.02), np.array(0.02), np.array([0.02]), 0, 2, np.int64(3)],
)
def test_user_schedule_may_return_any_real_scalar(value):
    window = Returns(value)._values(10, 4)
    assert window[2] == np.float32(np.asarray(value).reshape(()))
    assert window[0] == np.float32(0.01)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (math.nan, "nan"),
        (np.float32("nan"), "nan"),
        (-0.5, "-0.5"),
        (math.inf, "inf"),
        (1e40, r"1e\+40"),  # finite in Python, inf in float32
        ("0.1", "'0.1'"),
        (None, "None"),
        ([0.1, 0.2], r"\[0.1, 0.2\]"),
        (1 + 2j, r"\(1\+2j\)"),
    ],
)
def test_user_schedule_returning_a_bad_value_names_the_step(value, shown):
    with pytest.raises(
        ValueError,
        match=rf"schedule Returns returned {shown} at step 12; it must return a finite "
        "non-negative float",
    ):
        Returns(value)._values(5, 20)
    assert Returns(value)._values(0, 12).shape == (12,)  # steps before 12 are fine


def test_subclass_of_a_builtin_with_its_own_call_is_asked_per_step():
    class Halved(ks.ExponentialDecay):
        def __call__(self, step):
            return super().__call__(step) / 2

    schedule, base = Halved(0.1, 10, 0.5), ks.ExponentialDecay(0.1, 10, 0.5)
    expected = np.array([base(s) / 2 for s in range(3, 40)], dtype=np.float32)
    assert np.array_equal(schedule._values(3, 37), expected)


def test_base_class_errors_match_keras():
    keras = _keras()
    for method, args in (("__call__", (1,)), ("get_config", ())):
        with pytest.raises(NotImplementedError) as theirs:
            getattr(keras.optimizers.schedules.LearningRateSchedule(), method)(*args)
        with pytest.raises(NotImplementedError) as ours:
            getattr(ks.LearningRateSchedule(), method)(*args)
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(NotImplementedError, match="must override `__call__"):
        ks.LearningRateSchedule()._values(0, 2)


# --------------------------------------------------------------------------------------------
# API, configs and serialization
# --------------------------------------------------------------------------------------------


def test_public_names_and_signatures_match_keras():
    keras = _keras()
    theirs = keras.optimizers.schedules
    assert sorted(ks.__all__) == sorted(n for n in dir(theirs) if not n.startswith("_"))
    for name in ks.__all__:
        ours_obj = getattr(ks, name)
        if inspect.isclass(ours_obj):
            ours_obj = ours_obj.__init__
        ours_sig = inspect.signature(ours_obj)
        their_obj = getattr(theirs, name)
        their_sig = inspect.signature(
            their_obj.__init__ if inspect.isclass(their_obj) else their_obj
        )
        if name == "deserialize":  # kerox has no custom objects to look up
            assert list(ours_sig.parameters) == ["config"]
            continue
        if name == "LearningRateSchedule":
            continue
        got = [(p.name, p.default, p.kind) for p in ours_sig.parameters.values()]
        want = [(p.name, p.default, p.kind) for p in their_sig.parameters.values()]
        assert got == want, name


@pytest.mark.parametrize("case_id", sorted(ALL_CASES))
def test_get_config_matches_keras(case_id):
    keras = _keras()
    ours = _make(ks, case_id).get_config()
    theirs = _make(keras.optimizers.schedules, case_id).get_config()
    assert ours == theirs
    assert list(ours) == list(theirs)
    assert [type(v) for v in ours.values()] == [type(v) for v in theirs.values()]


@pytest.mark.parametrize("case_id", sorted(ALL_CASES))
def test_serialize_matches_keras_and_round_trips(case_id):
    keras = _keras()
    theirs_lib = keras.optimizers.schedules
    schedule = _make(ks, case_id)
    ours = ks.serialize(schedule)
    theirs = theirs_lib.serialize(_make(theirs_lib, case_id))
    assert ours == theirs
    assert json.dumps(ours) == json.dumps(theirs)
    steps = [0, 1, 7, 13, 29, 60, 1000]
    expected = np.array([schedule(s) for s in steps], dtype=np.float32)
    for config in (ours, json.loads(json.dumps(ours)), theirs):
        rebuilt = ks.deserialize(config)
        assert type(rebuilt) is type(schedule)
        assert rebuilt.get_config() == schedule.get_config()
        got = np.array([rebuilt(s) for s in steps], dtype=np.float32)
        assert np.array_equal(got, expected, equal_nan=True)
    # ... and Keras reads what kerox writes.
    assert theirs_lib.deserialize(ours).get_config() == schedule.get_config()


def test_serialize_numpy_config_values_like_keras():
    keras = _keras()
    args = (np.array([10, 20]), np.array([0.1, 0.05, 0.01]))
    ours = ks.serialize(ks.PiecewiseConstantDecay(*args))
    assert ours == keras.optimizers.schedules.serialize(
        keras.optimizers.schedules.PiecewiseConstantDecay(*args)
    )
    rebuilt = ks.deserialize(ours)
    assert np.array_equal(rebuilt.boundaries, args[0]) and np.array_equal(rebuilt.values, args[1])
    assert [rebuilt(s) for s in (10, 11, 21)] == [
        np.float32(0.1),
        np.float32(0.05),
        np.float32(0.01),
    ]
    kwargs = {
        "initial_learning_rate": np.float32(0.1),
        "decay_steps": np.int64(10),
        "decay_rate": np.float64(0.5),
        "staircase": np.bool_(True),
    }
    assert ks.serialize(ks.ExponentialDecay(**kwargs)) == keras.optimizers.schedules.serialize(
        keras.optimizers.schedules.ExponentialDecay(**kwargs)
    )


def test_serialize_a_user_schedule_like_keras():
    keras = _keras()
    body = {
        "__init__": InverseStep.__init__,
        "__call__": InverseStep.__call__,
        "get_config": InverseStep.get_config,
        "__module__": __name__,
    }
    twin = type("InverseStep", (keras.optimizers.schedules.LearningRateSchedule,), body)
    assert ks.serialize(InverseStep(0.1)) == keras.optimizers.schedules.serialize(twin(0.1))
    with pytest.raises(NotImplementedError, match="must override `get_config"):
        ks.serialize(Returns(0.1))
    with pytest.raises(TypeError, match="expects a LearningRateSchedule"):
        ks.serialize(0.1)


def test_deserialize_accepts_the_legacy_form():
    # The example in Keras's `deserialize` docstring, without "module"; its "name": None makes
    # Keras's schedule fail on its first call, and kerox refuse it at once (same message).
    config = {
        "class_name": "PolynomialDecay",
        "config": {
            "cycle": False,
            "decay_steps": 10000,
            "end_learning_rate": 0.01,
            "initial_learning_rate": 0.1,
            "name": None,
            "power": 0.5,
        },
    }
    with pytest.raises(ValueError, match="Argument `name` must be a string"):
        ks.deserialize(config)
    config["config"]["name"] = "PolynomialDecay"
    schedule = ks.deserialize(config)
    assert isinstance(schedule, ks.PolynomialDecay)
    assert schedule.get_config() == config["config"]


def test_a_name_keras_cannot_use_is_refused_with_keras_message():
    keras = _keras()
    for name in (None, "a/b", 3):
        with pytest.raises(ValueError) as theirs:
            keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.5, name=name)(1)
        with pytest.raises(ValueError) as ours:
            ks.ExponentialDecay(0.1, 10, 0.5, name=name)
        assert str(ours.value) == str(theirs.value)


BUILTIN_NAMES = (
    "CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay, "
    "PiecewiseConstantDecay, PolynomialDecay"
)


@pytest.mark.parametrize(
    "config",
    [
        {"class_name": "StepDecay", "config": {}},
        {"class_name": "LearningRateSchedule", "config": {}},
        {"module": "builtins", "class_name": "eval", "config": {"source": "1/0"}},
        {"module": "os", "class_name": "system", "config": {"command": "false"}},
        {"module": "my.schedules", "class_name": "ExponentialDecay", "config": {}},
        {"module": "keras.optimizers.schedules", "class_name": "serialize", "config": {}},
    ],
)
def test_deserialize_refuses_unknown_classes(config):
    with pytest.raises(ValueError, match=rf"{config['class_name']}'.*{BUILTIN_NAMES}"):
        ks.deserialize(config)


def test_deserialize_refuses_what_is_not_a_serialized_schedule():
    with pytest.raises(TypeError, match="expects a dict"):
        ks.deserialize("ExponentialDecay")
    with pytest.raises(TypeError, match="expects a dict"):
        ks.deserialize({"config": {}})
    with pytest.raises(TypeError, match="must be a dict of its arguments"):
        ks.deserialize({"class_name": "ExponentialDecay", "config": None})
    with pytest.raises(TypeError, match="unexpected keyword argument 'rate'"):
        ks.deserialize({"class_name": "ExponentialDecay", "config": {"rate": 1}})


# --------------------------------------------------------------------------------------------
# Arguments
# --------------------------------------------------------------------------------------------

KERAS_REJECTS = [
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": 0, "decay_rate": 0.5}),
    ("ExponentialDecay", {"initial_learning_rate": 0.1, "decay_steps": -3, "decay_rate": 0.5}),
    ("PolynomialDecay", {"initial_learning_rate": 0.1, "decay_steps": 0}),
    ("InverseTimeDecay", {"initial_learning_rate": 0.1, "decay_steps": -1.5, "decay_rate": 0.5}),
    ("CosineDecay", {"initial_learning_rate": 0.1, "decay_steps": 0}),
    ("CosineDecayRestarts", {"initial_learning_rate": 0.1, "first_decay_steps": 0}),
    ("PiecewiseConstantDecay", {"boundaries": [10, 20], "values": [0.1, 0.05]}),
    ("PiecewiseConstantDecay", {"boundaries": [10], "values": [0.1, 0.05, 0.01]}),
]


@pytest.mark.parametrize(("name", "kwargs"), KERAS_REJECTS)
def test_keras_validation_is_reproduced(name, kwargs):
    keras = _keras()
    with pytest.raises(ValueError) as theirs:
        getattr(keras.optimizers.schedules, name)(**kwargs)
    with pytest.raises(ValueError) as ours:
        getattr(ks, name)(**kwargs)
    assert str(ours.value) == str(theirs.value)


NAN, INF = math.nan, math.inf
EXP = {"initial_learning_rate": 0.1, "decay_steps": 10, "decay_rate": 0.5}
POLY = {"initial_learning_rate": 0.1, "decay_steps": 10}
COS = {"initial_learning_rate": 0.1, "decay_steps": 10}
SGDR = {"initial_learning_rate": 0.1, "first_decay_steps": 10}
PIECE = {"boundaries": [10, 20], "values": [0.1, 0.05, 0.01]}

# Accepted silently by Keras, refused by kerox: (class, kwargs, error type, argument named).
KEROX_REJECTS = [
    (
        "ExponentialDecay",
        {**EXP, "initial_learning_rate": NAN},
        ValueError,
        "initial_learning_rate",
    ),
    (
        "ExponentialDecay",
        {**EXP, "initial_learning_rate": -0.1},
        ValueError,
        "initial_learning_rate",
    ),
    (
        "ExponentialDecay",
        {**EXP, "initial_learning_rate": INF},
        ValueError,
        "initial_learning_rate",
    ),
    ("ExponentialDecay", {**EXP, "decay_steps": NAN}, ValueError, "decay_steps"),
    ("ExponentialDecay", {**EXP, "decay_steps": INF}, ValueError, "decay_steps"),
    ("ExponentialDecay", {**EXP, "decay_rate": -0.5}, ValueError, "decay_rate"),
    ("ExponentialDecay", {**EXP, "decay_rate": NAN}, ValueError, "decay_rate"),
    (
        "ExponentialDecay",
        {**EXP, "initial_learning_rate": "0.1"},
        TypeError,
        "initial_learning_rate",
    ),
    ("ExponentialDecay", {**EXP, "decay_steps": "10"}, TypeError, "decay_steps"),
    ("ExponentialDecay", {**EXP, "decay_rate": True}, TypeError, "decay_rate"),
    ("PolynomialDecay", {**POLY, "end_learning_rate": -1e-4}, ValueError, "end_learning_rate"),
    ("PolynomialDecay", {**POLY, "power": -1.0}, ValueError, "power"),
    ("PolynomialDecay", {**POLY, "power": NAN}, ValueError, "power"),
    (
        "PolynomialDecay",
        {**POLY, "initial_learning_rate": NAN},
        ValueError,
        "initial_learning_rate",
    ),
    ("InverseTimeDecay", {**EXP, "decay_rate": -0.5}, ValueError, "decay_rate"),
    (
        "InverseTimeDecay",
        {**EXP, "initial_learning_rate": -1.0},
        ValueError,
        "initial_learning_rate",
    ),
    ("CosineDecay", {**COS, "alpha": -0.1}, ValueError, "alpha"),
    ("CosineDecay", {**COS, "alpha": NAN}, ValueError, "alpha"),
    ("CosineDecay", {**COS, "warmup_target": -0.1, "warmup_steps": 5}, ValueError, "warmup_target"),
    ("CosineDecay", {**COS, "warmup_target": NAN, "warmup_steps": 5}, ValueError, "warmup_target"),
    ("CosineDecay", {**COS, "warmup_target": 0.2, "warmup_steps": -5}, ValueError, "warmup_steps"),
    ("CosineDecay", {**COS, "decay_steps": NAN}, ValueError, "decay_steps"),
    ("CosineDecayRestarts", {**SGDR, "t_mul": 0.0}, ValueError, "t_mul"),
    ("CosineDecayRestarts", {**SGDR, "t_mul": -2.0}, ValueError, "t_mul"),
    ("CosineDecayRestarts", {**SGDR, "t_mul": NAN}, ValueError, "t_mul"),
    ("CosineDecayRestarts", {**SGDR, "m_mul": -1.0}, ValueError, "m_mul"),
    ("CosineDecayRestarts", {**SGDR, "alpha": -0.1}, ValueError, "alpha"),
    ("CosineDecayRestarts", {**SGDR, "first_decay_steps": INF}, ValueError, "first_decay_steps"),
    (
        "CosineDecayRestarts",
        {**SGDR, "initial_learning_rate": NAN},
        ValueError,
        "initial_learning_rate",
    ),
    ("PiecewiseConstantDecay", {**PIECE, "values": [0.1, -0.05, 0.01]}, ValueError, "values"),
    ("PiecewiseConstantDecay", {**PIECE, "values": [0.1, NAN, 0.01]}, ValueError, "values"),
    ("PiecewiseConstantDecay", {**PIECE, "boundaries": [20, 10]}, ValueError, "boundaries"),
    ("PiecewiseConstantDecay", {**PIECE, "boundaries": [10, 10]}, ValueError, "boundaries"),
    ("PiecewiseConstantDecay", {**PIECE, "boundaries": [10, NAN]}, ValueError, "boundaries"),
    ("PiecewiseConstantDecay", {"boundaries": [], "values": [0.1]}, ValueError, "boundaries"),
    ("PiecewiseConstantDecay", {**PIECE, "values": [0.1, "x", 0.01]}, TypeError, "values"),
    ("PiecewiseConstantDecay", {**PIECE, "boundaries": [10, None]}, TypeError, "boundaries"),
]


@pytest.mark.parametrize(("name", "kwargs", "exc_type", "argument"), KEROX_REJECTS)
def test_unusable_arguments_are_refused(name, kwargs, exc_type, argument):
    with pytest.raises(exc_type, match=rf"Argument `{argument}` must"):
        getattr(ks, name)(**kwargs)


# Valid in Keras, so valid in kerox too (values compared with Keras at a few steps).
KERAS_ACCEPTS = [
    ("ExponentialDecay", {**EXP, "initial_learning_rate": 0.0}),
    ("ExponentialDecay", {**EXP, "decay_rate": 1.5}),
    ("ExponentialDecay", {**EXP, "decay_rate": 0.0}),
    ("ExponentialDecay", {**EXP, "decay_steps": 2.5}),
    (
        "ExponentialDecay",
        {**EXP, "initial_learning_rate": np.float32(0.1), "decay_steps": np.int64(10)},
    ),
    ("PolynomialDecay", {**POLY, "end_learning_rate": 0.5}),
    ("PolynomialDecay", {**POLY, "power": 0.0}),
    ("InverseTimeDecay", {**EXP, "decay_rate": 0.0}),
    ("CosineDecay", {**COS, "alpha": 1.0}),
    ("CosineDecay", {**COS, "alpha": 2.0}),
    ("PiecewiseConstantDecay", {"boundaries": (10,), "values": (0.1, 0.0)}),
    ("PiecewiseConstantDecay", {"boundaries": [-5, 0.5, 1e9], "values": [3, 2, 1, 0]}),
]


@pytest.mark.parametrize(("name", "kwargs"), KERAS_ACCEPTS)
def test_what_keras_accepts_is_accepted(name, kwargs):
    keras = _keras()
    ours = getattr(ks, name)(**kwargs)
    theirs = getattr(keras.optimizers.schedules, name)(**kwargs)
    steps = [0, 1, 5, 10, 11, 25]
    got = np.array([ours(s) for s in steps], dtype=np.float32)
    want = np.array([np.asarray(theirs(s)) for s in steps], dtype=np.float32)
    _assert_close(got, want, steps, name)
    assert ours.get_config() == theirs.get_config()


def test_cond_schedules_keras_accepts_are_accepted():
    # Construction only: their Keras oracle is slow (see the module docstring).
    ks.CosineDecay(0.0, 10, warmup_target=0.1, warmup_steps=5)
    ks.CosineDecay(0.1, 10, warmup_target=0.0, warmup_steps=2.5)
    ks.CosineDecayRestarts(0.1, 10, t_mul=0.5, m_mul=1.5, alpha=1.0)
    ks.CosineDecayRestarts(0.1, 2.5, t_mul=1)


def test_int_learning_rates_compute_in_float32():
    # Keras computes in int32 when initial_learning_rate is an int, so that decay_rate=0.5
    # becomes 0 and ExponentialDecay(1, 10, 0.5)(5) is 0.0; kerox treats the int as a float.
    # Expected values: 1 * 0.5 ** 0.5 and 0.05 / 10 * 5 (warmup from 0 to 0.1 over 10 steps).
    ours = ks.ExponentialDecay(1, 10, 0.5)
    assert ours(5) == ks.ExponentialDecay(1.0, 10, 0.5)(5)
    assert ours(5) == pytest.approx(math.sqrt(0.5), rel=RTOL)
    assert ours.get_config()["initial_learning_rate"] == 1
    warmup = ks.CosineDecay(0, 100, warmup_target=0.1, warmup_steps=10)
    assert warmup(5) == pytest.approx(0.05, rel=RTOL)


if __name__ == "__main__":
    # Print KERAS_VALUES from live Keras (slow: every cond-based call compiles).
    keras = _keras()
    print("KERAS_VALUES = {")
    for case_id in COND_CASES:
        hexes = [f"{b:08x}" for b in _keras_values(keras, case_id, _steps(case_id)).view(np.uint32)]
        rows = [" ".join(hexes[i : i + 10]) for i in range(0, len(hexes), 10)]
        print(f'    "{case_id}": (')
        print("\n".join(f'        "{row} "' for row in rows[:-1]))
        print(f'        "{rows[-1]}"\n    ),')
    print("}")
