"""Leaks: 300 cycles of build / compile / fit / predict / save / load keep resident memory
within 10 MB.

Runs in a fresh interpreter so other tests' allocations do not blur the figure. Each cycle
makes a new model (so engines, optimizer slots and buffers are created and dropped), trains
it, predicts, round-trips it through a `.keras` archive and a `.weights.h5` file. A leak of
one small model per cycle (~30 KB of weights plus engine buffers) would exceed the budget.
"""

import json
import os
import subprocess
import sys

SCRIPT = r"""
import gc, json, os, sys, tempfile, time
import numpy as np
from kerox import keras

PAGE = os.sysconf("SC_PAGE_SIZE")

def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2**20

rng = np.random.default_rng(0)
x = rng.standard_normal((128, 20), dtype=np.float32)
y = keras.utils.to_categorical(rng.integers(0, 10, 128), 10)
tmp = tempfile.mkdtemp()
model_path = os.path.join(tmp, "m.keras")
weights_path = os.path.join(tmp, "m.weights.h5")

def cycle(i):
    model = keras.Sequential([
        keras.Input((20,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    p = model.predict(x, verbose=0)
    assert np.isfinite(p).all()
    model.evaluate(x, y, verbose=0)
    model.save(model_path)
    loaded = keras.models.load_model(model_path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), p)
    model.save_weights(weights_path)
    loaded.load_weights(weights_path)
    loaded.fit(x, y, batch_size=32, epochs=1, verbose=0)

for i in range(60):  # the allocator settles first
    cycle(i)
gc.collect()
before = rss_mb()
t0 = time.time()
for i in range(300):
    cycle(i)
gc.collect()
after = rss_mb()
print(json.dumps({"before_mb": before, "after_mb": after, "seconds": time.time() - t0}))
"""


def test_300_cycles_keep_resident_memory_within_10_mb():
    env = dict(os.environ, KEROX_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    growth = result["after_mb"] - result["before_mb"]
    print(
        f"RSS {result['before_mb']:.1f} MB -> {result['after_mb']:.1f} MB after 300 cycles "
        f"({growth:+.2f} MB, {result['seconds']:.1f} s)"
    )
    assert growth <= 10.0, f"resident memory grew by {growth:.1f} MB over 300 cycles"
