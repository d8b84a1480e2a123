"""Layers for dense networks (`keras.layers`), with Keras 3's names, defaults and weight order.

A layer holds its configuration and its variables. Inside a model the numbers live in the Rust
engine; a layer called on its own (``Dense(3)(x)``) computes with NumPy in inference mode.
"""

from __future__ import annotations

import contextlib
import math
import re
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from . import activations as _activations
from . import initializers as _initializers
from . import regularizers as _regularizers

__all__ = [
    "Activation",
    "BatchNormalization",
    "Dense",
    "Dropout",
    "Flatten",
    "Identity",
    "Input",
    "InputLayer",
    "KerasTensor",
    "Layer",
    "Normalization",
    "Rescaling",
]

_NAME_UIDS: dict[str, int] = {}
_LOADING = threading.local()

#: The layer classes files may name, by Keras class name, each added by :func:`register` at
#: its class; `saving` loads these and no others.
LAYER_CLASSES: dict[str, type[Layer]] = {}
#: Per class, the Keras config keys kerox accepts only at their default value (loading refuses
#: any other value, and drops the key).
INERT_CONFIG: dict[str, dict[str, Any]] = {}


def register(**inert: Any) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: makes a layer class loadable under its name, with ``inert`` the Keras
    config keys it takes only at these values (``quantization_config=None``, ...)."""

    def add(cls: type[Any]) -> type[Any]:
        LAYER_CLASSES[cls.__name__] = cls
        INERT_CONFIG[cls.__name__] = dict(inert)
        return cls

    return add


@contextlib.contextmanager
def skip_initializers() -> Iterator[None]:
    """While active (in this thread), new variables start as zeros instead of running their
    initializers: used when every value is about to be loaded from a file."""
    previous = getattr(_LOADING, "active", False)
    _LOADING.active = True
    try:
        yield
    finally:
        _LOADING.active = previous


def _snake_case(name: str) -> str:
    s = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s).lower()


def dtype_policy_config() -> dict[str, Any]:
    """Keras 3's serialized float32 ``DTypePolicy`` (every kerox layer computes in float32)."""
    return {
        "module": "keras",
        "class_name": "DTypePolicy",
        "config": {"name": "float32"},
        "registered_name": None,
    }


def auto_name(base: str) -> str:
    """Keras's process-wide unique naming: ``dense``, ``dense_1``, ``dense_2``, ..."""
    base = _snake_case(base)
    uid = _NAME_UIDS.get(base, 0) + 1
    _NAME_UIDS[base] = uid
    return base if uid == 1 else f"{base}_{uid - 1}"


class Variable:
    """A model variable (Keras's ``keras.Variable`` for our purposes).

    Its value lives in NumPy until the owning model builds its engine, then in the engine;
    ``numpy()`` always returns a copy, ``assign`` writes through.
    """

    def __init__(
        self,
        value: np.ndarray,
        name: str,
        trainable: bool,
        layer: Layer,
        dtype: str = "float32",
    ) -> None:
        # (np.ascontiguousarray would turn a 0-d value, a scalar variable, into 1-d.)
        self._value: np.ndarray | None = np.array(value, dtype=np.float32, order="C")
        self._dtype = dtype
        self.name = name
        self._trainable = trainable
        self._layer = layer
        self._engine: Any = None
        self._index = -1
        self._regularizer: Any = None
        self.path = f"{layer.name}/{name}"

    @property
    def regularizer(self) -> Any:
        """The variable's regularizer (``None`` if none); its penalty joins the loss while
        the variable is trainable."""
        return self._regularizer

    @regularizer.setter
    def regularizer(self, value: Any) -> None:
        if value is not None and not callable(value):
            raise ValueError(
                "Invalid value for attribute `regularizer`. Expected a callable (such as a "
                "`keras.regularizers.Regularizer` instance) or `None`. "
                f"Received: regularizer={value}"
            )
        self._regularizer = value

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the variable."""
        return tuple(self._shape())

    def _shape(self) -> tuple[int, ...]:
        if self._value is not None:
            return self._value.shape
        return tuple(self._engine.variables()[self._index][0])

    @property
    def dtype(self) -> str:
        """``"float32"``, or ``"int32"`` for a counter Keras keeps as an integer."""
        return self._dtype

    @property
    def trainable(self) -> bool:
        """Whether the optimizer updates it (false for all variables of a frozen layer)."""
        return self._trainable and self._layer.trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)

    def numpy(self) -> np.ndarray:
        """A copy of the current value."""
        if self._engine is not None:
            value = self._engine.get_var(self._index)
        else:
            assert self._value is not None
            value = self._value.copy()
        return value if self._dtype == "float32" else value.astype(self._dtype)

    @property
    def value(self) -> np.ndarray:
        """Same as :meth:`numpy`."""
        return self.numpy()

    def assign(self, value: Any) -> None:
        """Overwrites the value (same shape required)."""
        arr = np.asarray(value, dtype=np.float32)
        if arr.shape != self.shape:
            raise ValueError(
                f"The shape of the target variable and the shape of the target value in "
                f"`variable.assign(value)` must match. variable.shape={self.shape}, "
                f"Received: value.shape={arr.shape}. Target variable: {self.path}"
            )
        if self._engine is not None:
            self._engine.set_var(self._index, np.ascontiguousarray(arr))
        else:
            self._value = np.array(arr, dtype=np.float32, copy=True)
        self._layer._variable_assigned(self)

    def _attach(self, engine: Any, index: int) -> None:
        value = np.ascontiguousarray(self.numpy(), dtype=np.float32)
        engine.set_var(index, value)
        self._engine, self._index, self._value = engine, index, None

    def _detach(self) -> None:
        if self._engine is not None:
            self._value = np.asarray(self._engine.get_var(self._index), dtype=np.float32)
            self._engine, self._index = None, -1

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        v = self.numpy()
        return v if dtype is None else v.astype(dtype)

    def __repr__(self) -> str:
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self._dtype}>"


def _shape_tuple(shape: Any, what: str) -> tuple[int | None, ...]:
    if isinstance(shape, int):
        return (shape,)
    try:
        out = tuple(None if d is None else int(d) for d in shape)
    except TypeError as e:
        raise ValueError(
            f"Invalid `{what}`: expected a tuple of integers. Received: {shape}"
        ) from e
    if any(d is not None and d <= 0 for d in out):
        raise ValueError(f"Invalid `{what}`: dimensions must be positive. Received: {shape}")
    return out


class Layer:
    """Base class of every layer: naming, variables, weight lists, legacy input shapes."""

    def __init__(
        self,
        *,
        name: str | None = None,
        trainable: bool = True,
        dtype: Any = None,
        input_shape: Any = None,
        input_dim: int | None = None,
        activity_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if activity_regularizer is not None:
            raise ValueError(
                "kerox does not support `activity_regularizer` yet (the engine has no "
                "penalty on layer outputs). "
                f"Received: activity_regularizer={activity_regularizer!r}"
            )
        #: Always ``None`` in kerox (a non-None value is refused).
        self.activity_regularizer = None
        if kwargs:
            raise ValueError(
                f"Unrecognized keyword arguments passed to {type(self).__name__}: {kwargs}"
            )
        if dtype not in (None, "float32", np.float32) and str(dtype) != "float32":
            raise ValueError(f"kerox layers compute in float32. Received: dtype={dtype}")
        if name is not None and not isinstance(name, str):
            raise TypeError(f"`name` must be a string. Received: name={name!r}")
        self.name = name if name is not None else auto_name(type(self).__name__)
        self._trainable = bool(trainable)
        self.built = False
        self._weights: list[Variable] = []
        self._input_shape_arg: tuple[int | None, ...] | None = None
        self._build_shape: tuple[int | None, ...] | None = None
        self._model: Any = None
        if input_dim is not None or input_shape is not None:
            warnings.warn(
                "Do not pass an `input_shape`/`input_dim` argument to a layer. When using "
                "Sequential models, prefer using an `Input(shape)` object as the first layer "
                "in the model instead.",
                UserWarning,
                stacklevel=3,
            )
            if input_dim is not None:
                self._input_shape_arg = (None, *_shape_tuple((input_dim,), "input_dim"))
            else:
                self._input_shape_arg = (None, *_shape_tuple(input_shape, "input_shape"))

    # -- trainable state -------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """Whether the layer's variables are updated by training (Keras semantics)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)

    # -- building ----------------------------------------------------------------------------
    def build(self, input_shape: Any) -> None:
        """Creates the variables for inputs of ``input_shape`` (batch dimension first)."""
        self._build_shape = tuple(input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        """Output shape for a given input shape."""
        return tuple(input_shape)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """The shape the layer was built for."""
        if self._build_shape is None:
            raise AttributeError(f"Layer {self.name} has no defined input shape yet.")
        return self._build_shape

    @property
    def output_shape(self) -> tuple[int | None, ...]:
        """Output shape, once built."""
        if self._build_shape is None:
            raise AttributeError(f"Layer {self.name} has no defined output shape yet.")
        return self.compute_output_shape(self._build_shape)

    def _variable_assigned(self, variable: Variable) -> None:
        """Called after one of the layer's variables is assigned (set or loaded)."""

    def _add_weight(
        self,
        shape: tuple[int, ...],
        initializer: Any,
        name: str,
        trainable: bool,
        dtype: str = "float32",
        regularizer: Any = None,
    ):
        if getattr(_LOADING, "active", False):
            # Values come from a file next: lazily zeroed pages, no initializer run, so a
            # config declaring a huge layer costs nothing until its weights are checked.
            try:
                value = np.zeros(shape, dtype=np.float32)
            except MemoryError:
                raise MemoryError(
                    f"{type(self).__name__} layer '{self.name}': variable '{name}' of shape "
                    f"{shape} does not fit in memory"
                ) from None
        else:
            init = _initializers.get(initializer)
            value = np.asarray(init(shape, dtype="float32"), dtype=np.float32)
        v = Variable(value.reshape(shape), name, trainable, self, dtype)
        v.regularizer = regularizer
        self._weights.append(v)
        return v

    @property
    def losses(self) -> list[np.float32]:
        """The current penalties of the regularized trainable variables (float32 scalars, in
        :attr:`trainable_weights` order); empty for a frozen layer, as in Keras."""
        return [
            np.float32(v.regularizer(v.numpy()))
            for v in self.trainable_weights
            if v.regularizer is not None
        ]

    # -- weights -----------------------------------------------------------------------------
    @property
    def weights(self) -> list[Variable]:
        """Trainable variables then non-trainable ones, in creation order (Keras order)."""
        return [v for v in self._weights if v._trainable] + [
            v for v in self._weights if not v._trainable
        ]

    @property
    def variables(self) -> list[Variable]:
        """Same as :attr:`weights`."""
        return self.weights

    @property
    def trainable_weights(self) -> list[Variable]:
        """Variables the optimizer updates (none when the layer is frozen)."""
        if not self.trainable:
            return []
        return [v for v in self._weights if v._trainable]

    @property
    def non_trainable_weights(self) -> list[Variable]:
        """All variables of a frozen layer, else the non-trainable ones."""
        if not self.trainable:
            return self.weights
        return [v for v in self._weights if not v._trainable]

    def get_weights(self) -> list[np.ndarray]:
        """Copies of the weights, in :attr:`weights` order."""
        return [v.numpy() for v in self.weights]

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Sets the weights from a list of arrays in :attr:`weights` order."""
        _set_weights(self.name, self.weights, weights)

    def count_params(self) -> int:
        """Number of scalars in the layer's weights."""
        if not self.built:
            raise ValueError(
                f"You tried to call `count_params` on layer '{self.name}', but the layer "
                "isn't built. You can build it manually via: `layer.build(input_shape)`."
            )
        return int(sum(math.prod(v.shape) for v in self._weights))

    # -- engine spec and numpy forward ---------------------------------------------------------
    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        """The engine's description of this layer (None: identity in the engine)."""
        raise NotImplementedError

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, inputs: Any, training: bool | None = None) -> Any:
        """Applies the layer to an array (inference mode; NumPy), or to a `keras.Input`."""
        if isinstance(inputs, KerasTensor):
            if not self.built:
                self.build(inputs.shape)
            return KerasTensor(self.compute_output_shape(inputs.shape), self)
        x = np.asarray(inputs, dtype=np.float32)
        if not self.built:
            self.build((None, *x.shape[1:]))
        return self._numpy_call(x, bool(training))

    def get_config(self) -> dict[str, Any]:
        """Keras-style configuration."""
        return {"name": self.name, "trainable": self.trainable, "dtype": dtype_policy_config()}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        """Rebuilds a layer from :meth:`get_config` output."""
        config = dict(config)
        config.pop("dtype", None)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name}, built={self.built}>"


def _set_weights(owner: str, variables: Sequence[Variable], weights: Sequence[Any]) -> None:
    weights = list(weights)
    if len(weights) != len(variables):
        raise ValueError(
            f"You called `set_weights(weights)` on layer '{owner}' with a weight list of "
            f"length {len(weights)}, but the layer was expecting {len(variables)} weights."
        )
    arrays = []
    for v, w in zip(variables, weights):
        a = np.asarray(w)
        if a.shape != v.shape:
            raise ValueError(
                f"Layer {owner} weight shape {v.shape} is not compatible with provided weight "
                f"shape {a.shape}."
            )
        arrays.append(a)
    for v, a in zip(variables, arrays):
        v.assign(a)


class KerasTensor:
    """The symbolic tensor returned by :func:`Input` (shape only)."""

    def __init__(self, shape: tuple[int | None, ...], layer: Layer) -> None:
        self.shape = tuple(shape)
        self._keras_history = layer
        self.dtype = "float32"

    def __repr__(self) -> str:
        return f"<KerasTensor shape={self.shape}, dtype=float32, name={self._keras_history.name}>"


@register(ragged=False, sparse=False, optional=False)
class InputLayer(Layer):
    """The input placeholder of a model (never listed in ``model.layers``)."""

    def __init__(
        self,
        shape: Any = None,
        batch_size: int | None = None,
        dtype: Any = None,
        sparse: bool | None = None,
        batch_shape: Any = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.pop("ragged", None)
        kwargs.pop("optional", None)
        kwargs.pop("input_tensor", None)
        if "input_shape" in kwargs and shape is None:
            shape = kwargs.pop("input_shape")
        if sparse:
            raise ValueError("kerox does not support sparse inputs.")
        super().__init__(
            name=name if name is not None else auto_name("InputLayer"), dtype=dtype, **kwargs
        )
        if batch_shape is not None:
            self.batch_shape = tuple(_shape_tuple(batch_shape, "batch_shape"))
        elif shape is not None:
            self.batch_shape = (batch_size, *_shape_tuple(shape, "shape"))
        else:
            raise ValueError("You must pass a `shape` argument.")
        self.build(self.batch_shape)
        self.output = KerasTensor(self.batch_shape, self)

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return None

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x

    def get_config(self) -> dict[str, Any]:
        return {
            "batch_shape": tuple(self.batch_shape),
            "dtype": "float32",
            "sparse": False,
            "ragged": False,
            "name": self.name,
            "optional": False,
        }


def Input(  # noqa: N802 (Keras's name)
    shape: Any = None,
    batch_size: int | None = None,
    dtype: Any = None,
    sparse: bool | None = None,
    batch_shape: Any = None,
    name: str | None = None,
    tensor: Any = None,
    optional: bool = False,
) -> KerasTensor:
    """Declares a model input of ``shape`` (without the batch dimension)."""
    layer = InputLayer(
        shape=shape,
        batch_size=batch_size,
        dtype=dtype,
        sparse=sparse,
        batch_shape=batch_shape,
        name=name,
    )
    return layer.output


def _activation_name(activation: Any) -> str:
    name = _activations.engine_name(activation)
    if name is None:
        raise ValueError(
            "kerox runs built-in activations only ("
            + ", ".join(_activations.SUPPORTED)
            + f"). Received: activation={activation!r}"
        )
    return name


def _no_extras(layer: str, **kwargs: Any) -> None:
    for k, v in kwargs.items():
        if v is not None:
            raise ValueError(f"kerox does not support `{k}` on {layer} yet. Received: {k}={v!r}")


def _layer_regularizer(identifier: Any, layer: str, variable: str) -> Any:
    """Resolves a ``<variable>_regularizer`` argument; refuses what the engine cannot run."""
    regularizer = _regularizers.get(identifier)
    if regularizer is not None:
        _regularizers.engine_factors(regularizer, f"{layer} `{variable}_regularizer`")
    return regularizer


def _feature_dim(layer: Layer, input_shape: tuple[int | None, ...]) -> int:
    if len(input_shape) != 2 or input_shape[-1] is None:
        raise ValueError(
            f"Layer '{layer.name}' ({type(layer).__name__}) expects 2-D inputs of shape "
            f"(batch, features) in kerox; received input_shape={input_shape}. Add a "
            "`Flatten()` layer first for images."
        )
    return int(input_shape[-1])


@register(quantization_config=None, lora_enabled=False)
class Dense(Layer):
    """Densely connected layer: ``activation(inputs @ kernel + bias)``, kernel ``(in, units)``."""

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        kernel_constraint: Any = None,
        bias_constraint: Any = None,
        lora_rank: int | None = None,
        lora_alpha: float | None = None,
        quantization_config: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(
                "Received an invalid value for `units`, expected a positive integer. "
                f"Received: units={units}"
            )
        self.units = units
        self.activation = _activations.get(activation)
        self._activation_name = _activation_name(self.activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = _initializers.get(kernel_initializer)
        self.bias_initializer = _initializers.get(bias_initializer)
        self.kernel_regularizer = _layer_regularizer(kernel_regularizer, "Dense", "kernel")
        self.bias_regularizer = _layer_regularizer(bias_regularizer, "Dense", "bias")
        _no_extras(
            "Dense",
            kernel_constraint=kernel_constraint,
            bias_constraint=bias_constraint,
            lora_rank=lora_rank,
            quantization_config=quantization_config,
        )
        self.kernel: Variable | None = None
        self.bias: Variable | None = None

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        d = _feature_dim(self, input_shape)
        self._weights = []
        self.kernel = self._add_weight(
            (d, self.units),
            self.kernel_initializer,
            "kernel",
            True,
            regularizer=self.kernel_regularizer,
        )
        self.bias = (
            self._add_weight(
                (self.units,),
                self.bias_initializer,
                "bias",
                True,
                regularizer=self.bias_regularizer,
            )
            if self.use_bias
            else None
        )
        super().build(input_shape)

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.units)

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return {
            "kind": "dense",
            "units": self.units,
            "activation": self._activation_name,
            "use_bias": self.use_bias,
            "trainable": self.trainable,
        }

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        assert self.kernel is not None
        y = x @ self.kernel.numpy()
        if self.bias is not None:
            y = y + self.bias.numpy()
        return np.asarray(self.activation(y.astype(np.float32)), dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "units": self.units,
                "activation": _activations.serialize(self.activation),
                "use_bias": self.use_bias,
                "kernel_initializer": _initializers.serialize(self.kernel_initializer),
                "bias_initializer": _initializers.serialize(self.bias_initializer),
                "kernel_regularizer": _regularizers.serialize(self.kernel_regularizer),
                "bias_regularizer": _regularizers.serialize(self.bias_regularizer),
                "kernel_constraint": None,
                "bias_constraint": None,
                "quantization_config": None,
            }
        )
        return cfg


@register()
class BatchNormalization(Layer):
    """Batch normalization (Keras 3): batch statistics in training, moving ones in inference.

    ``moving = moving·momentum + batch·(1 − momentum)`` with the biased batch variance. A frozen
    layer (``trainable=False``) always runs in inference mode, as in Keras 2.x/3.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: Any = "zeros",
        gamma_initializer: Any = "ones",
        moving_mean_initializer: Any = "zeros",
        moving_variance_initializer: Any = "ones",
        beta_regularizer: Any = None,
        gamma_regularizer: Any = None,
        beta_constraint: Any = None,
        gamma_constraint: Any = None,
        synchronized: bool = False,
        renorm: bool = False,
        renorm_clipping: Any = None,
        renorm_momentum: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.axis = int(axis)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.beta_initializer = _initializers.get(beta_initializer)
        self.gamma_initializer = _initializers.get(gamma_initializer)
        self.moving_mean_initializer = _initializers.get(moving_mean_initializer)
        self.moving_variance_initializer = _initializers.get(moving_variance_initializer)
        if synchronized:
            raise ValueError(
                "Argument synchronized=True is only supported with the TensorFlow backend."
            )
        if renorm:
            raise ValueError("kerox does not support `renorm=True` yet.")
        self.beta_regularizer = _layer_regularizer(beta_regularizer, "BatchNormalization", "beta")
        self.gamma_regularizer = _layer_regularizer(
            gamma_regularizer, "BatchNormalization", "gamma"
        )
        _no_extras(
            "BatchNormalization",
            beta_constraint=beta_constraint,
            gamma_constraint=gamma_constraint,
        )
        self.renorm_momentum = float(renorm_momentum)
        self.gamma = self.beta = self.moving_mean = self.moving_variance = None

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        d = _feature_dim(self, input_shape)
        if self.axis not in (-1, len(input_shape) - 1):
            raise ValueError(
                f"kerox normalizes the feature axis of 2-D inputs (axis=-1 or 1). "
                f"Received: axis={self.axis}"
            )
        self._weights = []
        shape = (d,)
        self.gamma = (
            self._add_weight(
                shape, self.gamma_initializer, "gamma", True, regularizer=self.gamma_regularizer
            )
            if self.scale
            else None
        )
        self.beta = (
            self._add_weight(
                shape, self.beta_initializer, "beta", True, regularizer=self.beta_regularizer
            )
            if self.center
            else None
        )
        self.moving_mean = self._add_weight(
            shape, self.moving_mean_initializer, "moving_mean", False
        )
        self.moving_variance = self._add_weight(
            shape, self.moving_variance_initializer, "moving_variance", False
        )
        super().build(input_shape)

    @property
    def weights(self) -> list[Variable]:
        # Keras keeps creation order: [gamma, beta, moving_mean, moving_variance].
        return list(self._weights)

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return {
            "kind": "batch_norm",
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "trainable": self.trainable,
        }

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        assert self.moving_mean is not None and self.moving_variance is not None
        if training and self.trainable:
            mean, var = x.mean(axis=0), x.var(axis=0)
        else:
            mean, var = self.moving_mean.numpy(), self.moving_variance.numpy()
        inv = 1.0 / np.sqrt(var + np.float32(self.epsilon))
        if self.gamma is not None:
            inv = inv * self.gamma.numpy()
        beta = self.beta.numpy() if self.beta is not None else 0.0
        return (x * inv + (beta - mean * inv)).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "axis": self.axis,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "beta_initializer": _initializers.serialize(self.beta_initializer),
                "gamma_initializer": _initializers.serialize(self.gamma_initializer),
                "moving_mean_initializer": _initializers.serialize(self.moving_mean_initializer),
                "moving_variance_initializer": _initializers.serialize(
                    self.moving_variance_initializer
                ),
                "beta_regularizer": _regularizers.serialize(self.beta_regularizer),
                "gamma_regularizer": _regularizers.serialize(self.gamma_regularizer),
                "beta_constraint": None,
                "gamma_constraint": None,
                "synchronized": False,
                "renorm": False,
                "renorm_clipping": None,
                "renorm_momentum": self.renorm_momentum,
            }
        )
        return cfg


@register()
class Activation(Layer):
    """Applies an activation function."""

    def __init__(self, activation: str | Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = _activations.get(activation)
        self._activation_name = _activation_name(self.activation)

    def build(self, input_shape: Any) -> None:
        _feature_dim(self, tuple(input_shape))
        super().build(input_shape)

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return {"kind": "activation", "activation": self._activation_name}

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        return np.asarray(self.activation(x), dtype=np.float32)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg["activation"] = _activations.serialize(self.activation)
        return cfg


@register(noise_shape=None)
class Dropout(Layer):
    """Inverted dropout: in training, zeroes a fraction ``rate`` and scales the rest by 1/(1−rate).

    The mask comes from a counter-based generator seeded by ``seed`` (or by
    ``keras.utils.set_random_seed``), so results do not depend on the thread count.
    """

    def __init__(
        self, rate: float, noise_shape: Any = None, seed: int | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate <= 1:
            raise ValueError(
                "Invalid value received for argument `rate`. Expected a float value between "
                f"0 and 1. Received: rate={rate}"
            )
        if noise_shape is not None:
            raise ValueError("kerox does not support `noise_shape` on Dropout yet.")
        from .. import _random

        self.rate = float(rate)
        self.noise_shape = None
        self.seed = seed
        self._seed = int(seed) if seed is not None else _random.draw_seed()

    def build(self, input_shape: Any) -> None:
        _feature_dim(self, tuple(input_shape))
        super().build(input_shape)

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return {"kind": "dropout", "rate": self.rate, "seed": self._seed % (1 << 64)}

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training or self.rate == 0:
            return x
        rng = np.random.default_rng(self._seed)
        keep = rng.random(x.shape) >= self.rate
        return np.where(keep, x / (1 - self.rate), 0).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"rate": self.rate, "seed": self.seed, "noise_shape": None})
        return cfg


@register()
class Flatten(Layer):
    """Flattens every sample to one dimension (``(N, 28, 28)`` → ``(N, 784)``); no copy."""

    def __init__(self, data_format: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_format = data_format or "channels_last"

    def compute_output_shape(self, input_shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
        rest = tuple(input_shape)[1:]
        if any(d is None for d in rest):
            return (input_shape[0], None)
        return (input_shape[0], int(math.prod(rest)))

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return None

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x.reshape(x.shape[0], -1)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg["data_format"] = self.data_format
        return cfg


def _first_of(element: Any) -> Any:
    """The inputs of a dataset element (``x`` of ``(x, y)``), as Keras's ``adapt`` takes them."""
    return element[0] if isinstance(element, tuple) else element


@register()
class Normalization(Layer):
    """Shifts and scales each feature by a mean and variance (Keras 3 ``Normalization``).

    ``(x − mean) / max(√variance, ε)``, or with ``invert=True`` ``mean + x·max(√variance, ε)``.
    The mean and variance come from :meth:`adapt`, from loaded weights, or from the ``mean``
    and ``variance`` arguments (then the layer has no weights). kerox normalizes the last axis
    of 2-D inputs (``axis=-1``, Keras's default) and refuses to train or predict with a layer
    that was never adapted, loaded or given its statistics (Keras would silently use 0 and 1).
    """

    def __init__(
        self,
        axis: int | Sequence[int] | None = -1,
        mean: Any = None,
        variance: Any = None,
        invert: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        axes = (axis,) if isinstance(axis, int) else tuple(axis) if axis is not None else ()
        if len(axes) != 1:
            raise ValueError(
                "kerox normalizes each feature of 2-D inputs: `axis` must be -1 (or 1). "
                f"Received: axis={axis}"
            )
        self.axis = axes
        if (mean is None) != (variance is None):
            raise ValueError(
                "When setting values directly, both `mean` and `variance` must be set. "
                f"Received: mean={mean} and variance={variance}"
            )
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self._constants: tuple[np.ndarray, np.ndarray] | None = None
        if mean is not None:
            m = np.asarray(mean, dtype=np.float32)
            v = np.asarray(variance, dtype=np.float32)
            if m.shape != v.shape:
                raise ValueError(
                    "When setting values directly, `mean` and `variance` must have the same "
                    f"shape. Received: mean shape {m.shape} and variance shape {v.shape}"
                )
            if m.ndim > 1:
                raise ValueError(
                    "The rank of `mean` must be less than or equal to the number of axes (1). "
                    f"Received: mean shape {m.shape} for axis {self.axis}"
                )
            if not (np.isfinite(m).all() and np.isfinite(v).all() and (v >= 0).all()):
                raise ValueError(
                    "`mean` must be finite and `variance` finite and non-negative. "
                    f"Received: mean={mean}, variance={variance}"
                )
            self._constants = (m.reshape(-1), v.reshape(-1))
        self._ready = mean is not None
        self.adapt_mean = self.adapt_variance = self.count = None

    def build(self, input_shape: Any) -> None:
        input_shape = tuple(input_shape)
        d = _feature_dim(self, input_shape)
        if self.axis[0] not in (-1, len(input_shape) - 1):
            raise ValueError(
                "kerox normalizes each feature of 2-D inputs: `axis` must be -1 (or 1). "
                f"Received: axis={self.axis}"
            )
        if self._constants is not None:
            if self._constants[0].size not in (1, d):
                raise ValueError(
                    f"`mean` and `variance` must hold one value or one per feature ({d}); "
                    f"received {self._constants[0].size} values."
                )
        else:
            self._weights = []
            self.adapt_mean = self._add_weight((d,), "zeros", "mean", False)
            self.adapt_variance = self._add_weight((d,), "ones", "variance", False)
            # Keras keeps an integer `count` for old files; it is never updated.
            self.count = self._add_weight((), "zeros", "count", False, dtype="int32")
        super().build(input_shape)

    def _variable_assigned(self, variable: Variable) -> None:
        if variable is self.adapt_mean or variable is self.adapt_variance:
            self._ready = True

    def adapt(self, data: Any) -> None:
        """Computes each feature's mean and variance over ``data``: an array, or a dataset,
        ``PyDataset`` or iterable of batches (Keras 3 ``adapt``)."""
        if isinstance(data, np.ndarray) or (
            hasattr(data, "__array__") and not hasattr(data, "__iter__")
        ):
            x = np.asarray(data)
            self._check_adapt_data(x)
            mean, var = np.mean(x, axis=0), np.var(x, axis=0)
        else:
            mean, var = self._adapt_batches(data)
        assert self.adapt_mean is not None and self.adapt_variance is not None
        self.adapt_mean.assign(mean)
        self.adapt_variance.assign(var)

    def _check_adapt_data(self, x: np.ndarray) -> None:
        if x.dtype.kind not in "fiub":
            raise TypeError(f"adapt() expects numeric data; received dtype {x.dtype}.")
        if x.ndim != 2:
            raise ValueError(
                f"adapt() expects 2-D data (samples, features); received shape {x.shape}."
            )
        if x.shape[0] == 0:
            raise ValueError("adapt() received no samples: the mean and variance are undefined.")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise ValueError(
                "adapt() received data holding NaN or infinite values; the mean and variance "
                "would be NaN. Clean the data (or impute) before adapting."
            )
        if self._constants is not None:
            raise ValueError(
                "This Normalization layer was given `mean` and `variance`; it has nothing to adapt."
            )
        if not self.built:
            self.build((None, *x.shape[1:]))
        elif x.shape[1] != self.adapt_mean.shape[0]:  # type: ignore[union-attr]
            raise ValueError(
                f"The layer was built with input_shape={self._build_shape}, but adapt() is "
                f"being called with data with an incompatible shape, data.shape={x.shape}"
            )

    def _adapt_batches(self, data: Any) -> tuple[np.ndarray, np.ndarray]:
        """Keras's running combination of per-batch means and variances, in float32."""
        is_py_dataset = all(hasattr(data, a) for a in ("__getitem__", "__len__", "on_epoch_end"))
        if is_py_dataset:
            batches: Any = (data[i] for i in range(len(data)))
        elif hasattr(data, "__iter__"):
            batches = iter(data)
        else:
            raise TypeError(
                f"Unsupported data type: {type(data)}. `adapt` supports `np.ndarray`, "
                "datasets, `keras.utils.PyDataset`, and iterables of batches."
            )
        total_mean = total_var = None
        total_count = 0
        for element in batches:
            batch = np.asarray(_first_of(element), dtype=np.float32)
            if batch.ndim == 1:
                batch = batch.reshape(1, -1)
            self._check_adapt_data(batch)
            batch_mean = np.mean(batch, axis=0, dtype=np.float32)
            batch_var = np.var(batch, axis=0, dtype=np.float32)
            if total_mean is None:
                total_mean = np.zeros_like(batch_mean)
                total_var = np.zeros_like(batch_var)
            total_count += batch.shape[0]
            batch_weight = np.float32(batch.shape[0] / total_count)
            existing_weight = np.float32(1.0) - batch_weight
            new_mean = total_mean * existing_weight + batch_mean * batch_weight
            total_var = (total_var + (total_mean - new_mean) ** 2) * existing_weight + (
                batch_var + (batch_mean - new_mean) ** 2
            ) * batch_weight
            total_mean = new_mean
        if total_mean is None or total_var is None:
            raise ValueError(
                "adapt() received an empty iterable (no batches). Expected at least one batch."
            )
        return total_mean, total_var

    def _statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self._constants is not None:
            return self._constants
        if not self._ready:
            raise ValueError(
                f"Normalization layer '{self.name}' has not been adapted: call "
                "`layer.adapt(data)` (or pass `mean` and `variance`, or load weights) before "
                "training or predicting; Keras would silently use mean 0 and variance 1."
            )
        assert self.adapt_mean is not None and self.adapt_variance is not None
        return self.adapt_mean.numpy(), self.adapt_variance.numpy()

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        self._statistics()  # refuses a layer that was never adapted
        constants = self._constants
        return {
            "kind": "normalization",
            "invert": self.invert,
            "mean": None if constants is None else constants[0].tolist(),
            "variance": None if constants is None else constants[1].tolist(),
        }

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        mean, var = self._statistics()
        den = np.maximum(np.sqrt(var), np.float32(1e-7))
        if self.invert:
            return (mean + x * den).astype(np.float32)
        return ((x - mean) / den).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "axis": self.axis,
                "invert": self.invert,
                "mean": None if self.input_mean is None else np.array(self.input_mean).tolist(),
                "variance": (
                    None if self.input_variance is None else np.array(self.input_variance).tolist()
                ),
            }
        )
        return cfg


@register()
class Rescaling(Layer):
    """``x·scale + offset`` with scalar ``scale`` and ``offset`` (Keras 3 ``Rescaling``), e.g.
    ``Rescaling(1/255)`` for pixels. kerox takes scalars (Keras also broadcasts arrays)."""

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for name, v in (("scale", scale), ("offset", offset)):
            if np.ndim(v) != 0 or isinstance(v, bool) or not np.isfinite(float(v)):
                raise ValueError(
                    f"kerox's Rescaling takes a finite scalar `{name}`. Received: {name}={v!r}"
                )
        self.scale = scale
        self.offset = offset

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return {"kind": "rescaling", "scale": float(self.scale), "offset": float(self.offset)}

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        return (x * np.float32(self.scale) + np.float32(self.offset)).astype(np.float32)

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"scale": self.scale, "offset": self.offset})
        return cfg


@register()
class Identity(Layer):
    """Returns its input unchanged (Keras 3 ``Identity``), a placeholder."""

    def _engine_spec(self, input_shape: tuple[int | None, ...]) -> dict[str, Any] | None:
        return None

    def _numpy_call(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x
