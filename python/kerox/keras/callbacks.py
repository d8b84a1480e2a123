"""Callbacks (``keras.callbacks``): Keras 3 semantics, messages and hook order.

The model a callback sees is duck-typed. ``fit`` provides ``model.stop_training`` (read after
each batch chunk / epoch); :class:`EarlyStopping` with ``restore_best_weights`` uses
``model.get_weights()`` / ``model.set_weights(weights)``; :class:`CallbackList` and
:class:`History` set ``model.history``; :class:`EarlyStopping` in ``mode="auto"`` may look at
``model.metrics`` (objects with ``.name`` and ``._direction`` in ``{"up", "down"}``);
:class:`ModelCheckpoint` calls ``model.save(path, overwrite=True)`` or
``model.save_weights(path, overwrite=True)``; :class:`ReduceLROnPlateau` and
:class:`LearningRateScheduler` read and set ``model.optimizer.learning_rate`` (kerox's setter
pushes the new rate to the engine).

kerox runs many training steps per engine call. ``fit`` calls the batch hooks after every step
only when :meth:`CallbackList.needs_batch_hooks` says some callback needs them; otherwise
once per chunk of steps (with the batch index of the chunk's last step). Built-in callbacks
that are correct either way set the class attribute ``_kerox_chunk_safe = True`` (or make it a
property when that depends on the instance, as :class:`ModelCheckpoint` does: it needs every
step only with an integer ``save_freq``).

Callbacks that add ``learning_rate`` to the epoch logs (:class:`ReduceLROnPlateau`,
:class:`LearningRateScheduler`) do it in place, as Keras 3 does, so callbacks later in the
list (``History``, which ``fit`` appends last, and the progress bar) see it.
"""

from __future__ import annotations

import collections
import csv
import operator
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from kerox._progbar import Progbar, print_msg

__all__ = [
    "Callback",
    "CallbackList",
    "History",
    "ProgbarLogger",
    "EarlyStopping",
    "TerminateOnNaN",
    "LambdaCallback",
    "MonitorCallback",
    "ModelCheckpoint",
    "CSVLogger",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
]

Logs = dict[str, Any] | None


def _pythonify_logs(logs: Logs) -> dict[str, Any]:
    """Flatten nested dicts, convert values to Python floats where possible, sort keys.

    Keras 3 passes every ``logs`` dict through this (``python_utils.pythonify_logs``), which is
    why History keys and progress-bar metrics appear in alphabetical order.
    """
    result: dict[str, Any] = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(_pythonify_logs(value))
        else:
            try:
                value = float(value)
            except (TypeError, ValueError):
                pass
            result[key] = value
    return result


class Callback:
    """Base class of callbacks: override the ``on_*`` hooks you need.

    Attributes:
        model: The model being trained/evaluated (set by :meth:`set_model`).
        params: Dict of run parameters, e.g. ``{"verbose": 1, "epochs": 10, "steps": 32}``.

    ``epoch`` and ``batch`` arguments are 0-based. ``on_train_batch_begin/end`` call the legacy
    ``on_batch_begin/end`` by default.
    """

    def __init__(self) -> None:
        self.params: dict[str, Any] | None = None
        self._model: Any = None

    def set_params(self, params: dict[str, Any]) -> None:
        """Store the run parameters."""
        self.params = params

    def set_model(self, model: Any) -> None:
        """Store the model."""
        self._model = model

    @property
    def model(self) -> Any:
        """The model this callback is attached to."""
        return self._model

    @model.setter
    def model(self, model: Any) -> None:
        self._model = model

    def on_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Legacy alias of :meth:`on_train_batch_begin`."""

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Legacy alias of :meth:`on_train_batch_end`."""

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Called at the start of an epoch (training only)."""

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Called at the end of an epoch; ``logs`` holds training and ``val_`` metrics."""

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Called before a training batch; calls :meth:`on_batch_begin` by default."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Called after a training batch with running metrics; calls :meth:`on_batch_end`."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Called before a batch of ``evaluate`` (or of validation inside ``fit``)."""

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Called after a batch of ``evaluate`` with running metrics."""

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Called before a batch of ``predict``."""

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Called after a batch of ``predict``; ``logs`` is ``{"outputs": batch_outputs}``."""

    def on_train_begin(self, logs: Logs = None) -> None:
        """Called at the start of ``fit``."""

    def on_train_end(self, logs: Logs = None) -> None:
        """Called at the end of ``fit`` with the last epoch's logs."""

    def on_test_begin(self, logs: Logs = None) -> None:
        """Called at the start of ``evaluate`` or of a validation run."""

    def on_test_end(self, logs: Logs = None) -> None:
        """Called at the end of ``evaluate`` or of a validation run."""

    def on_predict_begin(self, logs: Logs = None) -> None:
        """Called at the start of ``predict``."""

    def on_predict_end(self, logs: Logs = None) -> None:
        """Called at the end of ``predict``."""


_TRAIN_BATCH_HOOKS = (
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_batch_begin",
    "on_batch_end",
)
_TEST_BATCH_HOOKS = ("on_test_batch_begin", "on_test_batch_end")
_PREDICT_BATCH_HOOKS = ("on_predict_batch_begin", "on_predict_batch_end")


def _needs_hook(callback: Any, name: str) -> bool:
    """Whether ``callback`` really needs ``name`` called after every single step.

    True if the hook is overridden (on the instance, or by a class other than
    :class:`Callback`) unless the overriding class declares ``_kerox_chunk_safe = True`` (a
    class attribute, or a property evaluated on ``callback``).
    """
    if name in vars(callback):
        return True
    for klass in type(callback).__mro__:
        if name in vars(klass):
            if klass is Callback or klass is CallbackList:
                return False
            safe = vars(klass).get("_kerox_chunk_safe", False)
            if isinstance(safe, property):
                safe = safe.__get__(callback, type(callback))
            return not safe
    return False


class CallbackList(Callback):
    """A list of callbacks called together, as ``fit``/``evaluate``/``predict`` use it.

    Every ``on_*`` method converts ``logs`` with :func:`_pythonify_logs` (floats, sorted keys)
    and calls the same hook on each callback, in order.

    Args:
        callbacks: Callbacks (a list, possibly nested).
        add_history: Append a :class:`History` if none is present.
        add_progbar: Append a :class:`ProgbarLogger` if none is present.
        model: The model, passed to every callback with ``set_model``.
        **params: Run parameters passed to every callback with ``set_params``.
    """

    def __init__(
        self,
        callbacks: Iterable[Callback] | Callback | None = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ) -> None:
        super().__init__()
        self.callbacks: list[Callback] = _flatten(callbacks) if callbacks else []
        self._in_begin_end_block_count = 0
        self._add_default_callbacks(add_history, add_progbar)
        self.set_model(model)
        self.set_params(params)

    def _add_default_callbacks(self, add_history: bool, add_progbar: bool) -> None:
        self._progbar: ProgbarLogger | None = None
        self._history: History | None = None
        for cb in self.callbacks:
            if isinstance(cb, ProgbarLogger):
                self._progbar = cb
            elif isinstance(cb, History):
                self._history = cb
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)

    def set_params(self, params: dict[str, Any]) -> None:
        """Store ``params`` and, if not empty, pass them to every callback."""
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model: Any) -> None:
        """Attach ``model`` to every callback (and set ``model.history``); ``None`` is a no-op."""
        if model is None:
            return
        super().set_model(model)
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def needs_batch_hooks(self) -> bool:
        """True if some callback needs the training batch hooks after every step."""
        return any(_needs_hook(cb, h) for cb in self.callbacks for h in _TRAIN_BATCH_HOOKS)

    def needs_test_batch_hooks(self) -> bool:
        """True if some callback needs the test batch hooks after every step."""
        return any(_needs_hook(cb, h) for cb in self.callbacks for h in _TEST_BATCH_HOOKS)

    def needs_predict_batch_hooks(self) -> bool:
        """True if some callback needs the predict batch hooks after every step."""
        return any(_needs_hook(cb, h) for cb in self.callbacks for h in _PREDICT_BATCH_HOOKS)

    def _on_begin(self) -> None:
        self._in_begin_end_block_count += 1

    def _on_end(self) -> None:
        self._in_begin_end_block_count -= 1
        if self._in_begin_end_block_count < 0:
            raise ValueError("`on_xxx_end` called without corresponding `on_xxx_begin`")

    def _dispatch(self, hook: str, *args: Any, logs: Logs = None) -> None:
        logs = _pythonify_logs(logs)
        # Keras passes `logs` by keyword to batch hooks and positionally to the others.
        by_keyword = "batch" in hook
        for callback in self.callbacks:
            if by_keyword:
                getattr(callback, hook)(*args, logs=logs)
            else:
                getattr(callback, hook)(*args, logs)

    def on_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_batch_begin``."""
        self._dispatch("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_batch_end``."""
        self._dispatch("on_batch_end", batch, logs=logs)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Dispatch ``on_epoch_begin``."""
        self._dispatch("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Dispatch ``on_epoch_end``."""
        self._dispatch("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_train_batch_begin``."""
        self._dispatch("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_train_batch_end``."""
        self._dispatch("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_test_batch_begin``."""
        self._dispatch("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_test_batch_end``."""
        self._dispatch("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_predict_batch_begin``."""
        self._dispatch("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Dispatch ``on_predict_batch_end``."""
        self._dispatch("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs: Logs = None) -> None:
        """Dispatch ``on_train_begin``."""
        self._on_begin()
        self._dispatch("on_train_begin", logs=logs)

    def on_train_end(self, logs: Logs = None) -> None:
        """Dispatch ``on_train_end``."""
        self._dispatch("on_train_end", logs=logs)
        self._on_end()

    def on_test_begin(self, logs: Logs = None) -> None:
        """Dispatch ``on_test_begin``."""
        self._on_begin()
        self._dispatch("on_test_begin", logs=logs)

    def on_test_end(self, logs: Logs = None) -> None:
        """Dispatch ``on_test_end``."""
        self._dispatch("on_test_end", logs=logs)
        self._on_end()

    def on_predict_begin(self, logs: Logs = None) -> None:
        """Dispatch ``on_predict_begin``."""
        self._on_begin()
        self._dispatch("on_predict_begin", logs=logs)

    def on_predict_end(self, logs: Logs = None) -> None:
        """Dispatch ``on_predict_end``."""
        self._dispatch("on_predict_end", logs=logs)
        self._on_end()


def _flatten(callbacks: Any) -> list[Callback]:
    if isinstance(callbacks, (list, tuple)):
        return [cb for item in callbacks for cb in _flatten(item)]
    return [callbacks]


class History(Callback):
    """Records the epoch logs; ``fit`` returns it.

    Attributes:
        history: ``{metric name: [value per epoch]}`` (keys in alphabetical order).
        epoch: List of the epoch indices seen.
        params: The run parameters (``{"verbose", "epochs", "steps"}``).
    """

    _kerox_chunk_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []

    def on_train_begin(self, logs: Logs = None) -> None:
        """Reset the epoch list (the history dict accumulates across ``fit`` calls)."""
        self.epoch = []

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Append each logged value and set ``model.history = self``."""
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)
        if self.model is not None:
            self.model.history = self


class ProgbarLogger(Callback):
    """Prints progress bars for ``fit``, ``evaluate`` and ``predict`` (Keras 3 format).

    Reads ``verbose`` (``"auto"`` means 1), ``epochs`` and ``steps`` from ``params``. Prints
    ``Epoch i/N`` when ``epochs > 1``; the validation run inside ``fit`` is silent.
    """

    _kerox_chunk_safe = True

    def __init__(self) -> None:
        super().__init__()
        self.seen = 0
        self.progbar: Progbar | None = None
        self.target: int | None = None
        self.verbose: int = 1
        self.epochs: int = 1
        self._called_in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
        """Read ``verbose``, ``epochs`` and ``steps``."""
        super().set_params(params)
        verbose = params.get("verbose", 1)
        self.verbose = 1 if verbose == "auto" else verbose
        self.epochs = params.get("epochs", 1)
        self.target = params.get("steps")

    def on_train_begin(self, logs: Logs = None) -> None:
        """Mark that we are inside ``fit`` (validation bars are then not shown)."""
        self._called_in_fit = True

    def on_test_begin(self, logs: Logs = None) -> None:
        """Start an ``evaluate`` bar."""
        if not self._called_in_fit:
            self._reset_progbar()
            self._maybe_init_progbar()

    def on_predict_begin(self, logs: Logs = None) -> None:
        """Start a ``predict`` bar."""
        self._reset_progbar()
        self._maybe_init_progbar()

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Start the epoch's bar (and print ``Epoch i/N`` if there are several epochs)."""
        self._reset_progbar()
        self._maybe_init_progbar()
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Update the bar to ``batch + 1`` steps."""
        self._update_progbar(batch, logs)

    def on_test_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Update the ``evaluate`` bar (silent during ``fit``)."""
        if not self._called_in_fit:
            self._update_progbar(batch, logs)

    def on_predict_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Update the ``predict`` bar (outputs are not shown)."""
        self._update_progbar(batch, None)

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Finish the epoch's bar with the epoch logs."""
        self._finalize_progbar(logs)

    def on_test_end(self, logs: Logs = None) -> None:
        """Finish the ``evaluate`` bar (silent during ``fit``)."""
        if not self._called_in_fit:
            self._finalize_progbar(logs)

    def on_predict_end(self, logs: Logs = None) -> None:
        """Finish the ``predict`` bar."""
        self._finalize_progbar(logs)

    def _reset_progbar(self) -> None:
        self.seen = 0
        self.progbar = None

    def _maybe_init_progbar(self) -> None:
        if self.progbar is None:
            # Values arrive as running means already: show them as-is.
            self.progbar = Progbar(
                target=self.target,
                verbose=self.verbose,
                unit_name="step",
                stateless_metrics=set(),
            )

    def _update_progbar(self, batch: int, logs: Logs = None) -> None:
        logs = logs or {}
        self._maybe_init_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list(logs.items()), finalize=False)

    def _finalize_progbar(self, logs: Logs) -> None:
        logs = logs or {}
        self._maybe_init_progbar()
        if self.target is None:
            self.target = self.seen
            self.progbar.target = self.target
        self.progbar.update(self.target, list(logs.items()), finalize=True)


# Direction of Keras 3's built-in metrics (their `_direction`), by name, for `mode="auto"`.
_METRIC_DIRECTIONS = {
    **dict.fromkeys(
        (
            "accuracy",
            "acc",
            "binary_accuracy",
            "categorical_accuracy",
            "sparse_categorical_accuracy",
            "top_k_categorical_accuracy",
            "sparse_top_k_categorical_accuracy",
            "auc",
            "precision",
            "recall",
            "f1_score",
            "fbeta_score",
            "r2_score",
            "cosine_similarity",
            "iou",
            "mean_iou",
            "pearson_correlation",
            "concordance_correlation",
        ),
        "up",
    ),
    **dict.fromkeys(
        (
            "mean_squared_error",
            "mse",
            "mean_absolute_error",
            "mae",
            "mean_absolute_percentage_error",
            "mape",
            "mean_squared_logarithmic_error",
            "msle",
            "root_mean_squared_error",
            "rmse",
            "logcosh",
            "hinge",
            "squared_hinge",
            "categorical_hinge",
            "binary_crossentropy",
            "categorical_crossentropy",
            "sparse_categorical_crossentropy",
        ),
        "down",
    ),
}


def _model_metric_direction(model: Any, name: str) -> str | None:
    """``_direction`` of the metric called ``name`` among ``model.metrics``, if any."""
    found = None
    stack = list(getattr(model, "metrics", None) or [])
    while stack:
        metric = stack.pop(0)
        inner = getattr(metric, "metrics", None)
        if isinstance(inner, (list, tuple)):
            stack[:0] = list(inner)
        if getattr(metric, "name", None) == name and hasattr(metric, "_direction"):
            found = metric._direction
    return found


class MonitorCallback(Callback):
    """Base of callbacks that watch a metric and decide whether it improved.

    Args:
        monitor: Name of the logged quantity to watch.
        mode: ``"auto"``, ``"min"`` or ``"max"`` (unknown values warn and fall back to auto).
        baseline: Initial best value (``None``: the first value seen).
        min_delta: Minimum absolute change that counts as an improvement.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        baseline: float | None = None,
        min_delta: float = 0,
    ) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{self.__class__.__name__} mode '{mode}' is unknown, fallback to auto mode.",
                stacklevel=2,
            )
            mode = "auto"
        self.monitor = monitor
        self.mode = mode
        self.best = baseline
        self.min_delta = abs(min_delta)
        self.monitor_op: Callable[[Any, Any], Any] | None = None

    def _set_monitor_op(self) -> None:
        if self.mode == "min":
            self.monitor_op = operator.lt
        elif self.mode == "max":
            self.monitor_op = operator.gt
        else:
            name = self.monitor.removeprefix("val_")
            direction = None
            if name == "loss":
                direction = "down"
            direction = _model_metric_direction(self.model, name) or direction
            direction = direction or _METRIC_DIRECTIONS.get(name)
            if direction is None:
                # kerox heuristic for names Keras would resolve through its metric objects.
                if any(tag in name for tag in ("acc", "accuracy", "auc")):
                    direction = "up"
                elif "loss" in name:
                    direction = "down"
            if direction is None:
                raise ValueError(
                    f"{self.__class__.__name__} callback received monitor={self.monitor}, but "
                    "Keras isn't able to automatically determine whether that metric should "
                    "be maximized or minimized. Pass `mode='max'` in order to monitor based "
                    "on the highest metric value, or pass `mode='min'` in order to use the "
                    "lowest value."
                )
            self.monitor_op = operator.gt if direction == "up" else operator.lt
        if self.monitor_op is operator.lt:
            self.min_delta *= -1

    def _is_improvement(self, monitor_value: Any, reference_value: Any) -> bool:
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))


class EarlyStopping(MonitorCallback):
    """Stop training when a monitored quantity has stopped improving.

    Args:
        monitor: Quantity to watch (default ``"val_loss"``).
        min_delta: Minimum absolute change that counts as an improvement.
        patience: Epochs without improvement before stopping.
        verbose: 1 prints ``Epoch N: early stopping`` and the restore message.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        baseline: Training stops if the model does not beat this value within ``patience``.
        restore_best_weights: At the end of training, restore the weights of the best epoch
            (Keras 3: whenever a best epoch exists, even without an early stop).
        start_from_epoch: Epochs to wait before monitoring starts.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience = patience
        self.verbose = verbose
        self.baseline = baseline
        self.wait = 0
        self.stopped_epoch = 0
        self.restore_best_weights = restore_best_weights
        self.best_weights: Any = None
        self.best_epoch = 0
        self.start_from_epoch = start_from_epoch

    def on_train_begin(self, logs: Logs = None) -> None:
        """Reset the state so the instance can be reused across ``fit`` calls."""
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Track the best value and set ``model.stop_training`` when patience runs out."""
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights = self.model.get_weights()
            self.best_epoch = epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            # Only restart the wait if we also beat the baseline.
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: Logs = None) -> None:
        """Print the stop message and restore the best weights if asked."""
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}."
                )
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: Logs) -> Any:
        """Return ``logs[monitor]``, warning (and returning ``None``) if it is missing."""
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(list(logs.keys()))}",
                stacklevel=2,
            )
        return value


class TerminateOnNaN(Callback):
    """Stop training when the loss becomes NaN or infinite.

    Args:
        raise_error: Raise ``RuntimeError`` instead of setting ``model.stop_training``.
    """

    # The engine ends a chunk right after any step with a non-finite loss, so this callback
    # still sees the bad value at the right batch without per-step hooks.
    _kerox_chunk_safe = True

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Check ``logs["loss"]``."""
        loss = (logs or {}).get("loss")
        if loss is not None and (np.isnan(loss) or np.isinf(loss)):
            if self.raise_error:
                raise RuntimeError(
                    f"NaN or Inf loss encountered at batch {batch}. "
                    f"Loss value: {loss}. Terminating training immediately."
                )
            print_msg(f"Batch {batch}: Invalid loss, terminating training")
            self.model.stop_training = True


class LambdaCallback(Callback):
    """Build a callback from plain functions.

    ``on_epoch_begin/end(epoch, logs)``, ``on_train_begin/end(logs)``,
    ``on_train_batch_begin/end(batch, logs)``; any other hook by keyword
    (e.g. ``on_test_end=f``).
    """

    def __init__(
        self,
        on_epoch_begin: Callable[..., Any] | None = None,
        on_epoch_end: Callable[..., Any] | None = None,
        on_train_begin: Callable[..., Any] | None = None,
        on_train_end: Callable[..., Any] | None = None,
        on_train_batch_begin: Callable[..., Any] | None = None,
        on_train_batch_end: Callable[..., Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        self.__dict__.update(kwargs)
        hooks = {
            "on_epoch_begin": on_epoch_begin,
            "on_epoch_end": on_epoch_end,
            "on_train_begin": on_train_begin,
            "on_train_end": on_train_end,
            "on_train_batch_begin": on_train_batch_begin,
            "on_train_batch_end": on_train_batch_end,
        }
        for name, fn in hooks.items():
            if fn is not None:
                setattr(self, name, fn)


# ----------------------------------------------------------------------------------------------
# Checkpoints, CSV logging and learning-rate control
# ----------------------------------------------------------------------------------------------


class ModelCheckpoint(MonitorCallback):
    """Save the model (or its weights) after every epoch or every ``save_freq`` batches.

    Keras 3 semantics: ``filepath`` is formatted with ``str.format(epoch=epoch + 1, **logs)``
    (plus ``batch=batch + 1`` for batch-level saves), e.g. ``"ckpt-{epoch:02d}-{val_loss:.2f}
    .keras"``; the directory is created if needed; the model is written with
    ``model.save(path, overwrite=True)`` or ``model.save_weights(path, overwrite=True)``.

    Args:
        filepath: Path (``str`` or ``PathLike``). Must end in ``.keras`` (or ``.h5``), or in
            ``.weights.h5`` when ``save_weights_only=True``.
        monitor: Logged quantity that decides "best" with ``save_best_only``.
        verbose: 1 prints a message whenever the callback saves (or decides not to).
        save_best_only: Save only when ``monitor`` improves on the best value seen so far.
        save_weights_only: Save only the weights (``model.save_weights``).
        mode: ``"auto"``, ``"min"`` or ``"max"``: the direction of improvement.
        save_freq: ``"epoch"`` or an integer: save after that many training batches.
        initial_value_threshold: Initial best value (only with ``save_best_only``).

    Raises:
        ValueError: Bad ``save_freq`` or a ``filepath`` with the wrong extension.
    """

    def __init__(
        self,
        filepath: str | os.PathLike[str],
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, initial_value_threshold)
        self.verbose = verbose
        self.filepath = _path_to_string(filepath)
        self.save_best_only = save_best_only
        self.save_weights_only = save_weights_only
        self.save_freq = save_freq
        self._batches_seen_since_last_saving = 0
        self._last_batch_seen: int | None = None
        self._current_epoch = 0

        if self.save_freq != "epoch" and not isinstance(self.save_freq, int):
            raise ValueError(
                f"Unrecognized save_freq: {self.save_freq}. "
                "Expected save_freq are 'epoch' or integer values"
            )
        if save_weights_only:
            if not self.filepath.endswith(".weights.h5"):
                raise ValueError(
                    "When using `save_weights_only=True` in `ModelCheckpoint`, the filepath "
                    "provided must end in `.weights.h5` (Keras weights format). Received: "
                    f"filepath={self.filepath}"
                )
        elif not any(self.filepath.endswith(ext) for ext in (".keras", ".h5")):
            raise ValueError(
                "The filepath provided must end in `.keras` (Keras model format). Received: "
                f"filepath={self.filepath}"
            )

    @property
    def _kerox_chunk_safe(self) -> bool:
        # Epoch-level saving ignores the batch hook: no per-step chunks needed. Integer
        # `save_freq` saves the weights after exactly that many steps, as Keras does.
        return self.save_freq == "epoch"

    def on_train_batch_end(self, batch: int, logs: Logs = None) -> None:
        """Count batches and save every ``save_freq`` of them (integer ``save_freq``)."""
        if self._should_save_on_batch(batch):
            self._save_model(epoch=self._current_epoch, batch=batch, logs=logs)

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Remember the epoch (batch-level file names use it)."""
        self._current_epoch = epoch

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Save (or consider saving) the model when ``save_freq="epoch"``."""
        if self.monitor_op is None:
            self._set_monitor_op()
        if self.save_freq == "epoch":
            self._save_model(epoch=epoch, batch=None, logs=logs)

    def _should_save_on_batch(self, batch: int) -> bool:
        if self.save_freq == "epoch":
            return False
        if self._last_batch_seen is None or batch <= self._last_batch_seen:
            add_batches = batch + 1  # a new epoch; batches are 0-based
        else:
            add_batches = batch - self._last_batch_seen
        self._batches_seen_since_last_saving += add_batches
        self._last_batch_seen = batch
        if self._batches_seen_since_last_saving >= self.save_freq:
            self._batches_seen_since_last_saving = 0
            return True
        return False

    def _should_save_model(self, epoch: int, batch: int | None, logs: Logs, filepath: str) -> bool:
        logs = logs or {}
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        if isinstance(current, np.ndarray) and len(current.shape) > 0:
            warnings.warn(
                f"Can save best model only when `monitor` is a scalar value. Received: "
                f"{current}. Falling back to `save_best_only=False`.",
                stacklevel=3,
            )
            return True
        if self.monitor_op is None:
            # Batch-level saving before the first epoch end (Keras would fail here).
            self._set_monitor_op()
        best_str = "None" if self.best is None else f"{self.best:.5f}"
        if self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(
                    f"\nEpoch {epoch + 1}: {self.monitor} improved from {best_str} to "
                    f"{current:.5f}, saving model to {filepath}"
                )
            self.best = current
            return True
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best_str}")
        return False

    def _save_model(self, epoch: int, batch: int | None, logs: Logs) -> None:
        logs = logs or {}
        filepath = self._get_file_path(epoch, batch, logs)
        try:
            if self._should_save_model(epoch, batch, logs, filepath):
                dirname = os.path.dirname(filepath)
                if dirname and not os.path.exists(dirname):
                    os.makedirs(dirname)
                if self.save_weights_only:
                    self.model.save_weights(filepath, overwrite=True)
                else:
                    self.model.save(filepath, overwrite=True)
                if self.verbose > 0:
                    print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}")
        except IsADirectoryError as e:
            raise OSError(
                "Please specify a non-directory filepath for ModelCheckpoint. Filepath used "
                f"is an existing directory: {filepath}"
            ) from e
        except OSError as e:
            if "is a directory" in str(e.args[0] if e.args else "").lower():
                # Keras 3.15's text, including its stray "f".
                raise OSError(
                    "Please specify a non-directory filepath for ModelCheckpoint. Filepath "
                    f"used is an existing directory: f{filepath}"
                ) from e
            raise

    def _get_file_path(self, epoch: int, batch: int | None, logs: dict[str, Any]) -> str:
        """The checkpoint path for this epoch (and batch), formatted with the logs."""
        try:
            if batch is None or "batch" in logs:
                return self.filepath.format(epoch=epoch + 1, **logs)
            return self.filepath.format(epoch=epoch + 1, batch=batch + 1, **logs)
        except KeyError as e:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {e}'
            ) from e


def _path_to_string(path: Any) -> Any:
    """``os.fspath`` for path-like objects; anything else unchanged (Keras's helper)."""
    if isinstance(path, os.PathLike):
        return os.fspath(path)
    return path


class CSVLogger(Callback):
    """Stream the epoch logs to a CSV file (Keras 3 format).

    The header is ``epoch`` followed by the sorted log keys of the first epoch (``val_<key>``
    columns are added if that epoch has no validation keys); each epoch writes one row with
    the 0-based epoch, ``NA`` for missing values, and is flushed. Lines end in ``\\r\\n``
    (the ``csv.excel`` dialect), floats are written with ``repr``.

    Args:
        filename: Path of the CSV file.
        separator: Field separator.
        append: Append to an existing file (the header is written only if it is empty).
    """

    def __init__(
        self, filename: str | os.PathLike[str], separator: str = ",", append: bool = False
    ) -> None:
        super().__init__()
        self.sep = separator
        self.filename = _path_to_string(filename)
        self.append = append
        self.writer: csv.DictWriter[str] | None = None
        self.keys: list[str] | None = None
        self.append_header = True
        self.csv_file: Any = None

    def on_train_begin(self, logs: Logs = None) -> None:
        """Open the file (truncating it unless ``append``)."""
        if self.append:
            if os.path.exists(self.filename):
                with open(self.filename) as f:
                    self.append_header = not bool(len(f.readline()))
            mode = "a"
        else:
            mode = "w"
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.csv_file = open(self.filename, mode)  # closed in on_train_end
        self.writer = None
        self.keys = None

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Write one row (and the header before the first one)."""
        logs = logs or {}

        def handle_value(k: Any) -> Any:
            is_zero_dim_ndarray = isinstance(k, np.ndarray) and k.ndim == 0
            if isinstance(k, str):
                return k
            if isinstance(k, collections.abc.Iterable) and not is_zero_dim_ndarray:
                return f'"[{", ".join(map(str, k))}]"'
            return k

        if self.keys is None:
            self.keys = sorted(logs.keys())
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys.extend([f"val_{k}" for k in self.keys])

        if not self.writer:

            class CustomDialect(csv.excel):
                delimiter = self.sep

            fieldnames = ["epoch"] + (self.keys or [])
            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=fieldnames, dialect=CustomDialect
            )
            if self.append_header:
                self.writer.writeheader()

        row: dict[str, Any] = {"epoch": epoch}
        row.update((key, handle_value(logs.get(key, "NA"))) for key in self.keys)
        self.writer.writerow(row)
        self.csv_file.flush()

    def on_train_end(self, logs: Logs = None) -> None:
        """Close the file."""
        if self.csv_file and not self.csv_file.closed:
            self.csv_file.close()
        self.writer = None


def _current_lr(optimizer: Any) -> float:
    return float(np.asarray(optimizer.learning_rate))


class ReduceLROnPlateau(MonitorCallback):
    """Reduce the learning rate when a monitored quantity has stopped improving.

    Each epoch end adds ``logs["learning_rate"]`` (the rate used during that epoch). After
    ``patience`` epochs without an improvement of at least ``min_delta`` (outside the
    ``cooldown`` period) the rate becomes ``max(lr * factor, min_lr)``, in the optimizer and
    hence in the engine.

    Args:
        monitor: Quantity to watch.
        factor: Multiplier of the learning rate (``< 1``).
        patience: Epochs without improvement before reducing.
        verbose: 1 prints ``Epoch N: ReduceLROnPlateau reducing learning rate to X.``.
        mode: ``"auto"``, ``"min"`` or ``"max"``.
        min_delta: Minimum change that counts as an improvement.
        cooldown: Epochs to wait after a reduction before counting again.
        min_lr: Lower bound of the learning rate.
        **kwargs: Accepted and ignored (Keras 3 does the same).

    Raises:
        ValueError: ``factor >= 1``.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}"
            )
        self.factor = factor
        self.min_lr = min_lr
        self.patience = patience
        self.verbose = verbose
        self.cooldown = cooldown
        self.cooldown_counter = 0
        self.wait = 0

    def _reset(self) -> None:
        self.best = None
        self.cooldown_counter = 0
        self.wait = 0

    def _reduce_optimizer_lr(self, optimizer: Any, epoch: int, name: str = "") -> bool:
        old_lr = _current_lr(optimizer)
        if old_lr > np.float32(self.min_lr):
            new_lr = max(old_lr * self.factor, self.min_lr)
            optimizer.learning_rate = new_lr
            if self.verbose > 0:
                name_str = f" {name}" if name else ""
                print_msg(
                    f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing{name_str} learning rate "
                    f"to {new_lr}."
                )
            return True
        return False

    def on_train_begin(self, logs: Logs = None) -> None:
        """Reset the best value, ``wait`` and the cooldown."""
        self._reset()

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Log the learning rate and reduce it if the monitored value stalled."""
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs or {}  # as Keras: an empty dict is not updated in place
        optimizer = self.model.optimizer
        logs["learning_rate"] = _current_lr(optimizer)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is "
                f"not available. Available metrics are: {','.join(list(logs.keys()))}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce_optimizer_lr(optimizer, epoch):
                self.cooldown_counter = self.cooldown
                self.wait = 0

    def in_cooldown(self) -> bool:
        """True while the cooldown after a reduction is running."""
        return self.cooldown_counter > 0


class LearningRateScheduler(Callback):
    """Set the learning rate at the start of every epoch from ``schedule``.

    ``schedule(epoch, lr)`` (0-based epoch, current rate) returns the new rate; a schedule
    that takes only ``epoch`` works too (tried when the two-argument call raises
    ``TypeError``). Each epoch end adds ``logs["learning_rate"]``.

    Args:
        schedule: The function.
        verbose: 1 prints ``Epoch N: LearningRateScheduler setting learning rate to X.``.

    Raises:
        ValueError: (at epoch begin) ``schedule`` returned something other than a float.
    """

    def __init__(self, schedule: Callable[..., Any], verbose: int = 0) -> None:
        super().__init__()
        self.schedule = schedule
        self.verbose = verbose

    def _update_optimizer_lr(self, optimizer: Any, epoch: int) -> Any:
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:  # new API
            learning_rate = self.schedule(epoch, _current_lr(optimizer))
        except TypeError:  # old API: schedule(epoch)
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {learning_rate}"
            )
        optimizer.learning_rate = learning_rate
        return learning_rate

    def on_epoch_begin(self, epoch: int, logs: Logs = None) -> None:
        """Apply ``schedule`` to the optimizer (and so to the engine)."""
        learning_rate = self._update_optimizer_lr(self.model.optimizer, epoch)
        if self.verbose > 0:
            print_msg(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{learning_rate}."
            )

    def on_epoch_end(self, epoch: int, logs: Logs = None) -> None:
        """Add ``logs["learning_rate"]``."""
        if logs:  # Keras: `logs = logs or {}`, so an empty dict is not updated in place
            logs["learning_rate"] = _current_lr(self.model.optimizer)
