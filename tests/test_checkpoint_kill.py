"""A process killed (SIGKILL) while ModelCheckpoint is saving always leaves a loadable file.

A child trains a model of ~17M parameters (each save writes ~68 MB and takes a few hundred
milliseconds) on a few rows, with `ModelCheckpoint(save_freq=1)` rewriting one fixed path
after every step, so it is saving nearly all the time. Once the first checkpoint exists, the
parent kills the child after a random delay. The file at the path must then load and give
finite predictions.

Saves are atomic: the data go to a temporary file beside the target, named
`.<name>.<random>.tmp`, which is fsync'd and renamed over the target. A SIGKILL runs no
clean-up, so a kill during a save leaves that one temporary file behind (and nothing else);
the target itself is always a complete earlier save.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from kerox import keras as kx

CHILD = r"""
import sys
import numpy as np
from kerox import keras

path, weights_only = sys.argv[1], sys.argv[2] == "1"
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 16)).astype(np.float32)
y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 8)]
model = keras.Sequential([
    keras.Input((16,)),
    keras.layers.Dense(4096, activation="relu"),
    keras.layers.Dense(4096, activation="relu"),
    keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="categorical_crossentropy")
ckpt = keras.callbacks.ModelCheckpoint(path, save_freq=1, save_weights_only=weights_only)
print("training", flush=True)
model.fit(x, y, batch_size=4, epochs=100000, verbose=0, callbacks=[ckpt])
"""


def _architecture():
    return kx.Sequential(
        [
            kx.Input((16,)),
            kx.layers.Dense(4096, activation="relu"),
            kx.layers.Dense(4096, activation="relu"),
            kx.layers.Dense(10, activation="softmax"),
        ]
    )


def _kill_during_checkpointing(directory, name, weights_only, delay):
    """Starts the child, waits for its first checkpoint, kills it `delay` s later.

    Returns the names left in the directory."""
    path = os.path.join(directory, name)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, path, "1" if weights_only else "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, KEROX_NUM_THREADS="1"),
    )
    try:
        deadline = time.monotonic() + 60
        while not os.path.exists(path):
            if proc.poll() is not None:
                pytest.fail(f"the child exited ({proc.returncode}): {proc.stderr.read()}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint appeared within 60 s")
            time.sleep(0.005)
        time.sleep(delay)
        assert proc.poll() is None, f"the child stopped on its own: {proc.stderr.read()}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    return sorted(os.listdir(directory))


@pytest.mark.parametrize(
    "name, weights_only", [("ckpt.keras", False), ("ckpt.weights.h5", True)], ids=["keras", "h5"]
)
def test_sigkill_during_checkpoint_saves_leaves_a_loadable_file(tmp_path, name, weights_only):
    rng = np.random.default_rng(1234 if weights_only else 4321)
    # Delays from "right after the first save" to a few saves later, in random order.
    delays = rng.permutation(np.linspace(0.0, 1.5, 5)) + rng.uniform(0, 0.1, 5)
    x = np.random.default_rng(0).standard_normal((8, 16)).astype(np.float32)
    tmp_pattern = re.compile(r"^\." + re.escape(name) + r"\..+\.tmp$")
    mid_save = 0
    for run, delay in enumerate(delays):
        directory = tmp_path / f"run{run}"
        directory.mkdir()
        left = _kill_during_checkpointing(str(directory), name, weights_only, float(delay))
        temps = [f for f in left if tmp_pattern.match(f)]
        others = [f for f in left if f != name and f not in temps]
        assert name in left, f"run {run}: the checkpoint is gone after the kill: {left}"
        assert len(temps) <= 1, f"run {run}: more than one temporary file left: {temps}"
        assert not others, f"run {run}: unexpected files left beside the checkpoint: {others}"
        mid_save += len(temps)

        path = str(directory / name)
        if weights_only:
            model = _architecture()
            model.load_weights(path)
        else:
            model = kx.models.load_model(path)
            assert model.optimizer.iterations >= 1
        weights = model.get_weights()
        assert [w.shape for w in weights] == [
            (16, 4096),
            (4096,),
            (4096, 4096),
            (4096,),
            (4096, 10),
            (10,),
        ]
        assert all(np.isfinite(w).all() for w in weights)
        p = model.predict(x, verbose=0)
        assert p.shape == (8, 10) and np.isfinite(p).all()
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
        for f in left:  # free the disk for the next run
            os.remove(directory / f)
    print(
        f"{name}: {len(delays)} kills, {mid_save} landed during a save (left one temporary "
        f"file), every checkpoint loaded"
    )
