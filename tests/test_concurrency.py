"""Threads and processes: one model used from two threads is serialised or refused with a
RuntimeError (never a data race); separate models train in parallel threads exactly as they
do one after the other; a child made by fork (or spawn) trains correctly.

The reference for every check here is kerox itself run sequentially: kerox is deterministic
for any thread count, so a threaded run must reproduce a sequential one bit for bit. What is
under test is the absence of races and shared state, not the maths (the parity tests compare
the maths with Keras).
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import re
import sys
import threading
import time

import numpy as np
import pytest
from kerox import keras as kx

# What a refused concurrent call may say. PyO3's borrow checker answers "Already borrowed" /
# "Already mutably borrowed"; a friendlier message naming the model in use by another thread
# would also match.
REFUSAL = re.compile(r"already (mutably )?borrowed|another thread|in use|concurren", re.I)

BATCH = 32


def _data(n=256, d=20, classes=10, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d), dtype=np.float32)
    w = rng.standard_normal((d, classes)) / np.sqrt(d)
    labels = (x @ w + 0.5 * rng.standard_normal((n, classes))).argmax(axis=1)
    return x, np.eye(classes, dtype=np.float32)[labels]


def _model(d=20, hidden=32, classes=10, seed=0, dropout=False):
    """A small BN + momentum model with seeded NumPy start weights (not kerox's RNG)."""
    layers = [kx.Input((d,)), kx.layers.Dense(hidden, activation="relu")]
    layers.append(kx.layers.BatchNormalization())
    if dropout:
        layers.append(kx.layers.Dropout(0.25, seed=seed + 7))
    layers.append(kx.layers.Dense(classes, activation="softmax"))
    model = kx.Sequential(layers)
    rng = np.random.default_rng(100 + seed)
    model.set_weights(
        [
            (rng.uniform(-0.3, 0.3, w.shape) if w.ndim == 2 else np.asarray(w)).astype(np.float32)
            for w in model.get_weights()
        ]
    )
    model.compile(
        optimizer=kx.optimizers.SGD(0.05, momentum=0.9),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def _same(ws1, ws2):
    return all(a.shape == b.shape and np.array_equal(a, b) for a, b in zip(ws1, ws2, strict=True))


def _describe_diff(ws1, ws2):
    return [
        float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
        for a, b in zip(ws1, ws2, strict=True)
    ]


def _retry(fn, seconds=10.0):
    """Calls fn until it is not refused (another thread holds the model for a moment)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except RuntimeError as exc:
            if not REFUSAL.search(str(exc)) or time.monotonic() > deadline:
                raise
            time.sleep(0.0005)


def _run_threads(targets, timeout=120.0):
    errors = []

    def wrap(fn):
        def inner():
            try:
                fn()
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                errors.append(exc)

        return inner

    threads = [threading.Thread(target=wrap(t), daemon=True) for t in targets]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    if errors:
        raise errors[0]


# --------------------------------------------------------------------------------------------
# (a) one model, two threads
# --------------------------------------------------------------------------------------------


def test_fit_and_predict_threads_on_one_model_are_serialised_or_refused():
    """One thread fits again and again while another predicts and reads the weights.

    Every call either succeeds or raises a RuntimeError refusing it. Then:
    * each successful predict whose surrounding `get_weights()` reads agree (no step ran in
      between) equals a predict of a separate model holding those weights: no torn reads;
    * replaying, on a twin model in one thread, exactly the steps each fit call ran (a fit
      refused part-way ran only its first steps; `iterations` says how many) gives
      bit-identical weights, momentum included, and each successful fit's loss is the one
      the twin logged: no step was lost, doubled or torn by the reader thread.
    """
    x, y = _data()
    xs = np.tile(x, (4, 1))  # 1024 rows: one engine call, long enough to collide with fit
    steps_per_epoch = len(x) // BATCH
    model = _model(hidden=256)
    model.predict(xs, verbose=0)  # the engine exists before the threads start
    deadline = time.monotonic() + 4.0
    rng_fit, rng_read = np.random.default_rng(0), np.random.default_rng(1)
    fit_log = []  # (steps run, history loss or None)
    samples = []  # (weights before, predict, weights after)
    refusals = []

    def fitter():
        while time.monotonic() < deadline or not fit_log:
            before = _retry(lambda: int(model.optimizer.iterations))
            try:
                h = model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
                loss = h.history["loss"][0]
            except RuntimeError as exc:
                assert REFUSAL.search(str(exc)), f"unexpected RuntimeError from fit: {exc}"
                refusals.append("fit")
                loss = None
            ran = _retry(lambda: int(model.optimizer.iterations)) - before
            assert 0 <= ran <= steps_per_epoch, f"one fit call ran {ran} steps"
            if loss is not None:
                assert ran == steps_per_epoch, f"a successful fit ran {ran} steps"
            fit_log.append((ran, loss))
            time.sleep(rng_fit.uniform(0, 0.004))  # give way at random moments

    def reader():
        while time.monotonic() < deadline:
            time.sleep(rng_read.uniform(0, 0.004))
            try:
                w1 = model.get_weights()
                p = model.predict(xs, verbose=0)
                w2 = model.get_weights()
            except RuntimeError as exc:
                assert REFUSAL.search(str(exc)), f"unexpected RuntimeError from predict: {exc}"
                refusals.append("predict")
                continue
            assert np.isfinite(p).all()
            if _same(w1, w2) and len(samples) < 200:
                samples.append((w1, p))

    # A short GIL switch interval lets the reader start between two chunks of one fit, so
    # some fit calls are refused part-way and their partial steps are replayed below.
    old = sys.getswitchinterval()
    sys.setswitchinterval(2e-5)
    try:
        _run_threads([fitter, reader])
    finally:
        sys.setswitchinterval(old)
    print(
        f"fit calls: {len(fit_log)} ({refusals.count('fit')} refused, "
        f"{sum(1 for r, loss in fit_log if loss is None and r)} of them after some steps), refused "
        f"reads: {refusals.count('predict')}, quiet reads checked: {len(samples)}"
    )

    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)
    assert any(loss is not None for _, loss in fit_log), "no fit call ever succeeded"
    assert samples, "no predict ever ran between two fit steps; the check did not run"

    checker = _model(hidden=256)
    for w, p in samples:
        checker.set_weights(w)
        np.testing.assert_array_equal(
            checker.predict(xs, verbose=0), p, err_msg="a concurrent predict saw torn weights"
        )

    twin = _model(hidden=256)
    for ran, loss in fit_log:
        if ran == 0:
            continue
        h = twin.fit(x[: ran * BATCH], y[: ran * BATCH], batch_size=BATCH, shuffle=False, verbose=0)
        if loss is not None:
            assert h.history["loss"][0] == loss, "a fit's logged loss was disturbed by the reader"
    assert twin.optimizer.iterations == model.optimizer.iterations
    assert _same(weights, twin.get_weights()), (
        f"threaded training differs from its sequential replay: max |diff| per weight "
        f"{_describe_diff(weights, twin.get_weights())}"
    )
    # The model still trains, and from exactly the replayed state (optimizer slots included).
    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    twin.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    assert _same(model.get_weights(), twin.get_weights())


def test_two_fit_threads_and_a_predict_thread_on_one_model_never_race():
    """Two threads fit and a third predicts, all on one model, for a few seconds.

    Every call succeeds or is refused with a RuntimeError; nothing crashes or hangs; no step
    is lost (the optimizer's step counter covers every step a callback saw run); the model
    then still works and resumes exactly like a copy saved and reloaded at that point.
    """
    x, y = _data()
    xs = x[:40]
    model = _model()
    model.predict(xs, verbose=0)
    deadline = time.monotonic() + 3.0
    rng = np.random.default_rng(1)
    seen = []  # one entry per step a fit reported as done (per-batch callback)
    outcomes = {"fit_ok": 0, "predict_ok": 0, "refused": 0}
    lock = threading.Lock()

    class CountSteps(kx.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)

    def count(key):
        with lock:
            outcomes[key] += 1

    def fitter():
        while time.monotonic() < deadline:
            try:
                h = model.fit(
                    x, y, batch_size=BATCH, shuffle=False, verbose=0, callbacks=[CountSteps()]
                )
                assert np.isfinite(h.history["loss"][0])
                count("fit_ok")
            except RuntimeError as exc:
                assert REFUSAL.search(str(exc)), f"unexpected RuntimeError from fit: {exc}"
                count("refused")
            time.sleep(rng.uniform(0, 0.004))

    def predictor():
        while time.monotonic() < deadline:
            try:
                p = model.predict(xs, verbose=0)
                assert p.shape == (40, 10) and np.isfinite(p).all()
                np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)
                count("predict_ok")
            except RuntimeError as exc:
                assert REFUSAL.search(str(exc)), f"unexpected RuntimeError from predict: {exc}"
                count("refused")
            time.sleep(0.002)

    _run_threads([fitter, fitter, predictor])
    print(f"concurrent outcomes: {outcomes}")
    assert outcomes["fit_ok"] >= 1 and outcomes["predict_ok"] >= 1

    # A step can run and its fit be refused right after (reading the running loss), before
    # its callback: so iterations may exceed the callback count, by at most one per refusal.
    iterations = int(model.optimizer.iterations)
    assert len(seen) <= iterations <= len(seen) + outcomes["refused"], (iterations, len(seen))
    weights = model.get_weights()
    assert all(np.isfinite(w).all() for w in weights)

    # The state is whole: weights, moving statistics, momentum and step counter round-trip
    # through save/load and both copies continue identically.
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = f"{tmp}/m.keras"
        model.save(path)
        copy = kx.models.load_model(path)
    assert _same(copy.get_weights(), weights)
    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    copy.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
    assert _same(model.get_weights(), copy.get_weights())


def test_first_use_of_a_model_from_two_threads_loses_no_training():
    """Two threads start `fit` on a model that has never run (its engine is created by the
    first call). Each fit either completes all its steps on the model or is refused: a fit
    that returns normally must have trained the model's own weights.

    A tiny GIL switch interval makes the threads interleave inside the Python set-up code.
    """
    x, y = _data(n=128)
    steps_per_epoch = len(x) // BATCH
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    problems = []
    try:
        for trial in range(300):
            model = _model(seed=trial)
            results = []
            barrier = threading.Barrier(2)

            def fitter(model=model, results=results, barrier=barrier):
                barrier.wait()
                try:
                    model.fit(x, y, batch_size=BATCH, shuffle=False, verbose=0)
                    results.append("ok")
                except RuntimeError as exc:
                    assert REFUSAL.search(str(exc)), f"unexpected RuntimeError: {exc}"
                    results.append("refused")

            _run_threads([fitter, fitter])
            n_ok = results.count("ok")
            iterations = int(model.optimizer.iterations)
            attached = all(v._engine is model._engine for v in model.weights)
            if iterations < n_ok * steps_per_epoch or not attached:
                problems.append(
                    f"trial {trial}: {n_ok} fit calls succeeded but the model counts "
                    f"{iterations} steps (expected >= {n_ok * steps_per_epoch}); all weights "
                    f"on the model's engine: {attached}"
                )
    finally:
        sys.setswitchinterval(old)
    assert not problems, "training lost in a first-use race:\n  " + "\n  ".join(problems[:5])


# --------------------------------------------------------------------------------------------
# (b) separate models in parallel threads
# --------------------------------------------------------------------------------------------


def _train_recipe(seed):
    """Model and data of one independent training run (different per seed)."""
    x, y = _data(n=4096, d=64, seed=seed)
    model = _model(d=64, hidden=256, seed=seed, dropout=True)
    return model, x, y


def _train(model, x, y):
    model.fit(x, y, batch_size=BATCH, epochs=3, shuffle=False, verbose=0)
    p = model.predict(x[:100], verbose=0)
    return model.get_weights(), p


def test_separate_models_train_in_parallel_threads_exactly_as_sequentially():
    """Two different models (different data, weights and dropout seeds) trained at the same
    time in two threads end bit-identical to the same trainings run one after the other. A
    shared buffer, random state or optimizer slot between engines would break this."""
    expected = {}
    for seed in (1, 2):
        model, x, y = _train_recipe(seed)
        expected[seed] = _train(model, x, y)
    assert not _same(expected[1][0], expected[2][0])

    for _round in range(3):
        got = {}
        jobs = {seed: _train_recipe(seed) for seed in (1, 2)}
        barrier = threading.Barrier(2)

        def job(seed, jobs=jobs, got=got, barrier=barrier):
            barrier.wait()
            got[seed] = _train(*jobs[seed])

        _run_threads([lambda: job(1), lambda: job(2)])
        for seed in (1, 2):
            assert _same(got[seed][0], expected[seed][0]), (
                f"model {seed} trained beside another differs from training it alone: "
                f"max |diff| per weight {_describe_diff(got[seed][0], expected[seed][0])}"
            )
            np.testing.assert_array_equal(got[seed][1], expected[seed][1])


# --------------------------------------------------------------------------------------------
# (c) child processes
# --------------------------------------------------------------------------------------------


def _child_train(q, seed):
    """Runs in a child process: one training run, the weights back through the queue."""
    try:
        from kerox import config

        model, x, y = _train_recipe(seed)
        weights, pred = _train(model, x, y)
        q.put(("ok", weights, pred, config.get_num_threads()))
    except BaseException as exc:  # noqa: BLE001 - sent to the parent
        q.put(("error", repr(exc), None, None))


def _run_child(ctx, seed, timeout=90.0):
    q = ctx.Queue()
    proc = ctx.Process(target=_child_train, args=(q, seed))
    proc.start()
    try:
        try:
            status, weights, pred, threads = q.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"the {ctx.get_start_method()} child did not answer in {timeout} s (hang?)")
        proc.join(30)
        assert proc.exitcode == 0, f"child exit code {proc.exitcode}"
    finally:
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert status == "ok", f"the child failed: {weights}"
    return weights, pred, threads


@pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="no fork start method on this platform"
)
def test_forked_child_trains_like_the_parent():
    """The parent trains first (its worker pool exists), then forked children train: same
    bits as the parent's own run; the parent still trains afterwards."""
    model, x, y = _train_recipe(3)
    expected_w, expected_p = _train(model, x, y)
    ctx = mp.get_context("fork")
    for _ in range(2):
        weights, pred, threads = _run_child(ctx, 3)
        assert threads >= 1
        assert _same(weights, expected_w), _describe_diff(weights, expected_w)
        np.testing.assert_array_equal(pred, expected_p)
    model, x, y = _train_recipe(3)
    again_w, _ = _train(model, x, y)
    assert _same(again_w, expected_w)


@pytest.mark.skipif(
    "fork" not in mp.get_all_start_methods(), reason="no fork start method on this platform"
)
def test_fork_while_another_thread_trains():
    """Forking while a parent thread is inside the engine (the pool busy, the model's engine
    borrowed) still gives children that train correctly, and the parent's run is unharmed."""
    reference = {}
    for seed in (4, 5):
        model, x, y = _train_recipe(seed)
        reference[seed] = _train(model, x, y)

    stop = threading.Event()
    background = []
    # The data are made here, not in the thread: making them calls numpy's threaded BLAS, and
    # a fork while another thread is inside OpenBLAS leaves that thread spinning forever in
    # the parent (OpenBLAS's own fork handler stops its workers mid-call), hanging the suite.
    x5, y5 = _data(n=4096, d=64, seed=5)

    def trainer():
        while not stop.is_set():
            model = _model(d=64, hidden=256, seed=5, dropout=True)
            background.append(_train(model, x5, y5))

    ctx = mp.get_context("fork")
    thread = threading.Thread(target=trainer, daemon=True)
    thread.start()
    try:
        for _ in range(4):
            time.sleep(0.05)
            weights, pred, _threads = _run_child(ctx, 4)
            assert _same(weights, reference[4][0]), _describe_diff(weights, reference[4][0])
            np.testing.assert_array_equal(pred, reference[4][1])
    finally:
        stop.set()
        thread.join(120)
    assert not thread.is_alive()
    assert background
    for weights, _ in background:
        assert _same(weights, reference[5][0])


def test_spawned_child_trains_like_the_parent():
    model, x, y = _train_recipe(6)
    expected_w, expected_p = _train(model, x, y)
    weights, pred, _threads = _run_child(mp.get_context("spawn"), 6)
    assert _same(weights, expected_w), _describe_diff(weights, expected_w)
    np.testing.assert_array_equal(pred, expected_p)


def test_forked_child_keeps_the_thread_count_set_in_the_parent() -> None:
    """`config.set_num_threads(n)` survives fork: a pool rebuilt in the child has n threads
    (without it, each worker process of a pool would start one thread per core)."""
    import os

    from kerox import config

    before = config.get_num_threads()
    wanted = 1 if before != 1 else 3
    config.set_num_threads(wanted)
    try:
        x = np.ones((8, 4), np.float32)
        kx.Sequential([kx.Input((4,)), kx.layers.Dense(2)]).predict(x, verbose=0)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: report and leave without running pytest's teardown
            os.close(r)
            os.write(w, str(config.get_num_threads()).encode())
            os._exit(0)
        os.close(w)
        reported = os.read(r, 16).decode()
        os.close(r)
        os.waitpid(pid, 0)
        assert reported == str(wanted)
    finally:
        config.set_num_threads(before)
