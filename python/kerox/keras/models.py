"""`keras.Sequential` and `keras.Model`: the Keras 3 training API over the Rust engine.

Python owns what Keras users see (layers, compile, callbacks, progress bars, History); one
Rust call runs many training steps with the GIL released. ``fit`` hands the engine chunks of
about a tenth of a second, so progress bars stay live and Ctrl-C stops training promptly;
callbacks that need every batch get chunks of one step.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _core
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .layers import InputLayer, KerasTensor, Layer, Variable, _set_weights, auto_name

__all__ = ["Model", "Sequential"]

# Wall time one engine call should take while training: small enough for a live progress
# bar (Keras redraws every 0.05 s) and a prompt Ctrl-C, large enough to make the Python
# round trip (~10 µs) negligible.
_CHUNK_SECONDS = 0.1
# Rows per engine call for predict/evaluate when no callback needs every batch: inference
# results do not depend on how rows are grouped, so bigger groups only save overhead.
_INFERENCE_CHUNK = 1024

_READABLE = (np.floating, np.integer, np.bool_)


def _as_array(data: Any, what: str) -> np.ndarray:
    """Converts user data to an ndarray without copying when the engine can read it as is."""
    if hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
        data = data.to_numpy()
    arr = np.asarray(data) if not isinstance(data, np.ndarray) else data
    if arr.dtype.kind in "OUSVcM m" or arr.dtype == np.complex64:
        raise TypeError(
            f"`{what}` must hold numbers; received an array of dtype {arr.dtype}. Convert it "
            "with `.astype('float32')` first."
        )
    if arr.dtype == np.float16 or arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float32)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not arr.flags.aligned:
        arr = np.require(arr, requirements=["A"])
    return arr


def _rows_view(arr: np.ndarray) -> np.ndarray:
    """(N, ...) → (N, features) view (a copy only when the trailing axes cannot be merged)."""
    if arr.ndim == 2:
        return arr
    return arr.reshape(arr.shape[0], -1)


class Model:
    """Base class of kerox models (only :class:`Sequential` is implemented)."""


class Sequential(Model):
    """A linear stack of layers, trained by kerox's Rust engine with Keras 3 semantics."""

    def __init__(
        self, layers: Sequence[Layer] | None = None, trainable: bool = True, name: str | None = None
    ) -> None:
        self.name = name if name is not None else auto_name("Sequential")
        self.trainable = trainable
        self._layers: list[Layer] = []
        self._input_layer: InputLayer | None = None
        self.built = False
        self._build_shape: tuple[int | None, ...] | None = None
        self._engine: Any = None
        self._engine_key: Any = None
        self.optimizer: optimizers_module.Optimizer | None = None
        self.loss: Any = None
        self.compiled = False
        self._compiled_loss: losses_module.Loss | None = None
        self._metric_ids: list[Any] = []
        self._metrics: list[Any] | None = None
        self.stop_training = False
        self.history: Any = None
        if layers:
            for layer in layers:
                self.add(layer, rebuild=False)
            self._maybe_build()

    # ------------------------------------------------------------------------------------------
    # Structure
    # ------------------------------------------------------------------------------------------
    @property
    def layers(self) -> list[Layer]:
        """The layers (without the input layer)."""
        return list(self._layers)

    @layers.setter
    def layers(self, _: Any) -> None:
        raise AttributeError(
            "`Sequential.layers` attribute is reserved and should not be used. Use `add()` and "
            "`pop()` to change the layers in this model."
        )

    def add(self, layer: Layer | KerasTensor, rebuild: bool = True) -> None:
        """Appends a layer (or a `keras.Input`)."""
        if isinstance(layer, KerasTensor):
            layer = layer._keras_history
        if not isinstance(layer, Layer):
            raise ValueError(
                "Only instances of `keras.Layer` can be added to a Sequential model. "
                f"Received: {layer} (of type {type(layer)})"
            )
        if isinstance(layer, InputLayer):
            if self._input_layer is not None:
                raise ValueError(
                    f"Sequential model '{self.name}' has already been configured to use input "
                    f"shape {self._input_layer.batch_shape}. You cannot add a different Input "
                    "layer to it."
                )
            if self._layers:
                raise ValueError("An Input layer must be the first layer of a Sequential model.")
            self._input_layer = layer
            return
        names = {lay.name for lay in self._layers}
        if layer.name in names:
            raise ValueError(
                "All layers added to a Sequential model should have unique names. Name "
                f"'{layer.name}' is already the name of a layer in this model. Update the "
                "`name` argument to pass a unique name."
            )
        if not self._layers and self._input_layer is None and layer._input_shape_arg is not None:
            self._input_layer = InputLayer(batch_shape=layer._input_shape_arg)
        self._invalidate_engine()
        self._layers.append(layer)
        layer._model = self
        if rebuild:
            self._maybe_build()
        else:
            self.built = False

    def pop(self, rebuild: bool = True) -> Layer:
        """Removes and returns the last layer."""
        if not self._layers:
            raise TypeError("There are no layers in the model.")
        self._invalidate_engine()
        layer = self._layers.pop()
        layer._model = None
        self.built = False
        if rebuild:
            self._maybe_build()
        return layer

    def _maybe_build(self) -> None:
        if self._input_layer is not None and self._layers:
            self.build(self._input_layer.batch_shape)

    def build(self, input_shape: Any = None) -> None:
        """Builds every layer for inputs of ``input_shape`` (batch dimension first)."""
        if not self._layers:
            raise ValueError(
                f"Sequential model {self.name} cannot be built because it has no layers. Call "
                "`model.add(layer)`."
            )
        if input_shape is None:
            if self._input_layer is None:
                raise ValueError("You must provide an `input_shape` argument.")
            input_shape = self._input_layer.batch_shape
        input_shape = tuple(None if d is None else int(d) for d in input_shape)
        if self._input_layer is not None and tuple(input_shape[1:]) != tuple(
            self._input_layer.batch_shape[1:]
        ):
            raise ValueError(
                f"Sequential model '{self.name}' has already been configured to use input shape "
                f"{self._input_layer.batch_shape}. You cannot build it with input_shape "
                f"{input_shape}"
            )
        shape = input_shape
        for layer in self._layers:
            if (
                not layer.built
                or layer._build_shape is None
                or tuple(layer._build_shape[1:]) != tuple(shape[1:])
            ):
                layer.build(shape)
            layer._build_shape = tuple(shape)
            for v in layer._weights:
                v.path = f"{self.name}/{layer.name}/{v.name}"
            shape = layer.compute_output_shape(shape)
        self._build_shape = input_shape
        self.built = True

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Input shape, batch dimension first."""
        if self._build_shape is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined input shape yet.")
        return self._build_shape

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Output shape, batch dimension first."""
        if self._build_shape is None:
            raise AttributeError(f"Sequential model '{self.name}' has no defined output shape yet.")
        return self._layers[-1].output_shape

    # ------------------------------------------------------------------------------------------
    # Weights
    # ------------------------------------------------------------------------------------------
    @property
    def weights(self) -> list[Variable]:
        """All variables, layer by layer, in Keras order."""
        return [v for layer in self._layers for v in layer.weights]

    @property
    def variables(self) -> list[Variable]:
        """Same as :attr:`weights`."""
        return self.weights

    @property
    def trainable_weights(self) -> list[Variable]:
        """Variables the optimizer updates."""
        if not self.trainable:
            return []
        return [v for layer in self._layers for v in layer.trainable_weights]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """Variables the optimizer leaves alone (moving statistics, frozen layers)."""
        if not self.trainable:
            return self.weights
        return [v for layer in self._layers for v in layer.non_trainable_weights]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights, in :attr:`weights` order."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets all weights from a list in :attr:`weights` order."""
        _set_weights(self.name, self.weights, weights)

    def count_params(self) -> int:
        """Number of scalars in all weights."""
        if not self.built:
            raise ValueError(
                "You tried to call `count_params` on layer '"
                + self.name
                + "', but the layer isn't built. You can build it manually via: "
                "`layer.build(input_shape)`."
            )
        return int(sum(math.prod(v.shape) for v in self.weights))

    def summary(
        self,
        line_length: int | None = None,
        positions: Sequence[float] | None = None,
        print_fn: Any = None,
        expand_nested: bool = False,
        show_trainable: bool = False,
        layer_range: Any = None,
    ) -> None:
        """Prints Keras 3's summary table."""
        from .. import _summary

        _summary.print_summary(
            self,
            line_length=line_length,
            positions=positions,
            print_fn=print_fn,
            show_trainable=show_trainable,
            layer_range=layer_range,
        )

    # ------------------------------------------------------------------------------------------
    # Engine lifecycle
    # ------------------------------------------------------------------------------------------
    def _invalidate_engine(self) -> None:
        if self._engine is None:
            return
        for v in self.weights:
            v._detach()
        if self.optimizer is not None:
            self.optimizer._unbind()
        self._engine = None
        self._engine_key = None

    def _engine_specs(self) -> tuple[int, list[dict[str, Any]]]:
        assert self._build_shape is not None
        if any(d is None for d in self._build_shape[1:]):
            raise ValueError(f"Model input shape {self._build_shape} has unknown dimensions.")
        input_dim = int(math.prod(self._build_shape[1:]))
        specs = []
        shape = self._build_shape
        for layer in self._layers:
            spec = layer._engine_spec(shape)
            if spec is not None:
                if "trainable" in spec:
                    spec["trainable"] = bool(spec["trainable"] and self.trainable)
                specs.append(spec)
            shape = layer.compute_output_shape(shape)
        return input_dim, specs

    def _ensure_engine(self) -> Any:
        if not self.built:
            raise ValueError(
                f"Sequential model '{self.name}' has not been built yet; call it on data or "
                "call `build(input_shape)`."
            )
        input_dim, specs = self._engine_specs()
        key = (input_dim, repr(specs))
        if self._engine is not None and self._engine_key == key:
            return self._engine
        self._invalidate_engine()
        engine = _core.Engine(input_dim, specs)
        for i, v in enumerate(self.weights):
            v._attach(engine, i)
        self._engine, self._engine_key = engine, key
        self._engine_compiled = None
        return engine

    def _build_from_data(self, x: np.ndarray) -> None:
        if not self.built:
            # Keras 3 records the concrete size of the first batch it was built from.
            self.build((None, *x.shape[1:]))
        expected = tuple(self.input_shape[1:])
        if tuple(x.shape[1:]) != expected:
            first = self._layers[0] if self._layers else None
            raise ValueError(
                f'Input 0 of layer "{first.name if first else self.name}" is incompatible with '
                f"the layer: expected shape={(None, *expected)}, found shape={tuple(x.shape)}"
            )

    # ------------------------------------------------------------------------------------------
    # compile
    # ------------------------------------------------------------------------------------------
    def compile(
        self,
        optimizer: Any = "rmsprop",
        loss: Any = None,
        loss_weights: Any = None,
        metrics: Any = None,
        weighted_metrics: Any = None,
        run_eagerly: bool = False,
        steps_per_execution: int = 1,
        jit_compile: Any = "auto",
        auto_scale_loss: bool = True,
    ) -> None:
        """Configures the model for training (Keras 3 signature)."""
        opt = optimizers_module.get(optimizer)
        if loss is None:
            raise ValueError("No loss to compute. Provide a `loss` argument in `compile()`.")
        if isinstance(loss, (list, dict)):
            raise ValueError("kerox models have one output; pass a single loss.")
        compiled_loss = losses_module.get(loss)
        if loss_weights is not None or weighted_metrics:
            raise ValueError("kerox does not support `loss_weights`/`weighted_metrics` yet.")
        if metrics is None:
            metric_ids: list[Any] = []
        elif isinstance(metrics, (list, tuple)):
            metric_ids = [metrics_module.get(m) for m in metrics]
        else:
            raise TypeError(
                f"Type of `metrics` argument not understood. Expected a list or dictionary, "
                f"found: {metrics}"
            )
        if self.optimizer is not None and self.optimizer is not opt:
            self.optimizer._unbind()
        self.optimizer = opt
        self.loss = loss
        self._compiled_loss = compiled_loss
        self._metric_ids = metric_ids
        self._metrics = None
        self._engine_compiled = None
        self.compiled = True
        self._compile_config = {
            "optimizer": optimizer,
            "loss": loss,
            "metrics": metrics,
        }

    def _assert_compiled(self) -> None:
        if not self.compiled:
            raise ValueError("You must call `compile()` before using the model.")

    def _resolve_metrics(self, y: np.ndarray) -> list[Any]:
        out_dim = int(self.output_shape[-1])
        resolved = []
        for m in self._metric_ids:
            if isinstance(m, str):
                y_last = y.shape[-1] if y.ndim >= 2 else 1
                resolved.append(metrics_module.resolve_accuracy(m, y.ndim, y_last, out_dim))
            else:
                resolved.append(m)
        return resolved

    def _prepare_engine_for(self, y: np.ndarray) -> Any:
        """Builds the engine and compiles loss/metrics/optimizer into it (once per compile)."""
        engine = self._ensure_engine()
        if self._metrics is None:
            self._metrics = self._resolve_metrics(y)
        assert self.optimizer is not None and self._compiled_loss is not None
        key = (id(self.optimizer), id(self._compiled_loss), id(engine))
        if self._engine_compiled != key:
            engine.compile(
                self._compiled_loss._engine_spec(),
                [m._engine_spec() for m in self._metrics],
                self.optimizer._engine_spec(),
            )
            self.optimizer._bind(engine, [tuple(v.shape) for v in self.trainable_weights])
            self._engine_compiled = key
        return engine

    @property
    def metrics_names(self) -> list[str]:
        """``['loss', 'compile_metrics']`` once metrics are built, as in Keras 3."""
        if self._metrics:
            return ["loss", "compile_metrics"]
        return ["loss"] if self.compiled else []

    # ------------------------------------------------------------------------------------------
    # Data preparation
    # ------------------------------------------------------------------------------------------
    def _prepare_xy(self, x: Any, y: Any, what: str = "x") -> tuple[np.ndarray, np.ndarray]:
        if x is None:
            raise ValueError("`x` must be given (kerox trains on arrays).")
        if y is None:
            raise ValueError("`y` must be given: kerox models need targets to compute a loss.")
        x = _as_array(x, "x")
        y = _as_array(y, "y")
        if x.ndim < 2:
            raise ValueError(
                f"`x` must have a batch axis and at least one feature axis; received x with "
                f"shape {x.shape}. Reshape 1-D data with x.reshape(-1, 1)."
            )
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                "Data cardinality is ambiguous. Make sure all arrays contain the same number of "
                f"samples. 'x' sizes: {x.shape[0]}, 'y' sizes: {y.shape[0]}"
            )
        self._build_from_data(x)
        return x, y

    def _targets_for_engine(self, y: np.ndarray) -> np.ndarray:
        """y as the 2-D view the engine reads (labels as a column, values as rows)."""
        assert self._compiled_loss is not None
        out_dim = int(self.output_shape[-1])
        sparse = isinstance(self._compiled_loss, losses_module.SparseCategoricalCrossentropy)
        if sparse:
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(
                    "sparse_categorical_crossentropy expects integer labels of shape (N,) or "
                    f"(N, 1); received y of shape {y.shape}"
                )
            yv = y.reshape(-1, 1)
            if yv.size:
                lo, hi = yv.min(), yv.max()
                if lo < 0 or hi >= out_dim:
                    raise ValueError(
                        f"Received a label value of {hi if hi >= out_dim else lo} which is "
                        f"outside the valid range of [0, {out_dim}). Label values: y has "
                        f"min {lo} and max {hi}."
                    )
            return yv
        if y.ndim == 1:
            y = y.reshape(-1, 1)
        y2 = _rows_view(y)
        if y2.shape[1] != out_dim:
            raise ValueError(
                "Arguments `target` and `output` must have the same shape. Received: "
                f"target.shape={(None, *y.shape[1:])}, output.shape={(None, out_dim)}"
            )
        return y2

    def _logs(self, engine: Any, prefix: str = "") -> dict[str, float]:
        loss_sum, count, metric_sums = engine.stats()
        logs = {prefix + "loss": loss_sum / count if count else 0.0}
        for m, s in zip(self._metrics or [], metric_sums):
            logs[prefix + m.name] = s / count if count else 0.0
        return dict(sorted(logs.items()))

    # ------------------------------------------------------------------------------------------
    # fit / evaluate / predict
    # ------------------------------------------------------------------------------------------
    def fit(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        epochs: int = 1,
        verbose: Any = "auto",
        callbacks: Any = None,
        validation_split: float = 0.0,
        validation_data: Any = None,
        shuffle: Any = True,
        class_weight: Any = None,
        sample_weight: Any = None,
        initial_epoch: int = 0,
        steps_per_epoch: int | None = None,
        validation_steps: int | None = None,
        validation_batch_size: int | None = None,
        validation_freq: int = 1,
    ) -> callbacks_module.History:
        """Trains the model (Keras 3 semantics; the steps run in Rust)."""
        self._assert_compiled()
        if class_weight is not None or sample_weight is not None:
            raise ValueError("kerox does not support `class_weight`/`sample_weight` yet.")
        if steps_per_epoch is not None or validation_steps is not None:
            raise ValueError("kerox does not support `steps_per_epoch`/`validation_steps` yet.")
        batch_size = _check_batch_size(batch_size)
        if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"`epochs` must be a non-negative integer. Received: epochs={epochs}")
        if not isinstance(validation_freq, int) or validation_freq < 1:
            raise ValueError(
                f"`validation_freq` must be a positive integer. Received: {validation_freq}"
            )
        x, y = self._prepare_xy(x, y)
        if not isinstance(validation_split, (int, float)) or not 0 <= validation_split < 1:
            raise ValueError(
                "`validation_split` must be a float in [0, 1). Received: "
                f"validation_split={validation_split}"
            )
        val: tuple[np.ndarray, np.ndarray] | None = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError(
                    "`validation_data` should be a tuple `(x_val, y_val)`. Received: "
                    f"validation_data={type(validation_data)}"
                )
            if len(validation_data) == 3 and validation_data[2] is not None:
                raise ValueError("kerox does not support validation sample weights yet.")
            vx, vy = self._prepare_xy(validation_data[0], validation_data[1])
            val = (vx, vy)
        elif validation_split:
            n = x.shape[0]
            split_at = int(math.floor(n * (1.0 - validation_split)))
            if split_at == 0 or split_at == n:
                raise ValueError(
                    f"Training data contains {n} samples, which is not sufficient to split it "
                    f"into a validation and training set as specified by `validation_split="
                    f"{validation_split}`. Either provide more data, or a different value for "
                    "the `validation_split` argument."
                )
            # The validation set is the last fraction, taken before any shuffling (Keras).
            x, val = x[:split_at], (x[split_at:], y[split_at:])
            y = y[:split_at]
        if x.shape[0] == 0:
            raise ValueError("Expected input data to be non-empty.")

        engine = self._prepare_engine_for(y)
        x2 = _rows_view(x)
        y2 = self._targets_for_engine(y)
        val2 = None
        if val is not None:
            val2 = (_rows_view(val[0]), self._targets_for_engine(val[1]))
        n = x2.shape[0]
        steps = math.ceil(n / batch_size)
        cbs = callbacks_module.CallbackList(
            callbacks,
            add_history=True,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
        )
        per_batch = cbs.needs_batch_hooks()
        self.stop_training = False
        cbs.on_train_begin()
        epoch_logs: dict[str, float] = {}
        per_step = None
        for epoch in range(initial_epoch, epochs):
            engine.reset_stats()
            cbs.on_epoch_begin(epoch)
            order = _epoch_order(n, batch_size, shuffle)
            step = 0
            logs: dict[str, float] = {}
            while step < steps:
                if per_batch:
                    cbs.on_train_batch_begin(step)
                    chunk = 1
                elif per_step is None:
                    chunk = min(4, steps - step)
                else:
                    chunk = max(1, min(steps - step, int(_CHUNK_SECONDS / max(per_step, 1e-7))))
                t0 = time.perf_counter()
                done = engine.train_steps(x2, y2, order, batch_size, step, chunk)
                dt = time.perf_counter() - t0
                if done:
                    per_step = dt / done
                step += done
                logs = self._logs(engine)
                cbs.on_train_batch_end(step - 1, logs)
                # A chunk ends early right after a non-finite loss, so TerminateOnNaN (a
                # batch-end callback) sees it at the batch where it happened.
                if self.stop_training:
                    break
            epoch_logs = dict(logs)
            if val2 is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._run_evaluate(
                    val2[0], val2[1], validation_batch_size or batch_size, cbs, in_fit=True
                )
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        cbs.on_train_end(epoch_logs)
        return self.history

    def _run_evaluate(
        self,
        x2: np.ndarray,
        y2: np.ndarray,
        batch_size: int,
        cbs: Any,
        in_fit: bool = False,
    ) -> dict[str, float]:
        engine = self._engine
        n = x2.shape[0]
        steps = math.ceil(n / batch_size) if n else 0
        per_batch = cbs.needs_test_batch_hooks()
        # Inference is row-independent, so the engine may take several batches per call.
        group = 1 if per_batch else max(1, _INFERENCE_CHUNK // batch_size)
        engine.reset_stats()
        cbs.on_test_begin()
        logs: dict[str, float] = {}
        step = 0
        while step < steps:
            chunk = min(group, steps - step)
            if per_batch:
                cbs.on_test_batch_begin(step)
            done = engine.test_steps(x2, y2, batch_size, step, chunk)
            step += done
            logs = self._logs(engine)
            cbs.on_test_batch_end(step - 1, logs)
        cbs.on_test_end(logs)
        return logs

    def evaluate(
        self,
        x: Any = None,
        y: Any = None,
        batch_size: int | None = None,
        verbose: Any = "auto",
        sample_weight: Any = None,
        steps: int | None = None,
        callbacks: Any = None,
        return_dict: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Loss and metrics in inference mode: a float, ``[loss, *metrics]`` or a dict."""
        self._assert_compiled()
        if kwargs:
            raise ValueError(f"Arguments not recognized: {kwargs}")
        if sample_weight is not None or steps is not None:
            raise ValueError("kerox does not support `sample_weight`/`steps` in evaluate yet.")
        batch_size = _check_batch_size(batch_size)
        x, y = self._prepare_xy(x, y)
        self._prepare_engine_for(y)
        x2, y2 = _rows_view(x), self._targets_for_engine(y)
        n_steps = math.ceil(x2.shape[0] / batch_size) if x2.shape[0] else 0
        cbs = callbacks_module.CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=n_steps,
        )
        logs = self._run_evaluate(x2, y2, batch_size, cbs)
        return self._format_results(logs, return_dict)

    def _format_results(self, logs: dict[str, float], return_dict: bool) -> Any:
        if return_dict:
            return dict(sorted(logs.items()))
        if not self._metrics:
            return logs["loss"]
        return [logs["loss"]] + [logs[m.name] for m in self._metrics]

    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Any = None,
    ) -> np.ndarray:
        """Outputs for every sample, in inference mode (BatchNormalization uses moving stats)."""
        if steps is not None:
            raise ValueError("kerox does not support `steps` in predict yet.")
        batch_size = _check_batch_size(batch_size)
        x = _as_array(x, "x")
        if x.ndim < 2:
            raise ValueError(f"`x` must be at least 2-D (samples, features); received {x.shape}")
        self._build_from_data(x)
        engine = self._ensure_engine()
        x2 = _rows_view(x)
        n = x2.shape[0]
        out = np.empty((n, engine.output_dim), dtype=np.float32)
        n_steps = math.ceil(n / batch_size) if n else 0
        cbs = callbacks_module.CallbackList(
            callbacks,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=1,
            steps=n_steps,
        )
        per_batch = cbs.needs_predict_batch_hooks()
        group = 1 if per_batch else max(1, _INFERENCE_CHUNK // batch_size)
        cbs.on_predict_begin()
        step = 0
        while step < n_steps:
            chunk = min(group, n_steps - step)
            start, stop = step * batch_size, min(n, (step + chunk) * batch_size)
            if per_batch:
                cbs.on_predict_batch_begin(step)
            engine.predict(x2, start, max(batch_size, _INFERENCE_CHUNK), out[start:stop])
            step += chunk
            cbs.on_predict_batch_end(step - 1, {"outputs": out[start:stop]})
        cbs.on_predict_end()
        return out.reshape((n, *self.output_shape[1:]))

    def __call__(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Runs the model on an array and returns a NumPy array.

        ``training=True`` treats the whole input as one batch, as Keras does: batch
        statistics in BatchNormalization (whose moving statistics are updated), dropout active.
        """
        if isinstance(inputs, KerasTensor):
            raise ValueError("kerox Sequential models cannot be called on symbolic inputs yet.")
        x = _as_array(inputs, "inputs")
        if x.ndim < 2:
            raise ValueError(f"inputs must be at least 2-D (samples, features); received {x.shape}")
        if not self.built:
            self.build(tuple(x.shape))
        if not training:
            return self.predict(x, batch_size=max(1, x.shape[0]), verbose=0)
        self._build_from_data(x)
        engine = self._ensure_engine()
        x2 = _rows_view(x)
        out = np.empty((x2.shape[0], engine.output_dim), dtype=np.float32)
        engine.forward_training(x2, out)
        return out.reshape((x2.shape[0], *self.output_shape[1:]))

    def predict_on_batch(self, x: Any) -> np.ndarray:
        """Outputs for one batch."""
        x = _as_array(x, "x")
        return self.predict(x, batch_size=max(1, x.shape[0]), verbose=0)

    def train_on_batch(
        self,
        x: Any,
        y: Any = None,
        sample_weight: Any = None,
        class_weight: Any = None,
        return_dict: bool = False,
    ) -> Any:
        """One optimizer step on one batch; returns that batch's loss (and metrics)."""
        self._assert_compiled()
        if sample_weight is not None or class_weight is not None:
            raise ValueError("kerox does not support `sample_weight`/`class_weight` yet.")
        x, y = self._prepare_xy(x, y)
        engine = self._prepare_engine_for(y)
        x2, y2 = _rows_view(x), self._targets_for_engine(y)
        engine.reset_stats()
        n = x2.shape[0]
        if n == 0:
            raise ValueError("Expected input data to be non-empty.")
        engine.train_steps(x2, y2, None, n, 0, 1)
        return self._format_results(self._logs(engine), return_dict)

    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        self._assert_compiled()
        x, y = self._prepare_xy(x, y)
        engine = self._prepare_engine_for(y)
        x2, y2 = _rows_view(x), self._targets_for_engine(y)
        engine.reset_stats()
        engine.test_steps(x2, y2, max(1, x2.shape[0]), 0, 1)
        return self._format_results(self._logs(engine), return_dict)

    # ------------------------------------------------------------------------------------------
    # kerox extras
    # ------------------------------------------------------------------------------------------
    def gradient_stats(self) -> dict[str, Any]:
        """Gradient health since compile: steps, how often clipping fired per variable, and
        the last gradient norm per variable (when a norm-based clip is active)."""
        if self._engine is None:
            return {"steps": 0, "clip_fired": {}, "last_grad_norms": {}}
        raw = self._engine.clip_stats()
        names = [v.path for v in self.weights if v.trainable]
        return {
            "steps": raw["steps"],
            "clip_fired": dict(zip(names, raw["clip_fired"])),
            "last_grad_norms": dict(zip(names, raw["last_grad_norms"])),
        }

    def get_config(self) -> dict[str, Any]:
        """Keras 3 configuration of the model."""
        layers = []
        if self._build_shape is not None:
            layers.append(
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": InputLayer.get_config(
                        self._input_layer
                        if self._input_layer is not None
                        else InputLayer(batch_shape=self._build_shape)
                    ),
                    "registered_name": None,
                }
            )
        for layer in self._layers:
            entry = {
                "module": "keras.layers",
                "class_name": type(layer).__name__,
                "config": layer.get_config(),
                "registered_name": None,
            }
            if layer._build_shape is not None:
                entry["build_config"] = {"input_shape": list(layer._build_shape)}
            layers.append(entry)
        cfg: dict[str, Any] = {"name": self.name, "trainable": self.trainable, "layers": layers}
        if self._build_shape is not None:
            cfg["build_input_shape"] = list(self._build_shape)
        return cfg

    def __repr__(self) -> str:
        return f"<Sequential name={self.name}, built={self.built}>"


def _check_batch_size(batch_size: Any) -> int:
    if batch_size is None:
        return 32
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"`batch_size` must be an integer. Received: batch_size={batch_size!r}")
    if batch_size <= 0:
        raise ValueError(
            f"`batch_size` must be a positive integer. Received: batch_size={batch_size}"
        )
    return int(batch_size)


def _epoch_order(n: int, batch_size: int, shuffle: Any) -> np.ndarray | None:
    """Sample order for one epoch: a fresh permutation (global NumPy RNG, as Keras 3.15),
    a shuffle inside each batch (``"batch"``), or None for sequential order."""
    if shuffle == "batch":
        order = np.arange(n)
        for s in range(0, n, batch_size):
            np.random.shuffle(order[s : s + batch_size])
        return order.astype(np.uintp)
    if shuffle:
        return np.random.permutation(n).astype(np.uintp)
    return None
