"""`keras.Sequential` and `keras.Model`: the Keras 3 training API over the Rust engine.

Python owns what Keras users see (layers, compile, callbacks, progress bars, History); one
Rust call runs many training steps with the GIL released. ``fit`` hands the engine chunks of
about a tenth of a second, so progress bars stay live and Ctrl-C stops training promptly;
callbacks that need every batch get chunks of one step.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, cast

import numpy as np

from .. import _core
from . import _adapters
from . import callbacks as callbacks_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .layers import (
    Activation,
    Dropout,
    InputLayer,
    KerasTensor,
    Layer,
    Variable,
    _set_weights,
    auto_name,
    dtype_policy_config,
)

__all__ = [
    "Model",
    "Sequential",
    "clone_model",
    "load_model",
    "model_from_json",
    "save_model",
]

# Wall time one engine call should take while training: small enough for a live progress
# bar (Keras redraws every 0.05 s) and a prompt Ctrl-C, large enough to make the Python
# round trip (~10 µs) negligible.
_CHUNK_SECONDS = 0.1
# Rows per engine call for predict/evaluate when no callback needs every batch: inference
# results do not depend on how rows are grouped, so bigger groups only save overhead.
_INFERENCE_CHUNK = 1024

_READABLE = (np.floating, np.integer, np.bool_)
_BUILT_AT_INIT = (Activation, Dropout)


def _as_array(data: Any, what: str) -> np.ndarray:
    """Converts user data to an ndarray without copying when the engine can read it as is.

    Arrays of any float, integer or bool dtype, memory order, strides or writeability (memory
    maps included) come back as they are; only float16 / long double, non-native byte order
    and unaligned buffers are converted. As in Keras, a list or tuple holding exactly one
    array is that (single) input. Object, string, complex and datetime data raise TypeError;
    dicts, several input arrays, ragged lists and scalars raise ValueError naming ``what``.
    """
    if isinstance(data, dict):
        raise ValueError(
            f"kerox Sequential models take a single input array; `{what}` is a dict with keys "
            f"{sorted(map(str, data))}. Pass the array itself."
        )
    if isinstance(data, (list, tuple)) and data and all(_is_array_like(d) for d in data):
        ranks = [np.ndim(d) for d in data]
        if len(data) == 1 and ranks[0] >= 1:
            # Keras: `fit([x], [y])` and `predict((x,))` mean the one input / one target.
            data = data[0]
        elif min(ranks) >= 2:
            shapes = [tuple(np.shape(d)) for d in data]
            raise ValueError(
                f"kerox Sequential models take a single input array; `{what}` is a "
                f"{type(data).__name__} of {len(data)} arrays with shapes {shapes}. Pass one "
                "array of shape (samples, features...)."
            )
    if hasattr(data, "to_numpy") and not isinstance(data, np.ndarray):
        data = data.to_numpy()
    if isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"`{what}` could not be converted to a numeric array (a ragged list, or "
                f"items of different lengths?): {exc}"
            ) from None
    if arr.dtype.kind in "OUSVcMm":
        raise TypeError(
            f"`{what}` must hold numbers; received an array of dtype {arr.dtype} and shape "
            f"{arr.shape}. Convert it with `.astype('float32')` first."
        )
    if arr.ndim == 0:
        raise ValueError(
            f"`{what}` must be an array with a batch axis, of shape (samples, ...); received "
            f"a scalar ({arr!r}, shape ())."
        )
    if arr.dtype == np.float16 or arr.dtype.kind == "f" and arr.dtype.itemsize > 8:
        arr = arr.astype(np.float32)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not arr.flags.aligned:
        arr = np.require(arr, requirements=["A"])
    return arr


def _is_array_like(obj: Any) -> bool:
    """True for array objects (NumPy, pandas, JAX...), False for Python lists and numbers."""
    return isinstance(obj, np.ndarray) or (
        hasattr(obj, "shape") and (hasattr(obj, "__array__") or hasattr(obj, "to_numpy"))
    )


def _check_not_empty(x: np.ndarray, what: str, expected: tuple[Any, ...] | str) -> None:
    """Refuses an input with no samples (Keras 2's "Expected input data to be non-empty")."""
    if x.shape[0] == 0:
        raise ValueError(
            f"Expected input data to be non-empty. Received: `{what}` with shape {x.shape}; "
            f"expected shape {expected} with at least one sample."
        )


def _rows_view(arr: np.ndarray) -> np.ndarray:
    """(N, ...) → (N, features) view (a copy only when the trailing axes cannot be merged)."""
    if arr.ndim == 2:
        return arr
    return arr.reshape(arr.shape[0], -1)


class Model:
    """Base class of kerox models (only :class:`Sequential` is implemented)."""


_F = TypeVar("_F", bound=Callable[..., Any])


def _exclusive(method: _F) -> _F:
    """Serialises calls that use a model's engine: a second thread waits (the GIL is free
    meanwhile) instead of racing on the engine. Re-entrant, so callbacks may call back in."""

    @functools.wraps(method)
    def wrapper(self: Sequential, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return cast(_F, wrapper)


class Sequential(Model):
    """A linear stack of layers, trained by kerox's Rust engine with Keras 3 semantics."""

    def __init__(
        self, layers: Sequence[Layer] | None = None, trainable: bool = True, name: str | None = None
    ) -> None:
        self.name = name if name is not None else auto_name("Sequential")
        self._lock = threading.RLock()
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
    def losses(self) -> list[np.float32]:
        """The current weight penalties (float32 scalars) of the regularized trainable
        variables, layer by layer in :attr:`trainable_weights` order, as Keras's
        ``model.losses``; their sum is added to the training and evaluation loss."""
        return [
            np.float32(v.regularizer(v.numpy()))
            for v in self.trainable_weights
            if v.regularizer is not None
        ]

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

    @_exclusive
    def get_weights(self) -> list[np.ndarray]:
        """Copies of all weights, in :attr:`weights` order."""
        return [v.numpy() for v in self.weights]

    @_exclusive
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

    def get_layer(self, name: str | None = None, index: int | None = None) -> Layer:
        """A layer by ``name`` or by ``index`` into ``model.layers`` (Keras 3 rules)."""
        if name is not None and index is not None:
            raise ValueError(
                f"Provide only a layer name or a layer index. Received: index={index}, name={name}."
            )
        layers = self.layers
        if index is not None:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
                raise TypeError(f"`index` must be an integer. Received: index={index!r}")
            if not -len(layers) <= index < len(layers):
                raise ValueError(
                    f"Was asked to retrieve layer at index {index} but model only has "
                    f"{len(layers)} layers."
                )
            return layers[index]
        if name is not None:
            for layer in layers:
                if layer.name == name:
                    return layer
            raise ValueError(
                f"No such layer: {name}. Existing layers are: {[la.name for la in layers]}."
            )
        raise ValueError("Provide either a layer name or layer index at `get_layer`.")

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
        from . import regularizers as regularizers_module

        input_dim, specs = self._engine_specs()
        key = (input_dim, repr(specs))
        # Weight penalties (Keras adds those of the trainable variables only): (index into
        # `weights`, l1, l2), refreshed when a variable's regularizer was reassigned.
        trainable = {id(v) for v in self.trainable_weights}
        penalties = [
            (i, *regularizers_module.engine_factors(v.regularizer, f"variable '{v.path}'"))
            for i, v in enumerate(self.weights)
            if v.regularizer is not None and id(v) in trainable
        ]
        if self._engine is not None and self._engine_key == key:
            if getattr(self, "_engine_penalties", None) != penalties:
                self._engine.set_regularizers(penalties)
                self._engine_penalties = penalties
            return self._engine
        self._invalidate_engine()
        engine = _core.Engine(input_dim, specs)
        for i, v in enumerate(self.weights):
            v._attach(engine, i)
        engine.set_regularizers(penalties)
        self._engine_penalties = penalties
        self._engine, self._engine_key = engine, key
        self._engine_compiled = None
        return engine

    def _expected_x_shape(self) -> tuple[Any, ...] | str:
        """The input shape the model expects (batch axis None), or a description if unknown."""
        shape = self._build_shape
        if shape is None and self._input_layer is not None:
            shape = self._input_layer.batch_shape
        if shape is None:
            return "(samples, features...)"
        return (None, *shape[1:])

    def _check_x_rank(self, x: np.ndarray, what: str) -> None:
        """Refuses x without a feature axis (1-D) before anything is built from it."""
        if x.ndim < 2:
            expected = self._expected_x_shape()
            hint = ""
            if x.ndim == 1 and (expected == (None, 1) or isinstance(expected, str)):
                hint = f" For one feature per sample use `{what}.reshape(-1, 1)`."
            elif x.ndim == 1 and expected == (None, x.shape[0]):
                hint = f" For a single sample use `{what}.reshape(1, -1)`."
            raise ValueError(
                f"Invalid input shape for `{what}`: expected shape={expected}, "
                f"but received an array of shape {x.shape}. `{what}` needs a batch axis and at "
                f"least one feature axis.{hint}"
            )

    def _build_from_data(
        self, x: np.ndarray, what: str = "x", batch_size: int | None = None
    ) -> None:
        """Builds an unbuilt model from x's shape, then checks x against the input shape."""
        self._check_x_rank(x, what)
        if not self.built:
            # Keras 3 records the concrete size of the first batch it was built from
            # (`batch_size` rows in fit/evaluate/predict, all of x in the *_on_batch calls).
            rows = x.shape[0] if batch_size is None else min(batch_size, x.shape[0])
            try:
                self.build((rows or None, *x.shape[1:]))
            except ValueError as exc:
                raise ValueError(f"{exc} (received: `{what}` with shape {x.shape})") from None
        expected = tuple(self.input_shape[1:])
        if tuple(x.shape[1:]) != expected:
            first = self._layers[0] if self._layers else None
            raise ValueError(
                f'Input 0 of layer "{first.name if first else self.name}" is incompatible with '
                f"the layer: expected shape={(None, *expected)}, found shape={tuple(x.shape)}. "
                f"Received: `{what}` with shape {tuple(x.shape)}."
            )

    # ------------------------------------------------------------------------------------------
    # compile
    # ------------------------------------------------------------------------------------------
    @_exclusive
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
        compiled_loss = losses_module.resolve_for_training(loss)
        if loss_weights is not None:
            raise ValueError("kerox models have one output; `loss_weights` is not supported.")
        if metrics is None:
            metric_ids: list[Any] = []
        elif isinstance(metrics, (list, tuple)):
            metric_ids = [metrics_module.resolve_for_compile(m) for m in metrics]
        else:
            raise TypeError(
                f"Type of `metrics` argument not understood. Expected a list or dictionary, "
                f"found: {metrics}"
            )
        if weighted_metrics is None:
            weighted_ids: list[Any] = []
        elif isinstance(weighted_metrics, (list, tuple)):
            weighted_ids = [metrics_module.resolve_for_compile(m) for m in weighted_metrics]
        else:
            raise TypeError(
                "Expected `weighted_metrics` argument to be a list, tuple, or dict. Received "
                f"instead: weighted_metrics={weighted_metrics} of type {type(weighted_metrics)}"
            )
        if self.optimizer is not None and self.optimizer is not opt:
            self.optimizer._unbind()
        self.optimizer = opt
        self.loss = loss
        self._compiled_loss = compiled_loss
        self._metric_ids = metric_ids
        self._weighted_metric_ids = weighted_ids
        self._metrics = None
        self._engine_compiled = None
        self.compiled = True
        self._compile_config = {
            "optimizer": optimizer,
            "loss": loss,
            "metrics": metrics,
            "weighted_metrics": weighted_metrics,
        }

    def _assert_compiled(self) -> None:
        if not self.compiled:
            raise ValueError("You must call `compile()` before using the model.")

    def _resolve_metrics(self, y: np.ndarray) -> list[Any]:
        """The compiled metrics for targets like ``y``: ``metrics`` first, then
        ``weighted_metrics`` (named ``weighted_<name>`` where a name repeats, as Keras)."""
        out_dim = int(self.output_shape[-1])
        y_last = y.shape[-1] if y.ndim >= 2 else 1
        resolved = []
        seen: set[str] = set()
        weighted_ids = getattr(self, "_weighted_metric_ids", [])
        for k, m in enumerate([*self._metric_ids, *weighted_ids]):
            weighted = k >= len(self._metric_ids)
            if isinstance(m, str):
                m = metrics_module.resolve_accuracy(m, y.ndim, y_last, out_dim)
            elif weighted or any(m is r for r in resolved):
                m = copy.copy(m)
            m._weighted = weighted
            m._base_name = m.name
            if weighted and m.name in seen:
                m.name = f"weighted_{m.name}"
            seen.add(m.name)
            resolved.append(m)
        return resolved

    def _prepare_engine_for(self, y: np.ndarray) -> Any:
        """Builds the engine and compiles loss/metrics/optimizer into it (once per compile)."""
        engine = self._ensure_engine()
        # Resolved metrics are kept only once the engine accepted them, so a rejected call
        # cannot leave metrics chosen from bad targets behind.
        metrics = self._metrics if self._metrics is not None else self._resolve_metrics(y)
        assert self.optimizer is not None and self._compiled_loss is not None
        key = (id(self.optimizer), id(self._compiled_loss), id(engine))
        if self._engine_compiled != key:
            engine.compile(
                self._compiled_loss._engine_spec(),
                [m._engine_spec() for m in metrics],
                self.optimizer._engine_spec(),
            )
            self.optimizer._bind(engine, self.trainable_weights)
            self._engine_compiled = key
        self._metrics = metrics
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
    def _prepare_xy(
        self,
        x: Any,
        y: Any,
        names: tuple[str, str] = ("x", "y"),
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """x and y as arrays with matching sample counts; builds the model from x if needed.

        ``names`` are the argument names used in error messages (``validation_data[0]``...).
        """
        x_name, y_name = names
        if x is None:
            raise ValueError(f"`{x_name}` must be given (kerox trains on arrays).")
        if y is None:
            raise ValueError(
                f"`{y_name}` must be given: kerox models need targets to compute a loss."
            )
        x = _as_array(x, x_name)
        y = _as_array(y, y_name)
        self._check_x_rank(x, x_name)
        if x.shape[0] != y.shape[0]:
            raise ValueError(
                "Data cardinality is ambiguous. Make sure all arrays contain the same number of "
                f"samples. '{x_name}' sizes: {x.shape[0]}, '{y_name}' sizes: {y.shape[0]} "
                f"(`{x_name}` has shape {x.shape}, `{y_name}` has shape {y.shape})"
            )
        self._build_from_data(x, x_name, batch_size)
        return x, y

    def _targets_for_engine(self, y: np.ndarray, what: str = "y") -> np.ndarray:
        """y as the 2-D view the engine reads (labels as a column, values as rows).

        Checks y against the model's output and the loss: integer labels of shape (N,) or
        (N, 1) inside [0, classes) for sparse categorical crossentropy, otherwise the output's
        shape (a 1-D y is taken as a column when the model has one output unit).
        """
        assert self._compiled_loss is not None
        out_dim = int(self.output_shape[-1])
        n = y.shape[0]
        sparse = isinstance(self._compiled_loss, losses_module.SparseCategoricalCrossentropy)
        if sparse:
            if y.ndim > 2 or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(
                    "sparse_categorical_crossentropy expects integer labels: `"
                    f"{what}` must have shape ({n},) or ({n}, 1) for a model whose output has "
                    f"shape {(None, out_dim)}; received `{what}` with shape {y.shape}. For "
                    "one-hot targets use loss='categorical_crossentropy'."
                )
            yv = y.reshape(-1, 1)
            if yv.size:
                lo, hi = yv.min(), yv.max()
                if np.isnan(lo) or np.isnan(hi):
                    raise ValueError(
                        f"`{what}` holds NaN class labels; sparse labels must be integers in "
                        f"[0, {out_dim})."
                    )
                if lo < 0 or hi >= out_dim:
                    raise ValueError(
                        f"Received a label value of {hi if hi >= out_dim else lo} which is "
                        f"outside the valid range of [0, {out_dim}). Label values: `{what}` "
                        f"has min {lo} and max {hi}; the model's output has shape "
                        f"{(None, out_dim)}, so labels must lie in [0, {out_dim})."
                    )
            return yv
        out_shape = tuple(int(d) for d in self.output_shape[1:])
        if y.ndim == 1 and out_shape == (1,):
            return y.reshape(-1, 1)
        if tuple(y.shape[1:]) != out_shape:
            raise ValueError(
                "Arguments `target` and `output` must have the same shape. Received: "
                f"target.shape={(None, *y.shape[1:])}, output.shape={(None, *out_shape)}. "
                f"`{what}` has shape {y.shape}; expected {(n, *out_shape)} for this model."
            )
        return _rows_view(y)

    def _logs(self, engine: Any, prefix: str = "") -> dict[str, float]:
        loss_sum, count, results = engine.stats()
        logs = {prefix + "loss": loss_sum / count if count else 0.0}
        for m, value in zip(self._metrics or [], results):
            logs[prefix + m.name] = value
        return dict(sorted(logs.items()))

    # ------------------------------------------------------------------------------------------
    # fit / evaluate / predict
    # ------------------------------------------------------------------------------------------
    # ------------------------------------------------------------------------------------------
    # Data sources
    # ------------------------------------------------------------------------------------------
    def _py_batch(
        self, element: Any, what: str, class_weight: Any, need_y: bool
    ) -> _adapters.Batch:
        """One element a generator / dataset / PyDataset produced, checked and converted."""
        xb, yb, swb = _adapters.split_element(element, what)
        if not need_y:
            x = _as_array(xb, f"x of a `{what}` batch")
            self._build_from_data(x, f"x of a `{what}` batch")
            return _adapters.Batch(_rows_view(x), None, None)
        if yb is None:
            raise ValueError(
                f"`{what}` produced a batch without targets: training and evaluation need "
                "elements `(x, y)` or `(x, y, sample_weight)`."
            )
        names = (f"x of a `{what}` batch", f"y of a `{what}` batch")
        x, y = self._prepare_xy(xb, yb, names=names)
        _check_not_empty(x, names[0], self._expected_x_shape())
        y2 = self._targets_for_engine(y, names[1])
        sw = self._weights(swb, class_weight, y, f"sample_weight of a `{what}` batch")
        return _adapters.Batch(_rows_view(x), y2, sw)

    def _python_source(
        self,
        data: Any,
        what: str,
        class_weight: Any,
        shuffle: Any,
        need_y: bool = True,
    ) -> tuple[_adapters.Source, _adapters.Batch | None]:
        """A dataset / PyDataset / generator as a source, with its first batch converted (the
        model is built and the engine compiled from it; None for an empty source)."""
        from .utils._py_dataset import PyDataset

        def convert(e: Any) -> _adapters.Batch:
            return self._py_batch(e, what, class_weight, need_y)

        if _adapters.is_dataset(data):
            plan = data._array_plan()
            if plan is not None and need_y:
                source = self._plan_source(plan, what, class_weight)
                if source is not None:
                    return source, None
            card = data.cardinality()
            nb: float | None = math.inf if card == -1 else (None if card < 0 else int(card))
            first = next(iter(data), None)
            src = _adapters.PySource(lambda: iter(data), convert, nb)
        elif isinstance(data, PyDataset):
            nbatches = data.num_batches
            nb = math.inf if nbatches is None else int(nbatches)

            def batches() -> Iterator[Any]:
                if nbatches is None:
                    i = 0
                    while True:
                        yield data[i]
                        i += 1
                indices = list(range(int(nbatches)))
                if shuffle and shuffle != "batch":
                    random.shuffle(indices)
                for i in indices:
                    yield data[i]

            first = data[0] if nb else None
            src = _adapters.PySource(
                batches, convert, nb, begin=data.on_epoch_begin, end=data.on_epoch_end
            )
        else:
            it = iter(data)
            first = next(it, None)
            src = _adapters.PySource(lambda: it, convert, None, first=first)
        return src, (None if first is None else convert(first))

    def _plan_source(self, plan: Any, what: str, class_weight: Any) -> _adapters.Source | None:
        """An array-backed dataset handed to the engine as its arrays and index order."""
        arrays = plan.arrays
        if not isinstance(arrays, (tuple, list)) or len(arrays) not in (2, 3):
            return None
        if plan.batch_after_repeat and plan.n < plan.batch_size or plan.n == 0:
            return None  # batches spanning several passes: read them in Python
        xa, ya = self._prepare_xy(arrays[0], arrays[1], names=(f"x of `{what}`", f"y of `{what}`"))
        _check_not_empty(xa, f"x of `{what}`", self._expected_x_shape())
        y2 = self._targets_for_engine(ya, f"y of `{what}`")
        sw_raw = arrays[2] if len(arrays) == 3 else None
        sw = self._weights(sw_raw, class_weight, ya, f"sample_weight of `{what}`")
        return _adapters.PlanSource(plan, _rows_view(xa), y2, sw)

    def _class_weight(self, class_weight: Any) -> dict[int, float] | None:
        if class_weight is None:
            return None
        out_dim = int(self.output_shape[-1])
        return _adapters.check_class_weight(class_weight, max(out_dim, 2))

    def _data_source(
        self,
        x: Any,
        y: Any,
        sample_weight: Any,
        class_weight: Any,
        batch_size: int,
        shuffle: Any,
        what: str = "x",
    ) -> tuple[_adapters.Source, np.ndarray | None]:
        """``x`` (with ``y``, weights) as a source, and targets to resolve metrics from."""
        if _adapters.is_python_source(x):
            for name, value in (("y", y), ("sample_weight", sample_weight)):
                if value is not None:
                    raise ValueError(
                        f"`{name}` must not be given when `{what}` is a dataset, generator or "
                        f"PyDataset (received {type(x).__name__}): the data yields its own "
                        "targets and weights."
                    )
            src, first = self._python_source(x, what, class_weight, shuffle)
            if isinstance(src, _adapters.PlanSource):
                return src, src.y
            if first is None:
                raise ValueError(f"`{what}` is empty: it produced no batch.")
            return src, first.y
        xa, ya = self._prepare_xy(x, y, batch_size=batch_size)
        _check_not_empty(xa, "x", self._expected_x_shape())
        sw = self._weights(sample_weight, class_weight, ya)
        x2, y2 = _rows_view(xa), self._targets_for_engine(ya)
        n = x2.shape[0]
        src = _adapters.ArraySource(
            x2, y2, sw, batch_size, lambda: _epoch_order(n, batch_size, shuffle)
        )
        return src, ya

    def _weights(
        self, sample_weight: Any, class_weight: Any, y: np.ndarray, what: str = "sample_weight"
    ) -> np.ndarray | None:
        """Per-sample weights of the rows whose targets are ``y``: from ``sample_weight``
        (named ``what`` in errors) or from ``class_weight``, never both (as Keras)."""
        if sample_weight is not None and class_weight is not None:
            raise ValueError(
                "You cannot `class_weight` and `sample_weight` at the same time: "
                f"`{what}` was given beside `class_weight`."
            )
        if class_weight is not None:
            return _adapters.class_weights(y, self._class_weight(class_weight))
        return _adapters.sample_weights(sample_weight, y.shape[0], what)

    def _run_train(self, engine: Any, piece: _adapters.Run | _adapters.Batch) -> int:
        """Trains on one piece of work; returns the steps the engine ran."""
        assert self.optimizer is not None
        if isinstance(piece, _adapters.Batch):
            args = (piece.x, piece.y, None, max(1, piece.x.shape[0]), 0, 1)
        else:
            args = (piece.x, piece.y, piece.order, piece.batch_size, piece.first, piece.count)
        lrs = self.optimizer._lr_values(int(engine.iterations), args[5])
        if piece.sw is None:
            return engine.train_steps(*args, lrs)
        return engine.train_steps(*args, lrs, sample_weight=piece.sw)

    @staticmethod
    def _run_test(engine: Any, piece: _adapters.Run | _adapters.Batch) -> int:
        """Evaluates one piece of work; returns the batches it covered."""
        if isinstance(piece, _adapters.Batch):
            x, y, sw, bs, first, count = piece.x, piece.y, piece.sw, piece.x.shape[0], 0, 1
        else:
            x, y, sw = piece.x, piece.y, piece.sw
            bs, first, count = piece.batch_size, piece.first, piece.count
            if piece.order is not None:
                rows = piece.order[first * bs : (first + count) * bs]
                x, y = x[rows], y[rows]
                sw = None if sw is None else sw[rows]
                first = 0
        if sw is None:
            engine.test_steps(x, y, max(1, bs), first, count)
        else:
            engine.test_steps(x, y, max(1, bs), first, count, sample_weight=sw)
        return count

    @_exclusive
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
        """Trains the model (Keras 3 semantics; the steps run in Rust).

        ``x`` may be arrays (with ``y``), a ``tf.data``-style dataset, a ``PyDataset`` /
        ``Sequence``, or a generator / iterator yielding ``(x, y)`` or ``(x, y,
        sample_weight)``. Arrays and array-backed datasets (arrays + shuffle + batch + repeat)
        train without Python per batch; other sources run Python per batch.
        """
        self._assert_compiled()
        batch_size = _check_batch_size(batch_size)
        val_batch_size = _check_batch_size(
            validation_batch_size, "validation_batch_size", default=batch_size
        )
        epochs = _check_epochs(epochs, initial_epoch)
        steps_per_epoch = _check_steps(steps_per_epoch, "steps_per_epoch")
        validation_steps = _check_steps(validation_steps, "validation_steps")
        if (
            isinstance(validation_freq, bool)
            or not isinstance(validation_freq, int)
            or (validation_freq < 1)
        ):
            raise ValueError(
                f"`validation_freq` must be a positive integer. Received: {validation_freq}"
            )
        validation_split = _check_validation_split(validation_split)
        if x is None:
            raise ValueError("`x` must be given (arrays, a dataset, a PyDataset or a generator).")
        python_x = _adapters.is_python_source(x)
        if python_x and validation_split:
            raise ValueError(
                "`validation_split` is only supported for arrays; `x` is a "
                f"{type(x).__name__}. Pass `validation_data` instead."
            )
        val_source: _adapters.Source | None = None
        if validation_data is not None:
            val_source = self._validation_source(validation_data, val_batch_size)
        elif validation_split:
            x, y = self._prepare_xy(x, y, batch_size=batch_size)
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
            val_sw = None
            if sample_weight is not None:
                sample_weight = _adapters.sample_weights(sample_weight, n)
                assert sample_weight is not None
                sample_weight, val_sw = sample_weight[:split_at], sample_weight[split_at:]
            val_x, val_y = x[split_at:], y[split_at:]
            x, y = x[:split_at], y[:split_at]
            val_source = self._validation_source((val_x, val_y, val_sw), val_batch_size, "y")

        # Every target is checked before the engine is compiled for it, so a rejected call
        # changes nothing in the model.
        source, y_probe = self._data_source(x, y, sample_weight, class_weight, batch_size, shuffle)
        feed = _adapters.Feed(source, steps_per_epoch, "x")
        val_feed = (
            None
            if val_source is None
            else _adapters.Feed(val_source, validation_steps, "validation_data")
        )
        engine = self._prepare_engine_for(y_probe)
        cbs = self._callback_list(callbacks, verbose, epochs, feed.steps, add_history=True)
        per_batch = cbs.needs_batch_hooks()
        self.stop_training = False
        cbs.on_train_begin()
        epoch_logs: dict[str, float] = {}
        per_step = None
        for epoch in range(initial_epoch, epochs):
            engine.reset_stats()
            cbs.on_epoch_begin(epoch)
            feed.begin_epoch()
            logs: dict[str, float] = {}
            while True:
                if per_batch:
                    chunk = 1
                elif per_step is None:
                    chunk = 4
                else:
                    chunk = max(1, int(_CHUNK_SECONDS / max(per_step, 1e-7)))
                piece = feed.take(chunk)
                if piece is None:
                    break
                step = feed.step
                if per_batch:
                    cbs.on_train_batch_begin(step)
                t0 = time.perf_counter()
                done = self._run_train(engine, piece)
                dt = time.perf_counter() - t0
                if done:
                    per_step = dt / done
                feed.advance(done)
                logs = self._logs(engine)
                cbs.on_train_batch_end(feed.step - 1, logs)
                # A chunk ends early right after a non-finite loss, so TerminateOnNaN (a
                # batch-end callback) sees it at the batch where it happened.
                if self.stop_training:
                    break
            ran = feed.step
            feed.end_epoch()
            if ran == 0:
                raise ValueError(
                    f"`x` ran out of data: epoch {epoch + 1} got no batch. A generator can be "
                    "read only once; pass `steps_per_epoch` covering every epoch, use "
                    "`.repeat()` on a dataset, or a PyDataset."
                )
            epoch_logs = dict(logs)
            if val_feed is not None and (epoch + 1) % validation_freq == 0:
                val_logs = self._run_evaluate(val_feed, cbs, in_fit=True)
                epoch_logs.update({"val_" + k: v for k, v in val_logs.items()})
            cbs.on_epoch_end(epoch, epoch_logs)
            if self.stop_training:
                break
        if epochs > 0:  # as Keras: the EMA weights replace the trained ones
            assert self.optimizer is not None
            self.optimizer.finalize_variable_values(self.trainable_weights)
        cbs.on_train_end(epoch_logs)
        return self.history

    def _validation_source(
        self, validation_data: Any, batch_size: int, y_name: str = "validation_data[1]"
    ) -> _adapters.Source:
        """``validation_data`` (a tuple of arrays or a Python source) as a source."""
        if _adapters.is_python_source(validation_data):
            src, first = self._python_source(validation_data, "validation_data", None, False)
            if first is None and not isinstance(src, _adapters.PlanSource):
                raise ValueError("`validation_data` is empty: it produced no batch.")
            return src
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            what = (
                f"a {type(validation_data).__name__} of length {len(validation_data)}"
                if isinstance(validation_data, (tuple, list))
                else f"an object of type {type(validation_data).__name__}"
            )
            raise ValueError(
                "`validation_data` should be a tuple `(x_val, y_val)` or `(x_val, y_val, "
                f"val_sample_weight)`, a dataset, a PyDataset or a generator. Received: {what}."
            )
        x_name = "validation_data[0]" if y_name != "y" else "x"
        vx, vy = self._prepare_xy(validation_data[0], validation_data[1], names=(x_name, y_name))
        vsw = None
        if len(validation_data) == 3:
            vsw = _adapters.sample_weights(
                validation_data[2],
                vx.shape[0],
                "validation_data[2]" if y_name != "y" else "sample_weight",
            )
        v2 = _rows_view(vx)
        return _adapters.ArraySource(
            v2, self._targets_for_engine(vy, y_name), vsw, batch_size, lambda: None
        )

    def _run_evaluate(
        self, feed: _adapters.Feed, cbs: Any, in_fit: bool = False
    ) -> dict[str, float]:
        engine = self._engine
        per_batch = cbs.needs_test_batch_hooks()
        source = feed.source
        # Inference is row-independent, so the engine may take several batches per call.
        bs = getattr(source, "batch_size", 1)
        group = 1 if per_batch else max(1, _INFERENCE_CHUNK // max(1, bs))
        engine.reset_stats()
        cbs.on_test_begin()
        logs: dict[str, float] = {}
        feed.reset()
        feed.begin_epoch()
        while True:
            piece = feed.take(group)
            if piece is None:
                break
            if per_batch:
                cbs.on_test_batch_begin(feed.step)
            done = self._run_test(engine, piece)
            feed.advance(done)
            logs = self._logs(engine)
            cbs.on_test_batch_end(feed.step - 1, logs)
        feed.end_epoch()
        if not logs:
            logs = self._logs(engine)
        cbs.on_test_end(logs)
        return logs

    @_exclusive
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
        """Loss and metrics in inference mode: a float, ``[loss, *metrics]`` or a dict.

        ``x`` may be arrays (with ``y``), a dataset, a PyDataset or a generator, as in ``fit``.
        """
        self._assert_compiled()
        if kwargs:
            raise ValueError(f"Arguments not recognized: {kwargs}")
        batch_size = _check_batch_size(batch_size)
        steps = _check_steps(steps, "steps")
        if x is None:
            raise ValueError("`x` must be given (arrays, a dataset, a PyDataset or a generator).")
        source, y_probe = self._data_source(x, y, sample_weight, None, batch_size, False)
        feed = _adapters.Feed(source, steps, "x")
        self._prepare_engine_for(y_probe)
        cbs = self._callback_list(callbacks, verbose, 1, feed.steps)
        logs = self._run_evaluate(feed, cbs)
        return self._format_results(logs, return_dict)

    def _callback_list(
        self, callbacks: Any, verbose: Any, epochs: int, steps: int, add_history: bool = False
    ) -> callbacks_module.CallbackList:
        """The user's callbacks plus History (fit) and a progress bar unless ``verbose=0``."""
        return callbacks_module.CallbackList(
            callbacks,
            add_history=add_history,
            add_progbar=verbose != 0,
            model=self,
            verbose=verbose,
            epochs=epochs,
            steps=steps,
        )

    def _format_results(self, logs: dict[str, float], return_dict: bool) -> Any:
        """A dict, the loss alone (no metrics), or Keras 3's list: the loss and each compiled
        metric by its own name, then the other logs in name order (so a metric in both
        ``metrics`` and ``weighted_metrics`` appears twice, then as ``weighted_<name>``)."""
        if return_dict:
            return dict(sorted(logs.items()))
        if not self._metrics:
            return logs["loss"]
        names = ["loss"] + [getattr(m, "_base_name", m.name) for m in self._metrics]
        out = [logs[n] for n in names if n in logs]
        return out + [logs[k] for k in sorted(logs) if k not in names]

    @_exclusive
    def predict(
        self,
        x: Any,
        batch_size: int | None = None,
        verbose: Any = "auto",
        steps: int | None = None,
        callbacks: Any = None,
    ) -> np.ndarray:
        """Outputs for every sample, in inference mode (BatchNormalization uses moving stats).

        ``x`` may be an array, a dataset, a PyDataset or a generator (of ``x`` or ``(x, y)``
        elements; targets are ignored).
        """
        batch_size = _check_batch_size(batch_size)
        steps = _check_steps(steps, "steps")
        if x is None:
            raise ValueError("`x` must be given (an array, a dataset, a PyDataset or a generator).")
        if _adapters.is_python_source(x):
            return self._predict_python(x, verbose, steps, callbacks)
        x = _as_array(x, "x")
        self._build_from_data(x, batch_size=batch_size)
        _check_not_empty(x, "x", self._expected_x_shape())
        engine = self._ensure_engine()
        x2 = _rows_view(x)
        n = x2.shape[0]
        n_steps = math.ceil(n / batch_size) if n else 0
        if steps is not None:
            n_steps = min(n_steps, steps)
            n = min(n, n_steps * batch_size)
        out = np.empty((n, engine.output_dim), dtype=np.float32)
        cbs = self._callback_list(callbacks, verbose, 1, n_steps)
        per_batch = cbs.needs_predict_batch_hooks()
        group = 1 if per_batch else max(1, _INFERENCE_CHUNK // batch_size)
        cbs.on_predict_begin()
        step = 0
        while step < n_steps:
            chunk = min(group, n_steps - step)
            start, stop = step * batch_size, min(n, (step + chunk) * batch_size)
            if per_batch:
                cbs.on_predict_batch_begin(step)
            engine.predict(x2[:n], start, max(batch_size, _INFERENCE_CHUNK), out[start:stop])
            step += chunk
            cbs.on_predict_batch_end(step - 1, {"outputs": out[start:stop]})
        cbs.on_predict_end()
        return out.reshape((n, *self.output_shape[1:]))

    def _predict_python(self, data: Any, verbose: Any, steps: int | None, callbacks: Any) -> Any:
        """``predict`` over a dataset / PyDataset / generator, one batch per engine call."""
        source, _ = self._python_source(data, "x", None, False, need_y=False)
        if isinstance(source, _adapters.PlanSource):  # pragma: no cover - need_y=False
            raise AssertionError("plans are for training")
        feed = _adapters.Feed(source, steps, "x")
        engine = self._ensure_engine()
        cbs = self._callback_list(callbacks, verbose, 1, feed.steps)
        cbs.on_predict_begin()
        outs: list[np.ndarray] = []
        feed.begin_epoch()
        while True:
            piece = feed.take(1)
            if piece is None:
                break
            assert isinstance(piece, _adapters.Batch)
            cbs.on_predict_batch_begin(feed.step)
            rows = piece.x.shape[0]
            out = np.empty((rows, engine.output_dim), dtype=np.float32)
            if rows:
                engine.predict(piece.x, 0, max(rows, _INFERENCE_CHUNK), out)
            outs.append(out)
            feed.advance(1)
            cbs.on_predict_batch_end(feed.step - 1, {"outputs": out})
        feed.end_epoch()
        cbs.on_predict_end()
        if not outs:
            raise ValueError("`x` is empty: it produced no batch to predict on.")
        out = np.concatenate(outs)
        return out.reshape((out.shape[0], *self.output_shape[1:]))

    @_exclusive
    def __call__(self, inputs: Any, training: bool | None = None, mask: Any = None) -> Any:
        """Runs the model on an array and returns a NumPy array.

        ``training=True`` treats the whole input as one batch, as Keras does: batch
        statistics in BatchNormalization (whose moving statistics are updated), dropout active.
        """
        if isinstance(inputs, KerasTensor):
            raise ValueError("kerox Sequential models cannot be called on symbolic inputs yet.")
        x = _as_array(inputs, "inputs")
        self._check_x_rank(x, "inputs")
        if not self.built:
            try:
                self.build(tuple(x.shape))
            except ValueError as exc:
                raise ValueError(f"{exc} (received: `inputs` with shape {x.shape})") from None
        self._build_from_data(x, "inputs")
        if x.shape[0] == 0:
            return np.empty((0, *self.output_shape[1:]), dtype=np.float32)
        if not training:
            return self.predict(x, batch_size=x.shape[0], verbose=0)
        engine = self._ensure_engine()
        x2 = _rows_view(x)
        out = np.empty((x2.shape[0], engine.output_dim), dtype=np.float32)
        engine.forward_training(x2, out)
        return out.reshape((x2.shape[0], *self.output_shape[1:]))

    @_exclusive
    def predict_on_batch(self, x: Any) -> np.ndarray:
        """Outputs for one batch."""
        x = _as_array(x, "x")
        self._build_from_data(x)
        if x.shape[0] == 0:
            # Keras returns an empty batch of outputs here (its `predict` fails instead).
            return np.empty((0, *self.output_shape[1:]), dtype=np.float32)
        return self.predict(x, batch_size=x.shape[0], verbose=0)

    @_exclusive
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
        x, y = self._prepare_xy(x, y)
        _check_not_empty(x, "x", self._expected_x_shape())
        sw = self._weights(sample_weight, class_weight, y)
        x2, y2 = _rows_view(x), self._targets_for_engine(y)
        engine = self._prepare_engine_for(y)
        engine.reset_stats()
        self._run_train(engine, _adapters.Batch(x2, y2, sw))
        return self._format_results(self._logs(engine), return_dict)

    @_exclusive
    def test_on_batch(
        self, x: Any, y: Any = None, sample_weight: Any = None, return_dict: bool = False
    ) -> Any:
        """Loss (and metrics) of one batch in inference mode."""
        self._assert_compiled()
        x, y = self._prepare_xy(x, y)
        _check_not_empty(x, "x", self._expected_x_shape())
        sw = _adapters.sample_weights(sample_weight, x.shape[0])
        x2, y2 = _rows_view(x), self._targets_for_engine(y)
        engine = self._prepare_engine_for(y)
        engine.reset_stats()
        self._run_test(engine, _adapters.Batch(x2, y2, sw))
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

    # ------------------------------------------------------------------------------------------
    # Saving and export (implemented in `saving.py` and `_onnx.py`)
    # ------------------------------------------------------------------------------------------
    @_exclusive
    def save(
        self, filepath: Any, overwrite: bool = True, zipped: bool | None = None, **kwargs: Any
    ) -> None:
        """Saves architecture, weights and optimizer state as a Keras 3 ``.keras`` archive
        (or a legacy Keras ``.h5`` file). The write is atomic."""
        from . import saving

        saving.save_model(self, filepath, overwrite=overwrite, zipped=zipped, **kwargs)

    @_exclusive
    def save_weights(
        self, filepath: Any, overwrite: bool = True, max_shard_size: Any = None
    ) -> None:
        """Saves the weights (and optimizer state) in Keras 3's ``.weights.h5`` layout."""
        from . import saving

        saving.save_weights(self, filepath, overwrite=overwrite, max_shard_size=max_shard_size)

    @_exclusive
    def load_weights(self, filepath: Any, skip_mismatch: bool = False, **kwargs: Any) -> None:
        """Loads weights from ``.weights.h5``, ``.keras`` or a legacy Keras 2 ``.h5`` file."""
        from . import saving

        saving.load_weights(self, filepath, skip_mismatch=skip_mismatch, **kwargs)

    @_exclusive
    def export(
        self,
        filepath: Any,
        format: str = "onnx",
        verbose: bool | None = None,
        input_signature: Any = None,
        **kwargs: Any,
    ) -> None:
        """Exports an inference graph. kerox supports ``format="onnx"``."""
        if format != "onnx":
            raise ValueError(f"kerox can export only format='onnx'. Received: format={format!r}")
        from . import _onnx

        _onnx.export_onnx(
            self, filepath, verbose=verbose, input_signature=input_signature, **kwargs
        )

    def to_json(self, **kwargs: Any) -> str:
        """The model's Keras 3 configuration (``{"module", "class_name", "config", ...}``) as
        JSON; ``keras.models.model_from_json`` rebuilds it."""
        from . import saving

        return saving.model_to_json(self, **kwargs)

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: Any = None) -> Sequential:
        """Rebuilds a model from :meth:`get_config` output (only known layer classes)."""
        from . import saving

        return saving.sequential_from_config(config, custom_objects=custom_objects)

    def get_config(self) -> dict[str, Any]:
        """Keras 3 configuration of the model (``Sequential.from_config`` rebuilds it)."""
        layers = []
        if self._build_shape is not None or self._input_layer is not None:
            input_layer = self._input_layer
            if input_layer is None:
                input_layer = InputLayer(batch_shape=self._build_shape)
            layers.append(
                {
                    "module": "keras.layers",
                    "class_name": "InputLayer",
                    "config": input_layer.get_config(),
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
            # Keras's Dropout and Activation are built at construction: no build_config.
            if layer._build_shape is not None and not isinstance(layer, _BUILT_AT_INIT):
                entry["build_config"] = {"input_shape": tuple(layer._build_shape)}
            layers.append(entry)
        cfg: dict[str, Any] = {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": dtype_policy_config(),
            "layers": layers,
        }
        if self._build_shape is not None:
            cfg["build_input_shape"] = tuple(self._build_shape)
        return cfg

    def get_build_config(self) -> dict[str, Any] | None:
        """``{"input_shape": ...}`` once built (Keras's build config)."""
        if self._build_shape is None:
            return None
        return {"input_shape": tuple(self._build_shape)}

    def get_compile_config(self) -> dict[str, Any] | None:
        """The arguments of ``compile`` in Keras's serialized form (None if not compiled)."""
        if not self.compiled:
            return None
        from . import saving

        return saving._compile_config(self)

    def __repr__(self) -> str:
        return f"<Sequential name={self.name}, built={self.built}>"


def _check_batch_size(batch_size: Any, name: str = "batch_size", default: int = 32) -> int:
    """``batch_size`` (or ``validation_batch_size``) as a positive int; None means ``default``.

    Non-integers raise TypeError (Keras fails on them with one), values ≤ 0 ValueError (Keras
    would silently use 32 for 0 and stop with StopIteration for negative sizes).
    """
    if batch_size is None:
        return default
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(
            f"`{name}` must be an integer. Received: {name}={batch_size!r} (of type "
            f"{type(batch_size).__name__})"
        )
    if batch_size <= 0:
        raise ValueError(f"`{name}` must be a positive integer. Received: {name}={batch_size}")
    return int(batch_size)


def _check_steps(steps: Any, name: str) -> int | None:
    """``steps_per_epoch`` / ``validation_steps`` / ``steps``: None, or checked as a batch size
    is (a positive int)."""
    return None if steps is None else _check_batch_size(steps, name)


def _check_epochs(epochs: Any, initial_epoch: Any) -> int:
    """``epochs``: a non-negative int (TypeError for other types, as Keras's ``range``)."""
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise TypeError(
            f"`epochs` must be an integer. Received: epochs={epochs!r} (of type "
            f"{type(epochs).__name__})"
        )
    if epochs < 0:
        raise ValueError(f"`epochs` must be a non-negative integer. Received: epochs={epochs}")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, (int, np.integer)):
        raise TypeError(
            f"`initial_epoch` must be an integer. Received: initial_epoch={initial_epoch!r}"
        )
    if initial_epoch < 0:
        raise ValueError(
            f"`initial_epoch` must be a non-negative integer. Received: "
            f"initial_epoch={initial_epoch}"
        )
    return int(epochs)


def _check_validation_split(validation_split: Any) -> float:
    """``validation_split`` as a float in [0, 1) (TypeError for non-numbers)."""
    if isinstance(validation_split, bool) or not isinstance(validation_split, numbers.Real):
        raise TypeError(
            "`validation_split` must be a float in [0, 1). Received: "
            f"validation_split={validation_split!r} (of type {type(validation_split).__name__})"
        )
    if not 0 <= validation_split < 1:
        raise ValueError(
            "`validation_split` must be a float in [0, 1): the fraction of the samples kept "
            f"for validation. Received: validation_split={validation_split}"
        )
    return float(validation_split)


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


def load_model(
    filepath: Any, custom_objects: Any = None, compile: bool = True, safe_mode: bool = True
) -> Sequential:
    """Loads a model saved with ``model.save`` by kerox or Keras (``.keras`` or legacy ``.h5``).

    Only built-in layer, loss, metric and optimizer classes are accepted; nothing in the file
    is executed. With ``compile=True`` the model comes back compiled with its optimizer state,
    so ``fit`` continues exactly where the saved training stopped.
    """
    from . import saving

    return saving.load_model(
        filepath, custom_objects=custom_objects, compile=compile, safe_mode=safe_mode
    )


def model_from_json(json_string: str, custom_objects: Any = None) -> Sequential:
    """Rebuilds a model (fresh weights, compiled if the JSON carries a compile config) from
    ``model.to_json()`` output."""
    from . import saving

    return saving.model_from_json(json_string, custom_objects=custom_objects)


def clone_model(model: Sequential, **kwargs: Any) -> Sequential:
    """A new model with the same architecture and freshly initialized weights."""
    if kwargs:
        raise ValueError(f"kerox's clone_model takes no options yet. Received: {sorted(kwargs)}")
    return Sequential.from_config(model.get_config())


def save_model(model: Sequential, filepath: Any, overwrite: bool = True, **kwargs: Any) -> None:
    """Same as ``model.save(filepath)``."""
    model.save(filepath, overwrite=overwrite, **kwargs)
