"""Ctrl-C during `fit` raises KeyboardInterrupt promptly, leaves the weights of a completed
step, and the model can train again.

The engine runs about a tenth of a second of steps per call with the GIL released, so the
signal is noticed as soon as the current call returns to Python.

The second test checks the state exactly: after the interrupt, `optimizer.iterations == k` and
every weight (kernels, BatchNormalization moving statistics) equals, bit for bit, a fresh twin
trained for exactly k steps on the same batches (`shuffle=False`). A step cut in half, a step
applied without being counted (or counted without being applied), or momentum out of step with
the weights would all break the equality; so would resuming: both models then train a few more
steps and must still agree. The twin is kerox too: the property is "the state of a completed
step of this engine", and kerox is deterministic for any thread count (the maths is compared
with Keras elsewhere).
"""

import json
import os
import signal
import subprocess
import sys
import time

SCRIPT = r"""
import json, sys, time
import numpy as np
from kerox import keras

rng = np.random.default_rng(0)
# An epoch takes seconds (~400 GFLOP), so only chunked engine calls can react in time.
x = rng.standard_normal((60000, 512), dtype=np.float32)
y = keras.utils.to_categorical(rng.integers(0, 10, 60000), 10)
model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(2048, activation="relu"),
                          keras.layers.Dense(10, activation="softmax")])
model.compile(optimizer=keras.optimizers.SGD(0.01), loss="categorical_crossentropy")
print("ready", flush=True)
try:
    model.fit(x, y, epochs=1000, batch_size=32, verbose=0)
    print(json.dumps({"interrupted": False}), flush=True)
except KeyboardInterrupt:
    caught = time.time()
    # The weights are those of a completed step: finite, and training goes on from them.
    finite = all(np.isfinite(w).all() for w in model.get_weights())
    h = model.fit(x[:64], y[:64], epochs=1, verbose=0)
    print(json.dumps({"interrupted": True, "caught": caught, "finite": bool(finite),
                      "refit_loss": h.history["loss"][0]}), flush=True)
"""


EXACT_SCRIPT = r"""
import json, time
import numpy as np
from kerox import keras

N, D, BATCH = 16384, 512, 32
rng = np.random.default_rng(0)
x = rng.standard_normal((N, D), dtype=np.float32)
y = keras.utils.to_categorical(rng.integers(0, 10, N), 10)

def make():
    model = keras.Sequential([
        keras.Input((D,)),
        keras.layers.Dense(1024, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    w_rng = np.random.default_rng(7)
    model.set_weights([
        (w_rng.uniform(-0.05, 0.05, w.shape) if w.ndim == 2 else np.asarray(w)).astype(np.float32)
        for w in model.get_weights()
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model

def same(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a, b))

model = make()
print("ready", flush=True)
try:
    model.fit(x, y, epochs=1000, batch_size=BATCH, shuffle=False, verbose=0)
    print(json.dumps({"interrupted": False}), flush=True)
except KeyboardInterrupt:
    caught = time.time()
    k = int(model.optimizer.iterations)
    weights = model.get_weights()
    twin = make()
    per_epoch = N // BATCH
    full, rest = divmod(k, per_epoch)
    if full:
        twin.fit(x, y, epochs=full, batch_size=BATCH, shuffle=False, verbose=0)
    if rest:
        twin.fit(x[:rest * BATCH], y[:rest * BATCH], batch_size=BATCH, shuffle=False, verbose=0)
    twin_k = int(twin.optimizer.iterations)
    equal = same(weights, twin.get_weights())
    diffs = [float(np.max(np.abs(a - b))) for a, b in zip(weights, twin.get_weights())]
    # fit again: both continue from the same state (momentum and step counter included).
    h = model.fit(x[:96], y[:96], batch_size=BATCH, shuffle=False, verbose=0)
    twin.fit(x[:96], y[:96], batch_size=BATCH, shuffle=False, verbose=0)
    print(json.dumps({
        "interrupted": True, "caught": caught, "k": k, "twin_k": twin_k, "equal": equal,
        "diffs": diffs, "iterations_after": int(model.optimizer.iterations),
        "equal_after_resume": same(model.get_weights(), twin.get_weights()),
        "refit_loss": h.history["loss"][0],
        "finite": bool(all(np.isfinite(w).all() for w in weights)),
    }), flush=True)
"""


def _interrupt(script: str, timeout: float) -> tuple[dict, float]:
    """Runs `script`, sends SIGINT 1 s after it says "ready"; returns its last JSON line and
    the time the signal was sent."""
    env = dict(os.environ, KEROX_NUM_THREADS="2")
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # well inside the first epoch / some hundreds of steps in
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] is True
    return result, sent


def test_sigint_during_fit_raises_keyboard_interrupt_quickly():
    result, sent = _interrupt(SCRIPT, timeout=60)
    assert result["caught"] - sent < 0.5, f"KeyboardInterrupt after {result['caught'] - sent:.3f} s"
    assert result["finite"]
    assert result["refit_loss"] == result["refit_loss"]  # not NaN


def test_sigint_leaves_the_weights_of_a_completed_step_and_fit_resumes():
    result, sent = _interrupt(EXACT_SCRIPT, timeout=120)
    latency = result["caught"] - sent
    print(f"interrupted after step {result['k']}, KeyboardInterrupt {latency * 1000:.0f} ms later")
    assert latency < 0.5, f"KeyboardInterrupt after {latency:.3f} s"
    assert result["k"] >= 1, "the signal came before the first step; nothing was checked"
    assert result["finite"]
    assert result["twin_k"] == result["k"]
    assert result["equal"], (
        f"after the interrupt at iterations={result['k']} the weights are not those of a twin "
        f"trained for exactly {result['k']} steps: max |diff| per weight {result['diffs']}"
    )
    assert result["iterations_after"] == result["k"] + 3
    assert result["equal_after_resume"], "fit after the interrupt did not resume exactly"
    assert result["refit_loss"] == result["refit_loss"]  # not NaN
