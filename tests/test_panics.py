"""A Rust panic never takes down the interpreter: it becomes a RuntimeError.

The hooks (`kerox._core._debug_panic`, `Engine._debug_panic_next_step`) exist only for these
tests and are refused unless ``KEROX_DEBUG_HOOKS=1``. Each check runs in a fresh interpreter,
so an abort would show as a non-zero exit instead of killing the test runner.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from kerox import _core


def _run(script: str, hooks: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.pop("KEROX_DEBUG_HOOKS", None)
    if hooks:
        env["KEROX_DEBUG_HOOKS"] = "1"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_hooks_are_refused_without_the_switch() -> None:
    if os.environ.get("KEROX_DEBUG_HOOKS") == "1":
        pytest.skip("the test runner itself has KEROX_DEBUG_HOOKS=1")
    with pytest.raises(RuntimeError, match="KEROX_DEBUG_HOOKS=1"):
        _core._debug_panic("caller")


@pytest.mark.parametrize("place", ["caller", "pool"])
def test_panic_becomes_runtime_error(place: str) -> None:
    proc = _run(
        f"""
        from kerox import _core
        try:
            _core._debug_panic({place!r})
        except RuntimeError as e:
            assert "internal error in the kerox engine" in str(e), e
            assert "debug hook" in str(e), e
            print("caught")
        # The pool still works after a worker panicked.
        from kerox import keras
        import numpy as np
        m = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        print("alive", np.isfinite(m.predict(np.ones((70, 4)), verbose=0)).all())
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == ["caught", "alive", "True"], proc.stdout


def test_panic_during_fit_leaves_a_usable_model() -> None:
    proc = _run(
        """
        import numpy as np
        from kerox import keras
        rng = np.random.default_rng(0)
        x = rng.normal(size=(256, 8)).astype("float32")
        y = keras.utils.to_categorical(rng.integers(0, 3, 256), 3)
        L = keras.layers
        m = keras.Sequential([keras.Input((8,)), L.Dense(16, activation="relu"),
                              L.BatchNormalization(), L.Dense(3, activation="softmax")])
        m.compile(keras.optimizers.SGD(0.05, momentum=0.9), "categorical_crossentropy")
        m.fit(x, y, epochs=1, verbose=0, shuffle=False)
        before = [w.copy() for w in m.get_weights()]
        it = int(m.optimizer.iterations)  # a snapshot: the variable is live, as in Keras
        m._engine._debug_panic_next_step()
        try:
            m.fit(x, y, epochs=1, verbose=0, shuffle=False)
            print("no error")
        except RuntimeError as e:
            assert "debug hook: panic inside train_steps" in str(e), e
            print("caught")
        # The panic came before any update: nothing changed, and training goes on.
        same = all(np.array_equal(a, b) for a, b in zip(before, m.get_weights()))
        print("unchanged", same, m.optimizer.iterations == it)
        m.fit(x, y, epochs=1, verbose=0, shuffle=False)
        print("trains", m.optimizer.iterations == it + 8,
              all(np.isfinite(w).all() for w in m.get_weights()))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.split() == [
        "caught",
        "unchanged",
        "True",
        "True",
        "trains",
        "True",
        "True",
    ], proc.stdout
