"""kerox.keras.callbacks against real Keras 3 callbacks.

Oracle: real Keras 3 (JAX backend). The same sequence of hook calls (the order ``fit`` /
``evaluate`` / ``predict`` use) is sent to a Keras ``CallbackList`` holding Keras callbacks
and to ours holding kerox callbacks, each attached to its own fake model; we compare what
they record (History), what they print (byte for byte, with a scripted clock), the
``stop_training`` flags, weight restores and error messages.
"""

from __future__ import annotations

import io
import math
import os
import sys
import time

import numpy as np
import pytest
from kerox.keras import callbacks as kc

os.environ.setdefault("KERAS_BACKEND", "jax")


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


class FakeModel:
    """The duck-typed model interface callbacks use."""

    def __init__(self, metrics=()) -> None:
        self.stop_training = False
        self.history = None
        self.metrics = list(metrics)
        self._weights = [np.zeros(2, np.float32)]
        self.set_weights_calls: list[list[np.ndarray]] = []

    def get_weights(self):
        return [w.copy() for w in self._weights]

    def set_weights(self, weights):
        self.set_weights_calls.append(weights)
        self._weights = [np.asarray(w).copy() for w in weights]


class FakeMetric:
    def __init__(self, name, direction) -> None:
        self.name = name
        self._direction = direction


def _keras_list(keras, cbs, model, **params):
    cl = keras.callbacks.CallbackList(cbs, model=model, **params)
    # Keras may dispatch batch-end hooks on a thread pool; run them inline so that output
    # order (and the scripted clock) is deterministic.
    cl._async_train = cl._async_test = cl._async_predict = False
    return cl


class Run:
    """Drives a callback list through fit/evaluate/predict events with a scripted clock."""

    def __init__(self, monkeypatch) -> None:
        self.mp = monkeypatch
        self.t = 100.0

    def __enter__(self):
        self.out = io.StringIO()
        self.mp.setattr(time, "time", lambda: self.t)
        self.mp.setattr(sys, "stdout", self.out)
        return self

    def __exit__(self, *exc):
        self.mp.undo()

    def tick(self, dt=0.0123):
        self.t += dt


def _epoch_logs(epoch):
    # Unsorted keys and NumPy scalars: the list must sort and convert them.
    return {
        "val_loss": np.float32(1.0 / (epoch + 1)),
        "loss": np.float64(2.0 / (epoch + 1)),
        "accuracy": np.float32(0.5 + epoch / 20),
        "val_accuracy": 0.4 + epoch / 30,
    }


def _fit_events(run, cl, epochs, steps, batch_logs=True, validation=True):
    cl.on_train_begin()
    logs = None
    for epoch in range(epochs):
        cl.on_epoch_begin(epoch)
        for b in range(steps):
            cl.on_train_batch_begin(b)
            run.tick()
            bl = {"loss": np.float32(1.0 + b), "accuracy": 0.25 * b} if batch_logs else None
            cl.on_train_batch_end(b, bl)
        if validation:
            cl.on_test_begin()
            for b in range(2):
                cl.on_test_batch_begin(b)
                cl.on_test_batch_end(b, {"loss": 0.5})
            cl.on_test_end({"loss": 0.5})
        logs = _epoch_logs(epoch)
        run.tick(0.2)
        cl.on_epoch_end(epoch, logs)
        if cl.model.stop_training:
            break
    cl.on_train_end(logs)


def _both(monkeypatch, make_keras, make_ours, drive, **params):
    """Run ``drive(run, callback_list)`` on Keras and on kerox; return both results."""
    keras = _keras()
    results = []
    for lib, make in (("keras", make_keras), ("kerox", make_ours)):
        model = FakeModel()
        cbs = make()
        cl = _keras_list(keras, cbs, model, **params) if lib == "keras" else None
        if lib == "kerox":
            cl = kc.CallbackList(cbs, model=model, **params)
        with Run(monkeypatch) as run:
            error = None
            try:
                drive(run, cl)
            except Exception as e:  # compared below
                error = f"{type(e).__name__}: {e}"
        results.append({"out": run.out.getvalue(), "model": model, "cbs": cbs, "error": error})
    return results


# ------------------------------------------------------------------------------------------
# History and log handling


def test_history_matches_keras(monkeypatch):
    keras = _keras()
    res = _both(
        monkeypatch,
        lambda: [keras.callbacks.History()],
        lambda: [kc.History()],
        lambda run, cl: _fit_events(run, cl, epochs=3, steps=2),
        verbose=0,
        epochs=3,
        steps=2,
    )
    (kh,), (oh,) = res[0]["cbs"], res[1]["cbs"]
    assert list(oh.history) == list(kh.history) == sorted(kh.history)
    assert oh.history == kh.history
    assert all(type(v) is float for vs in oh.history.values() for v in vs)
    assert oh.epoch == kh.epoch == [0, 1, 2]
    assert oh.params == kh.params
    assert res[1]["model"].history is oh and res[0]["model"].history is kh


def test_pythonify_logs_matches_keras():
    _keras()
    from keras.src.utils.python_utils import pythonify_logs

    logs = {
        "z": np.float32(0.25),
        "a": np.int64(3),
        "m": np.array(2.5),
        "nested": {"y": np.float16(1.5), "b": "text"},
        "outputs": np.ones((2, 3)),
        "none": None,
    }
    ours, theirs = kc._pythonify_logs(logs), pythonify_logs(logs)
    assert list(ours) == list(theirs)
    for key in theirs:
        if isinstance(theirs[key], np.ndarray):
            np.testing.assert_array_equal(ours[key], theirs[key])
        else:
            assert ours[key] == theirs[key] and type(ours[key]) is type(theirs[key])


def test_callback_list_defaults_and_propagation():
    keras = _keras()
    for add_history in (False, True):
        for add_progbar in (False, True):
            for given in ([], ["history"], ["progbar"], ["history", "progbar"]):

                def make(mod, given=given):
                    return [mod.History() if g == "history" else mod.ProgbarLogger() for g in given]

                k = keras.callbacks.CallbackList(
                    make(keras.callbacks),
                    add_history,
                    add_progbar,
                    FakeModel(),
                    verbose=1,
                    epochs=2,
                    steps=3,
                )
                o = kc.CallbackList(
                    make(kc), add_history, add_progbar, FakeModel(), verbose=1, epochs=2, steps=3
                )
                names = [type(c).__name__ for c in o.callbacks]
                assert names == [type(c).__name__ for c in k.callbacks]
                params = {"verbose": 1, "epochs": 2, "steps": 3}
                assert all(c.params == params for c in o.callbacks)
                assert all(c.model is o.model for c in o.callbacks)


def test_unbalanced_end_raises_like_keras():
    keras = _keras()
    k = _keras_list(keras, [], FakeModel())
    with pytest.raises(ValueError) as theirs:
        k.on_train_end()
    with pytest.raises(ValueError) as ours:
        kc.CallbackList([], model=FakeModel()).on_train_end()
    assert str(ours.value) == str(theirs.value)


def test_hook_order_and_arguments():
    calls = []

    class Recorder(kc.Callback):
        def __getattribute__(self, name):
            attr = object.__getattribute__(self, name)
            if name.startswith("on_") and callable(attr):

                def wrapped(*args, **kwargs):
                    calls.append((name, args, kwargs))
                    return attr(*args, **kwargs)

                return wrapped
            return attr

    cl = kc.CallbackList([Recorder()], model=FakeModel())
    cl.on_train_batch_begin(3, {"b": 1, "a": np.float32(2)})
    cl.on_epoch_end(1, {"loss": 1})
    # Keras: batch hooks get `logs=` by keyword; the default on_train_batch_begin then calls
    # the legacy on_batch_begin. Epoch hooks get logs positionally.
    assert calls == [
        ("on_train_batch_begin", (3,), {"logs": {"a": 2.0, "b": 1.0}}),
        ("on_batch_begin", (3,), {"logs": {"a": 2.0, "b": 1.0}}),
        ("on_epoch_end", (1, {"loss": 1.0}), {}),
    ]


# ------------------------------------------------------------------------------------------
# ProgbarLogger


@pytest.mark.parametrize("verbose", [1, 2, "auto"])
@pytest.mark.parametrize("epochs", [1, 3])
def test_progbar_logger_fit_output_matches_keras(monkeypatch, verbose, epochs):
    keras = _keras()
    res = _both(
        monkeypatch,
        lambda: [keras.callbacks.ProgbarLogger()],
        lambda: [kc.ProgbarLogger()],
        lambda run, cl: _fit_events(run, cl, epochs=epochs, steps=5),
        verbose=verbose,
        epochs=epochs,
        steps=5,
    )
    assert res[1]["out"] == res[0]["out"]
    assert res[1]["out"].count("Epoch ") == (epochs if epochs > 1 else 0)


def test_progbar_logger_evaluate_and_predict_match_keras(monkeypatch):
    keras = _keras()

    def evaluate_and_predict(run, cl):
        cl.on_test_begin()
        for b in range(4):
            cl.on_test_batch_begin(b)
            run.tick(0.03)
            cl.on_test_batch_end(b, {"loss": 0.1 * b, "accuracy": np.float32(0.25)})
        cl.on_test_end({"loss": 0.15, "accuracy": 0.25})
        cl.on_predict_begin()
        for b in range(3):
            cl.on_predict_batch_begin(b)
            run.tick(0.06)
            cl.on_predict_batch_end(b, {"outputs": np.ones((2, 2))})
        cl.on_predict_end()

    for verbose in (1, 2):
        res = _both(
            monkeypatch,
            lambda: [keras.callbacks.ProgbarLogger()],
            lambda: [kc.ProgbarLogger()],
            evaluate_and_predict,
            verbose=verbose,
            epochs=1,
            steps=None,
        )
        assert res[1]["out"] == res[0]["out"] != ""


def test_progbar_logger_chunked_updates_match_keras(monkeypatch):
    # kerox calls batch hooks once per chunk of steps; the bar must then jump as Keras's does.
    keras = _keras()

    def chunked(run, cl):
        cl.on_train_begin()
        cl.on_epoch_begin(0)
        for last in (9, 19, 24):
            run.tick(0.5)
            cl.on_train_batch_end(last, {"loss": 1.0 / (last + 1)})
        cl.on_epoch_end(0, {"loss": 0.04})
        cl.on_train_end({"loss": 0.04})

    res = _both(
        monkeypatch,
        lambda: [keras.callbacks.ProgbarLogger()],
        lambda: [kc.ProgbarLogger()],
        chunked,
        verbose=1,
        epochs=1,
        steps=25,
    )
    assert res[1]["out"] == res[0]["out"]


# ------------------------------------------------------------------------------------------
# EarlyStopping


SEQUENCES = {
    "down_then_flat": [1.0, 0.8, 0.7, 0.7, 0.71, 0.69, 0.75, 0.76, 0.8, 0.9],
    "noisy": [0.5, 0.6, 0.4, 0.45, 0.41, 0.39, 0.5, 0.38, 0.6, 0.7],
    "up": [0.1, 0.2, 0.3, 0.35, 0.36, 0.36, 0.2, 0.1, 0.1, 0.1],
}


def _monitor_events(values, key):
    def drive(run, cl):
        cl.on_train_begin()
        for epoch, v in enumerate(values):
            cl.on_epoch_begin(epoch)
            cl.model._weights = [np.full(2, epoch, np.float32)]  # "training" changes weights
            cl.on_epoch_end(epoch, {key: v, "loss": 1.0})
            if cl.model.stop_training:
                break
        cl.on_train_end()

    return drive


@pytest.mark.parametrize("seq", sorted(SEQUENCES))
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"patience": 2},
        {"patience": 2, "min_delta": 0.05},
        {"patience": 1, "mode": "max"},
        {"patience": 3, "baseline": 0.65},
        {"patience": 2, "baseline": 0.3, "mode": "max"},
        {"patience": 1, "start_from_epoch": 3},
        {"patience": 2, "restore_best_weights": True, "verbose": 1},
        {"patience": 20, "restore_best_weights": True, "verbose": 1},
        {"patience": 1, "verbose": 1, "mode": "min"},
    ],
)
def test_early_stopping_matches_keras(monkeypatch, seq, kwargs):
    keras = _keras()
    res = _both(
        monkeypatch,
        lambda: [keras.callbacks.EarlyStopping(monitor="val_loss", **kwargs)],
        lambda: [kc.EarlyStopping(monitor="val_loss", **kwargs)],
        _monitor_events(SEQUENCES[seq], "val_loss"),
    )
    (k,), (o,) = res[0]["cbs"], res[1]["cbs"]
    assert res[1]["error"] == res[0]["error"] is None
    assert res[1]["out"] == res[0]["out"]
    assert (o.stopped_epoch, o.best_epoch, o.wait) == (k.stopped_epoch, k.best_epoch, k.wait)
    assert o.best == pytest.approx(float(k.best))
    km, om = res[0]["model"], res[1]["model"]
    assert om.stop_training == km.stop_training
    assert len(om.set_weights_calls) == len(km.set_weights_calls)
    for a, b in zip(om.set_weights_calls, km.set_weights_calls, strict=True):
        np.testing.assert_array_equal(a[0], b[0])


@pytest.mark.parametrize(
    "monitor, metric_cls, metric_name",
    [
        ("val_accuracy", "Accuracy", "accuracy"),
        ("val_foo", "MeanSquaredError", "foo"),  # direction from the metric object, not name
        ("foo", "AUC", "foo"),
    ],
)
def test_early_stopping_auto_mode_uses_model_metric_direction(
    monkeypatch, monitor, metric_cls, metric_name
):
    keras = _keras()
    from keras.src.trainers.compile_utils import MetricsList

    # Keras finds metric objects inside the model's compiled-metrics containers; kerox reads
    # the same duck-typed structure (`.metrics`, `.name`, `._direction`).
    metrics = [MetricsList([getattr(keras.metrics, metric_cls)(name=metric_name)])]
    for seq in ("up", "noisy"):
        res = []
        for lib in (keras.callbacks, kc):
            model = FakeModel(metrics=metrics)
            cb = lib.EarlyStopping(monitor=monitor, patience=1)
            cl = (
                _keras_list(keras, [cb], model)
                if lib is keras.callbacks
                else kc.CallbackList([cb], model=model)
            )
            with Run(monkeypatch) as run:
                _monitor_events(SEQUENCES[seq], monitor)(run, cl)
            res.append((cb.stopped_epoch, float(cb.best)))
        assert res[1] == pytest.approx(res[0])


def test_early_stopping_unknown_metric_error_matches_keras(monkeypatch):
    keras = _keras()
    res = _both(
        monkeypatch,
        lambda: [keras.callbacks.EarlyStopping(monitor="val_foo")],
        lambda: [kc.EarlyStopping(monitor="val_foo")],
        _monitor_events([1.0, 2.0], "val_foo"),
    )
    assert res[0]["error"] is not None and res[0]["error"].startswith("ValueError")
    assert res[1]["error"] == res[0]["error"]


def test_early_stopping_name_heuristics_without_model_metrics():
    # kerox rule (brief/spec §7.10, K2 style) when the model exposes no metric objects.
    for monitor, op in [
        ("val_acc", "gt"),
        ("val_accuracy", "gt"),
        ("auc", "gt"),
        ("val_binary_accuracy", "gt"),
        ("val_loss", "lt"),
        ("my_loss", "lt"),
        ("val_mse", "lt"),
    ]:
        cb = kc.EarlyStopping(monitor=monitor)
        cb.set_model(FakeModel())
        cb._set_monitor_op()
        assert cb.monitor_op.__name__ == op, monitor


def test_early_stopping_missing_monitor_warns_like_keras(monkeypatch):
    keras = _keras()
    messages = []
    for lib in (keras.callbacks, kc):
        cb = lib.EarlyStopping(monitor="val_loss")
        cb.set_model(FakeModel())
        cb.on_train_begin()
        with pytest.warns(UserWarning) as rec:
            cb.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5})
        messages.append(str(rec[0].message))
    assert messages[1] == messages[0]


def test_early_stopping_unknown_mode_warns():
    with pytest.warns(UserWarning, match="mode 'bogus' is unknown, fallback to auto mode"):
        cb = kc.EarlyStopping(mode="bogus")
    assert cb.mode == "auto"


# ------------------------------------------------------------------------------------------
# TerminateOnNaN and LambdaCallback


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -math.inf])
@pytest.mark.parametrize("raise_error", [False, True])
def test_terminate_on_nan_matches_keras(monkeypatch, bad, raise_error):
    keras = _keras()

    def drive(run, cl):
        cl.on_train_begin()
        cl.on_epoch_begin(0)
        for b, loss in enumerate([1.0, 0.5, bad, 0.2]):
            cl.on_train_batch_end(b, {"loss": np.float32(loss)})
            if cl.model.stop_training:
                break
        cl.on_train_end()

    res = _both(
        monkeypatch,
        lambda: [keras.callbacks.TerminateOnNaN(raise_error=raise_error)],
        lambda: [kc.TerminateOnNaN(raise_error=raise_error)],
        drive,
    )
    assert res[1]["error"] == res[0]["error"]
    assert res[1]["out"] == res[0]["out"]
    assert res[1]["model"].stop_training == res[0]["model"].stop_training


def test_lambda_callback_matches_keras(monkeypatch):
    keras = _keras()
    seen = {"keras": [], "kerox": []}

    def make(lib, key):
        log = seen[key]
        return lib.LambdaCallback(
            on_epoch_begin=lambda epoch, logs: log.append(("epoch_begin", epoch, logs)),
            on_epoch_end=lambda epoch, logs: log.append(("epoch_end", epoch, logs)),
            on_train_begin=lambda logs: log.append(("train_begin", logs)),
            on_train_end=lambda logs: log.append(("train_end", logs)),
            on_train_batch_begin=lambda batch, logs: log.append(("batch_begin", batch, logs)),
            on_train_batch_end=lambda batch, logs: log.append(("batch_end", batch, logs)),
            on_test_end=lambda logs: log.append(("test_end", logs)),
        )

    _both(
        monkeypatch,
        lambda: [make(keras.callbacks, "keras")],
        lambda: [make(kc, "kerox")],
        lambda run, cl: _fit_events(run, cl, epochs=2, steps=2),
    )
    assert seen["kerox"] == seen["keras"] and len(seen["keras"]) > 8


# ------------------------------------------------------------------------------------------
# kerox-specific: which callbacks need per-step batch hooks


def test_needs_batch_hooks():
    class EpochOnly(kc.Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class PerBatch(kc.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    class LegacyPerBatch(kc.Callback):
        def on_batch_begin(self, batch, logs=None):
            pass

    class MyHistory(kc.History):  # inherits the flag, but its own override is not chunk-safe
        def on_train_batch_end(self, batch, logs=None):
            pass

    class SafeByDeclaration(kc.Callback):
        _kerox_chunk_safe = True

        def on_train_batch_end(self, batch, logs=None):
            pass

    class TestBatch(kc.Callback):
        def on_test_batch_end(self, batch, logs=None):
            pass

    class PredictBatch(kc.Callback):
        def on_predict_batch_begin(self, batch, logs=None):
            pass

    def needs(cbs, which="needs_batch_hooks"):
        return getattr(kc.CallbackList(cbs, add_history=True, add_progbar=True), which)()

    assert not needs([])
    assert not needs([kc.TerminateOnNaN(), kc.EarlyStopping(), EpochOnly(), kc.History()])
    assert not needs([SafeByDeclaration(), kc.ProgbarLogger()])
    assert not needs([kc.LambdaCallback(on_epoch_end=lambda e, logs: None)])
    assert needs([PerBatch()])
    assert needs([LegacyPerBatch()])
    assert needs([MyHistory()])
    assert needs([kc.LambdaCallback(on_train_batch_end=lambda b, logs: None)])
    assert needs([kc.LambdaCallback(on_batch_end=lambda b, logs: None)])
    assert not needs([PerBatch()], "needs_test_batch_hooks")
    assert needs([TestBatch()], "needs_test_batch_hooks")
    assert not needs([TestBatch()], "needs_predict_batch_hooks")
    assert needs([PredictBatch()], "needs_predict_batch_hooks")
    assert needs([kc.LambdaCallback(on_predict_batch_end=print)], "needs_predict_batch_hooks")
