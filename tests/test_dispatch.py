"""The dispatch cap: `KEROX_DISPATCH` (used by `make pytest-dispatch` to run the engine-level
tests at AVX2 and at scalar) really lowers the level every model's kernels run at."""

from __future__ import annotations

import os

import numpy as np
import pytest
from kerox import config
from kerox import keras as kx

_ORDER = ["scalar", "avx2", "avx512"]


def test_env_cap_is_in_effect() -> None:
    cap = os.environ.get("KEROX_DISPATCH")
    if not cap:
        # No cap: the default is the CPU's best level.
        assert config.dispatch_level() == config.cpu_level()
        return
    want = _ORDER[min(_ORDER.index(cap), _ORDER.index(config.cpu_level()))]
    assert config.dispatch_level() == want
    m = kx.Sequential([kx.Input((4,)), kx.layers.Dense(3)])
    m.predict(np.ones((2, 4), np.float32), verbose=0)
    assert m._engine.dispatch_level == want


@pytest.mark.parametrize("level", _ORDER)
def test_every_level_predicts_the_same_numbers(level: str) -> None:
    """Each level computes the same layer to float rounding (a float64 NumPy reference)."""
    if _ORDER.index(level) > _ORDER.index(config.cpu_level()):
        pytest.skip(f"this CPU has no {level}")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(37, 50)).astype(np.float32)
    m = kx.Sequential([kx.Input((50,)), kx.layers.Dense(70, activation="tanh")])
    ref = np.tanh(x.astype(np.float64) @ m.get_weights()[0] + m.get_weights()[1])
    previous = config.dispatch_level()
    try:
        config.set_dispatch_level(level)
        m2 = kx.Sequential([kx.Input((50,)), kx.layers.Dense(70, activation="tanh")])
        m2.set_weights(m.get_weights())
        out = m2.predict(x, verbose=0)
        cap = os.environ.get("KEROX_DISPATCH") or "avx512"
        assert m2._engine.dispatch_level == _ORDER[min(_ORDER.index(level), _ORDER.index(cap))]
    finally:
        config.set_dispatch_level(None)
        assert config.dispatch_level() == previous
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
