"""Ctrl-C during `fit` raises KeyboardInterrupt promptly, and the model can train again.

The engine runs about a tenth of a second of steps per call with the GIL released, so the
signal is noticed as soon as the current call returns to Python.
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


def test_sigint_during_fit_raises_keyboard_interrupt_quickly():
    env = dict(os.environ, KEROX_NUM_THREADS="2")
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # well inside the first epoch
        sent = time.time()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["interrupted"] is True
    assert result["caught"] - sent < 0.5, f"KeyboardInterrupt after {result['caught'] - sent:.3f} s"
    assert result["finite"]
    assert result["refit_loss"] == result["refit_loss"]  # not NaN
