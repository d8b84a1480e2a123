"""Callbacks (``keras.callbacks``): Keras 3 semantics, messages and hook order.

The model a callback sees is duck-typed. ``fit`` provides ``model.stop_training`` (read after
each batch chunk / epoch); :class:`EarlyStopping` with ``restore_best_weights`` uses
``model.get_weights()`` / ``model.set_weights(weights)``; :class:`CallbackList` and
:class:`History` set ``model.history``; :class:`EarlyStopping` in ``mode="auto"`` may look at
``model.metrics`` (objects with ``.name`` and ``._direction`` in ``{"up", "down"}``).

kerox runs many training steps per engine call. ``fit`` calls the batch hooks after every step
only when :meth:`CallbackList.needs_batch_hooks` says some callback needs them; otherwise
once per chunk of steps (with the batch index of the chunk's last step). Built-in callbacks
that are correct either way set the class attribute ``_kerox_chunk_safe = True``.
"""

from __future__ import annotations

import operator
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
    :class:`Callback`) unless the overriding class declares ``_kerox_chunk_safe = True``.
    """
    if name in vars(callback):
        return True
    for klass in type(callback).__mro__:
        if name in vars(klass):
            if klass is Callback or klass is CallbackList:
                return False
            return not vars(klass).get("_kerox_chunk_safe", False)
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
