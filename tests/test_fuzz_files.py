"""Fuzzing the loaders with Hypothesis: mutated `.keras`, `.weights.h5` and legacy `.h5` files.

A fresh interpreter runs Hypothesis-generated mutations (byte flips, overwrites, insertions,
deletions, truncation, and structured edits of the JSON config inside an intact archive) of
valid files for a bounded time (``KEROX_FUZZ_SECONDS``, default 40). Every load must either
succeed or raise ValueError: any other exception fails Hypothesis (which then shrinks it to
a minimal file), a crash shows as a non-zero exit, a hang as the parent's timeout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from kerox import keras as kx

FUZZ_SECONDS = float(os.environ.get("KEROX_FUZZ_SECONDS", "40"))

SCRIPT = textwrap.dedent(
    r"""
    import io, json, os, sys, time, zipfile, warnings
    from hypothesis import HealthCheck, given, seed, settings, strategies as st
    from kerox import keras

    warnings.simplefilter("ignore")
    files = json.loads(sys.argv[1])
    budget, out = float(sys.argv[2]), sys.argv[3]
    blobs = {name: open(path, "rb").read() for name, path in files.items()}
    with zipfile.ZipFile(files["model.keras"]) as z:
        members = {n: z.read(n) for n in z.namelist()}
    t_end = time.monotonic() + budget
    counts = {"runs": 0, "loaded": 0, "ValueError": 0}

    def target():
        m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dense(3, activation="softmax")])
        m.compile(keras.optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy")
        return m

    def load(kind, data):
        path = os.path.join(out, "fuzz-" + kind)
        with open(path, "wb") as f:
            f.write(data)
        if kind == "model.keras":
            m = keras.models.load_model(path)
            m.predict(__import__("numpy").ones((2, 8), "float32"), verbose=0)
        elif kind == "legacy.h5":
            keras.models.load_model(path)
        elif kind == "weights-of.keras":
            target().load_weights(path[: -len("weights-of.keras")] + "w.keras")
        else:
            target().load_weights(path)

    def run(kind, data):
        if kind == "weights-of.keras":
            with open(os.path.join(out, "fuzz-w.keras"), "wb") as f:
                f.write(data)
        counts["runs"] += 1
        try:
            load(kind, data)
            counts["loaded"] += 1
        except ValueError:
            counts["ValueError"] += 1

    edit = st.tuples(
        st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
        st.floats(0, 1, allow_nan=False),
        st.binary(min_size=1, max_size=64),
    )

    def mutate(data, edits):
        b = bytearray(data)
        for op, where, payload in edits:
            if not b:
                break
            i = min(int(where * len(b)), len(b) - 1)
            if op == "flip":
                b[i] ^= payload[0] or 1
            elif op == "set":
                b[i : i + len(payload)] = payload
            elif op == "insert":
                b[i:i] = payload
            elif op == "delete":
                del b[i : i + len(payload)]
            else:
                del b[i:]
        return bytes(b)

    json_value = st.recursive(
        st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=12),
        lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=8,
    )

    def paths(obj, prefix=()):
        yield prefix
        if isinstance(obj, dict):
            for k, v in obj.items():
                yield from paths(v, prefix + (k,))
        elif isinstance(obj, list):
            for i, v in enumerate(obj):
                yield from paths(v, prefix + (i,))

    config = json.loads(members["config.json"])
    all_paths = list(paths(config))[1:]

    @settings(max_examples=50, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def fuzz(data):
        mode = data.draw(st.sampled_from(["bytes", "member", "config"]))
        if mode == "bytes":
            kind = data.draw(st.sampled_from(sorted(blobs)))
            edits = data.draw(st.lists(edit, min_size=1, max_size=6))
            run(kind, mutate(blobs[kind], edits))
            return
        new = dict(members)
        if mode == "member":
            name = data.draw(st.sampled_from(sorted(members)))
            new[name] = mutate(members[name], data.draw(st.lists(edit, min_size=1, max_size=6)))
        else:
            cfg = json.loads(members["config.json"])
            for _ in range(data.draw(st.integers(1, 3))):
                path = data.draw(st.sampled_from(all_paths))
                node = cfg
                try:
                    for k in path[:-1]:
                        node = node[k]
                    node[path[-1]] = data.draw(json_value)
                except (KeyError, IndexError, TypeError):
                    pass
            new["config.json"] = json.dumps(cfg).encode()
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            for n, d in new.items():
                z.writestr(n, d)
        run(data.draw(st.sampled_from(["model.keras", "weights-of.keras"])), buf.getvalue())

    # Rounds of 50 examples, each from its own seed, until the time budget is spent.
    base = int(os.environ.get("KEROX_FUZZ_SEED", "20261124"))
    rounds = 0
    while time.monotonic() < t_end:
        seed(base + rounds)(fuzz)()
        rounds += 1
    counts["rounds"] = rounds
    print(json.dumps(counts), flush=True)
    """
)


def _reference_files(tmp_path) -> dict[str, str]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype("float32")
    y = kx.utils.to_categorical(rng.integers(0, 3, 64), 3)
    m = kx.Sequential(
        [
            kx.Input((8,)),
            kx.layers.Dense(16, activation="relu"),
            kx.layers.BatchNormalization(),
            kx.layers.Dense(3, activation="softmax"),
        ]
    )
    m.compile(kx.optimizers.SGD(0.1, momentum=0.9), "categorical_crossentropy")
    m.fit(x, y, epochs=1, verbose=0)
    files = {
        "model.keras": tmp_path / "ref.keras",
        "model.weights.h5": tmp_path / "ref.weights.h5",
        "legacy.h5": tmp_path / "ref.h5",
    }
    m.save(files["model.keras"])
    m.save_weights(files["model.weights.h5"])
    m.save(files["legacy.h5"])
    return {k: str(v) for k, v in files.items()}


def test_loaders_survive_fuzzed_files(tmp_path) -> None:
    files = _reference_files(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(files), str(FUZZ_SECONDS), str(work)],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS * 4 + 120,
        env=dict(os.environ, KEROX_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, f"fuzzer failed (rc={proc.returncode}):\n{proc.stderr[-4000:]}"
    counts = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"fuzz: {counts}")
    assert counts["runs"] >= 200, counts
    assert counts["runs"] == counts["loaded"] + counts["ValueError"], counts
    # The mutations must reach the error paths, and some must still load (e.g. edits that
    # only touch padding or metadata): otherwise the fuzzer is not exercising the loader.
    assert counts["ValueError"] > 0 and counts["loaded"] > 0, counts
