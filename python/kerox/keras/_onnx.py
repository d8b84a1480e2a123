"""ONNX export of kerox ``Sequential`` models: ``model.export("m.onnx", format="onnx")``.

The exported graph is the model's inference forward pass (BatchNormalization uses its moving
statistics, Dropout is the identity), built directly with the ``onnx`` package
(``pip install "kerox[onnx]"``) from the model's current weights:

* one input ``"input"`` (float32, shape ``("batch", *model.input_shape[1:])``; the batch
  dimension is symbolic, so any batch size runs) and one output ``"output"`` (float32,
  ``("batch", *model.output_shape[1:])``);
* default opset :data:`DEFAULT_OPSET` (``opset_version=`` picks another, at least
  :data:`MIN_OPSET`); the IR version is the lowest one that opset needs, so older runtimes
  load the file too.

Layer mapping:

==========================  =================================================================
kerox layer                 ONNX
==========================  =================================================================
``InputLayer``              the graph input
``Flatten``                 ``Flatten(axis=1)`` (nothing when the input is already 2-D)
``Dense``                   ``Gemm`` (``C`` = bias, omitted when ``use_bias=False``), then
                            its activation
``Activation``              its activation
``Dropout``, ``Identity``    nothing (identity at inference)
``BatchNormalization``      folded into the preceding ``Dense`` when that ``Dense`` has a
                            linear activation (only identities such as Dropout in between);
                            otherwise ``Mul`` + ``Add`` with a precomputed per-feature scale
                            ``gamma / sqrt(moving_variance + epsilon)`` and shift
                            ``beta - moving_mean * scale`` (computed in float64, stored as
                            float32)
``Normalization``           ``Sub`` mean then ``Div`` by ``max(sqrt(variance), 1e-7)`` per
                            feature (computed in float32, as the engine does); with
                            ``invert=True`` ``Mul`` by that then ``Add`` mean
``Rescaling``               ``Mul`` by ``scale`` then ``Add`` ``offset``
==========================  =================================================================

Activations: linear -> nothing, relu -> ``Relu``, sigmoid -> ``Sigmoid``, tanh -> ``Tanh``,
softmax -> ``Softmax(axis=-1)``, elu -> ``Elu(alpha=1)``, selu -> ``Selu`` (Keras's alpha and
scale), softplus -> ``Softplus``, silu/swish -> ``x * Sigmoid(x)``, gelu (exact, Keras's
default ``approximate=False``) -> ``0.5 * x * (1 + Erf(x / sqrt(2)))``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import _atomic, _optional
from . import activations as _activations_module
from .layers import (
    Activation,
    BatchNormalization,
    Dense,
    Dropout,
    Flatten,
    Identity,
    InputLayer,
    Normalization,
    Rescaling,
)

__all__ = ["DEFAULT_OPSET", "INPUT_NAME", "MIN_OPSET", "OUTPUT_NAME", "export_onnx"]

#: Opset used unless ``opset_version=`` says otherwise.
DEFAULT_OPSET = 17
#: Lowest opset accepted (``Softmax`` normalizes only the last axis from opset 13 on).
MIN_OPSET = 13
#: Name of the graph input.
INPUT_NAME = "input"
#: Name of the graph output.
OUTPUT_NAME = "output"
#: Name of the symbolic batch dimension of the input and the output.
BATCH_DIM = "batch"

# SELU constants (Klambauer et al., 2017), as Keras 3 / JAX use them.
_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946

_ACTIVATIONS = _activations_module.SUPPORTED


# ----------------------------------------------------------------------------------------------
# The plan: the model's inference computation as a short list of steps (NumPy only)
# ----------------------------------------------------------------------------------------------
@dataclass
class _DenseStep:
    name: str
    kernel: np.ndarray  # float64, (in, units)
    bias: np.ndarray | None  # float64, (units,)
    activation: str
    folded: list[str] = field(default_factory=list)  # BatchNormalization layers folded in


@dataclass
class _AffineStep:
    name: str
    scale: np.ndarray  # float64, (features,)
    shift: np.ndarray  # float64, (features,)


@dataclass
class _NormalizationStep:
    name: str
    mean: np.ndarray  # float32, (features,)
    den: np.ndarray  # float32, (features,): max(sqrt(variance), epsilon)
    invert: bool


@dataclass
class _ActivationStep:
    name: str
    activation: str


@dataclass
class _FlattenStep:
    name: str


_Step = _DenseStep | _AffineStep | _NormalizationStep | _ActivationStep | _FlattenStep


def _activation_of(layer: Dense | Activation) -> str:
    from . import activations

    name = getattr(layer, "_activation_name", None) or activations.engine_name(layer.activation)
    if name not in _ACTIVATIONS:
        raise ValueError(
            f"Cannot export layer '{layer.name}' ({type(layer).__name__}) to ONNX: its "
            f"activation {layer.activation!r} is not one kerox can export "
            f"({', '.join(_ACTIVATIONS)})."
        )
    return name


def _bn_affine(layer: BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode BatchNormalization as ``x * scale + shift`` (float64)."""
    assert layer.moving_mean is not None and layer.moving_variance is not None
    mean = layer.moving_mean.numpy().astype(np.float64)
    var = layer.moving_variance.numpy().astype(np.float64)
    scale = 1.0 / np.sqrt(var + float(np.float32(layer.epsilon)))
    if layer.gamma is not None:
        scale = scale * layer.gamma.numpy().astype(np.float64)
    beta = layer.beta.numpy().astype(np.float64) if layer.beta is not None else 0.0
    return scale, beta - mean * scale


def _normalization_step(layer: Normalization, features: int | None) -> _NormalizationStep:
    """``Normalization``'s statistics as float32 vectors, as the engine uses them.

    Raises the layer's own ValueError (naming it) when it was never adapted, loaded or given
    its statistics.
    """
    mean, var = layer._statistics()
    shape = (int(features),) if features is not None else np.shape(mean)
    mean = np.broadcast_to(np.asarray(mean, np.float32).reshape(-1), shape)
    var = np.broadcast_to(np.asarray(var, np.float32).reshape(-1), shape)
    den = np.maximum(np.sqrt(var), np.float32(1e-7))
    return _NormalizationStep(layer.name, mean.astype(np.float32), den, bool(layer.invert))


def _plan(model: Any) -> tuple[tuple[int | None, ...], tuple[int | None, ...], list[_Step]]:
    """(input shape, output shape, steps) of ``model``'s inference forward pass.

    Raises:
        ValueError: unbuilt model, unknown input dimensions or an unsupported layer.
    """
    build_shape = getattr(model, "_build_shape", None)
    if not getattr(model, "built", False) or build_shape is None:
        raise ValueError(
            f"Model '{getattr(model, 'name', model)}' has not been built yet, so it cannot be "
            "exported to ONNX. Build it first: give it an `Input(shape)` layer, call "
            "`model.build(input_shape)`, or run it on data (fit/predict)."
        )
    input_shape = tuple(build_shape)
    if any(d is None for d in input_shape[1:]):
        raise ValueError(
            f"Cannot export model '{model.name}' to ONNX: its input shape {input_shape} has "
            "unknown dimensions besides the batch dimension."
        )
    steps: list[_Step] = []
    shape = input_shape
    for layer in model.layers:
        if isinstance(layer, InputLayer | Dropout | Identity):
            pass  # identity at inference
        elif isinstance(layer, Flatten):
            if len(shape) != 2:
                steps.append(_FlattenStep(layer.name))
        elif isinstance(layer, Dense):
            assert layer.kernel is not None
            bias = layer.bias.numpy().astype(np.float64) if layer.bias is not None else None
            steps.append(
                _DenseStep(
                    layer.name,
                    layer.kernel.numpy().astype(np.float64),
                    bias,
                    _activation_of(layer),
                )
            )
        elif isinstance(layer, BatchNormalization):
            scale, shift = _bn_affine(layer)
            last = steps[-1] if steps else None
            if isinstance(last, _DenseStep) and last.activation == "linear":
                # (x @ W + b) * s + t == x @ (W * s) + (b * s + t)
                last.kernel = last.kernel * scale[None, :]
                bias = last.bias if last.bias is not None else 0.0
                last.bias = bias * scale + shift
                last.folded.append(layer.name)
            else:
                steps.append(_AffineStep(layer.name, scale, shift))
        elif isinstance(layer, Normalization):
            steps.append(_normalization_step(layer, shape[-1]))
        elif isinstance(layer, Rescaling):
            # x·scale + offset is the inverted normalization's mean + x·den.
            n = int(shape[-1])
            offset = np.full(n, layer.offset, np.float32)
            steps.append(
                _NormalizationStep(layer.name, offset, np.full(n, layer.scale, np.float32), True)
            )
        elif isinstance(layer, Activation):
            act = _activation_of(layer)
            if act != "linear":
                steps.append(_ActivationStep(layer.name, act))
        else:
            raise ValueError(
                f"Cannot export layer '{layer.name}' of type {type(layer).__name__} to ONNX: "
                "kerox exports only InputLayer, Flatten, Dense, Activation, Dropout, "
                "Identity, BatchNormalization, Normalization and Rescaling layers."
            )
        shape = layer.compute_output_shape(shape)
    return input_shape, tuple(shape), steps


# ----------------------------------------------------------------------------------------------
# Arguments
# ----------------------------------------------------------------------------------------------
def _is_dim(d: Any) -> bool:
    return d is None or isinstance(d, int | np.integer) and not isinstance(d, bool)


def _signature_batch(input_signature: Any, input_shape: tuple[int | None, ...]) -> int | None:
    """Checks ``input_signature`` against the model; returns its fixed batch size (or None).

    Accepted: a shape (tuple/list of ints and ``None``, batch first), an object with ``.shape``
    (``keras.InputSpec``, ``KerasTensor``, ``jax.ShapeDtypeStruct``, an array...), or a
    list/tuple holding exactly one of those.
    """
    sig = input_signature
    if isinstance(sig, list | tuple) and not all(_is_dim(d) for d in sig):
        if len(sig) != 1:
            raise ValueError(
                "kerox models have one input; `input_signature` must describe exactly one "
                f"input. Received: input_signature={input_signature!r}"
            )
        sig = sig[0]
    if isinstance(sig, list | tuple):
        shape: Any = tuple(sig)
    else:
        shape = getattr(sig, "shape", None)
        dtype = getattr(sig, "dtype", None)
        if dtype is not None and str(np.dtype(str(dtype))) != "float32":
            raise ValueError(
                "kerox exports float32 graphs only; `input_signature` has dtype "
                f"{dtype}. Received: input_signature={input_signature!r}"
            )
    if shape is None or not all(_is_dim(d) for d in shape):
        raise ValueError(
            "`input_signature` must be a shape such as (None, 784), or an object with a "
            f"`.shape` (e.g. keras.InputSpec). Received: input_signature={input_signature!r}"
        )
    shape = tuple(None if d is None else int(d) for d in shape)
    if len(shape) != len(input_shape) or shape[1:] != tuple(input_shape[1:]):
        raise ValueError(
            f"`input_signature` shape {shape} does not match the model's input shape {input_shape}."
        )
    batch = shape[0]
    if batch is not None and batch <= 0:
        raise ValueError(f"The batch dimension of `input_signature` must be positive: {shape}")
    return batch


# ----------------------------------------------------------------------------------------------
# Graph construction
# ----------------------------------------------------------------------------------------------
class _GraphBuilder:
    """Collects nodes and initializers with unique names."""

    def __init__(self, helper: Any, numpy_helper: Any) -> None:
        self.helper = helper
        self.numpy_helper = numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._names: set[str] = {INPUT_NAME, OUTPUT_NAME}
        self._constants: dict[float, str] = {}

    def unique(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            name, i = f"{base}_{i}", i + 1
        self._names.add(name)
        return name

    def tensor(self, base: str, value: np.ndarray) -> str:
        name = self.unique(base)
        arr = np.ascontiguousarray(value, dtype=np.float32)
        self.initializers.append(self.numpy_helper.from_array(arr, name))
        return name

    def scalar(self, value: float) -> str:
        """A shared float32 scalar constant."""
        if value not in self._constants:
            self._constants[value] = self.tensor(f"const_{value:g}", np.array(value))
        return self._constants[value]

    def node(self, op: str, inputs: list[str], base: str, **attrs: Any) -> str:
        out = self.unique(f"{base}/{op}")
        self.nodes.append(self.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def activation(self, kind: str, x: str, base: str) -> str:
        if kind == "linear":
            return x
        simple = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh", "softplus": "Softplus"}
        if kind in simple:
            return self.node(simple[kind], [x], base)
        if kind == "softmax":
            return self.node("Softmax", [x], base, axis=-1)
        if kind == "elu":
            return self.node("Elu", [x], base, alpha=1.0)
        if kind == "selu":
            return self.node("Selu", [x], base, alpha=_SELU_ALPHA, gamma=_SELU_SCALE)
        if kind == "silu":
            sig = self.node("Sigmoid", [x], base)
            return self.node("Mul", [x, sig], base)
        if kind == "gelu":
            # Exact GELU: 0.5 * x * (1 + erf(x / sqrt(2))).
            z = self.node("Mul", [x, self.scalar(1.0 / math.sqrt(2.0))], base)
            erf = self.node("Erf", [z], base)
            cdf2 = self.node("Add", [erf, self.scalar(1.0)], base)
            half_x = self.node("Mul", [x, self.scalar(0.5)], base)
            return self.node("Mul", [half_x, cdf2], base)
        raise AssertionError(f"unhandled activation {kind}")  # _activation_of checked it


def _build_proto(
    model: Any,
    input_shape: tuple[int | None, ...],
    output_shape: tuple[int | None, ...],
    steps: list[_Step],
    batch: int | None,
    opset: int,
) -> Any:
    import onnx
    from onnx import helper, numpy_helper

    g = _GraphBuilder(helper, numpy_helper)
    x = INPUT_NAME
    for step in steps:
        if isinstance(step, _FlattenStep):
            x = g.node("Flatten", [x], step.name, axis=1)
        elif isinstance(step, _DenseStep):
            inputs = [x, g.tensor(f"{step.name}/kernel", step.kernel)]
            if step.bias is not None:
                inputs.append(g.tensor(f"{step.name}/bias", step.bias))
            x = g.node("Gemm", inputs, step.name)
            x = g.activation(step.activation, x, step.name)
        elif isinstance(step, _AffineStep):
            x = g.node("Mul", [x, g.tensor(f"{step.name}/scale", step.scale)], step.name)
            x = g.node("Add", [x, g.tensor(f"{step.name}/shift", step.shift)], step.name)
        elif isinstance(step, _NormalizationStep):
            mean = g.tensor(f"{step.name}/mean", step.mean)
            den = g.tensor(f"{step.name}/std", step.den)
            if step.invert:
                x = g.node("Mul", [x, den], step.name)
                x = g.node("Add", [mean, x], step.name)
            else:
                x = g.node("Sub", [x, mean], step.name)
                x = g.node("Div", [x, den], step.name)
        else:
            x = g.activation(step.activation, x, step.name)
    if g.nodes and x == g.nodes[-1].output[0]:
        g.nodes[-1].output[0] = OUTPUT_NAME  # the last node writes the graph output
    else:  # nothing but identities: the output is the input
        g.nodes.append(helper.make_node("Identity", [x], [OUTPUT_NAME], name="Identity"))

    batch_dim: int | str = BATCH_DIM if batch is None else batch
    graph = helper.make_graph(
        g.nodes,
        str(model.name),
        [
            helper.make_tensor_value_info(
                INPUT_NAME, onnx.TensorProto.FLOAT, [batch_dim, *input_shape[1:]]
            )
        ],
        [
            helper.make_tensor_value_info(
                OUTPUT_NAME, onnx.TensorProto.FLOAT, [batch_dim, *output_shape[1:]]
            )
        ],
        initializer=g.initializers,
    )
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(graph, opset_imports=opset_ids, producer_name="kerox")
    proto.ir_version = helper.find_min_ir_version_for(opset_ids)
    try:
        from .. import __version__

        proto.producer_version = str(__version__)
    except ImportError:  # pragma: no cover - partially initialized package
        pass
    proto.doc_string = f"kerox Sequential model '{model.name}' (inference forward pass)"
    folded = [f"{s.name}<-{','.join(s.folded)}" for s in steps if isinstance(s, _DenseStep)]
    folded = [f for f in folded if not f.endswith("<-")]
    if folded:
        helper.set_model_props(proto, {"kerox_folded_batch_norm": ";".join(folded)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(
    model: Any,
    filepath: Any,
    verbose: bool | None = None,
    input_signature: Any = None,
    **kwargs: Any,
) -> None:
    """Writes ``model``'s inference graph to ``filepath`` as an ONNX file (atomically).

    Args:
        model: A built kerox ``Sequential`` model.
        filepath: Destination (``str`` or path-like). A temporary file beside it is renamed
            into place once complete, so readers never see a partial file.
        verbose: Print ``Saved artifact at '<filepath>'.`` when done. ``None`` (the default)
            prints, as Keras 3's export does; ``False``/``0`` is silent.
        input_signature: Optional description of the input, for Keras compatibility: a shape
            ``(None, *model.input_shape[1:])`` or an object with such a ``.shape`` (and a
            float32 ``.dtype`` if any), or a one-element list of it. A ``None`` batch entry
            (the default when omitted) gives the symbolic ``"batch"`` dimension; an integer
            fixes the batch size.
        **kwargs: ``opset_version`` (int, default :data:`DEFAULT_OPSET`, at least
            :data:`MIN_OPSET`). Anything else is rejected.

    Raises:
        ValueError: the model is not built, contains a layer that cannot be exported, or an
            argument is invalid.
        ImportError: the ``onnx`` package is missing (``pip install "kerox[onnx]"``).
    """
    opset = kwargs.pop("opset_version", None)
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments for ONNX export: {sorted(kwargs)}")
    path = _atomic.fspath(filepath)
    input_shape, output_shape, steps = _plan(model)
    batch = None if input_signature is None else _signature_batch(input_signature, input_shape)

    onnx = _optional.require("onnx")
    max_opset = int(onnx.defs.onnx_opset_version())
    if opset is None:
        opset = min(DEFAULT_OPSET, max_opset)
    if isinstance(opset, bool) or not isinstance(opset, int | np.integer):
        raise ValueError(f"`opset_version` must be an integer. Received: {opset!r}")
    if not MIN_OPSET <= int(opset) <= max_opset:
        raise ValueError(
            f"`opset_version` must be between {MIN_OPSET} and {max_opset} (the newest opset "
            f"of the installed onnx {onnx.__version__}). Received: opset_version={opset}"
        )

    proto = _build_proto(model, input_shape, output_shape, steps, batch, int(opset))
    data = proto.SerializeToString()
    with _atomic.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    if verbose is None or verbose:
        print(f"Saved artifact at '{os.fspath(path)}'.")
