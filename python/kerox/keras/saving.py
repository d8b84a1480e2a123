"""Saving and loading in Keras's own formats (`keras.saving`).

- ``.keras``: Keras 3's zip archive (``metadata.json``, ``config.json``, ``model.weights.h5``).
- ``.weights.h5``: Keras 3's weights layout (``layers/<class>[_n]/vars/<i>``, ``optimizer/vars``).
- ``.h5``/``.hdf5``: the legacy Keras 2 layout (``model_weights``, ``layer_names``,
  ``weight_names``), read and written.

Loading never executes anything from a file: configurations are plain JSON mapped onto an
allow-list of kerox classes, arrays are read with h5py and checked against the expected shapes,
and every problem becomes a ValueError naming the part of the file that is wrong. Every save
goes through a temporary file beside the target that is renamed into place.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from .._atomic import atomic_path, fspath

if TYPE_CHECKING:
    import zipfile

from . import initializers as initializers_module
from . import layers as layers_module
from . import losses as losses_module
from . import metrics as metrics_module
from . import optimizers as optimizers_module
from .layers import (
    Layer,
    _snake_case,
    skip_initializers,
)

__all__ = [
    "SavedModelError",
    "deserialize_keras_object",
    "load_model",
    "load_weights",
    "model_from_json",
    "save_model",
    "save_weights",
    "serialize_keras_object",
]

# The Keras version whose file formats kerox writes (recorded in `metadata.json`).
KERAS_FORMAT_VERSION = "3.15.1"

_CONFIG = "config.json"
_METADATA = "metadata.json"
_WEIGHTS = "model.weights.h5"
# Refuse archive members bigger than this before reading them (a zip bomb guard).
_MAX_MEMBER_BYTES = 1 << 34

# Loadable layers and their inert config keys: registered next to each class (`layers.py`).
_LAYER_CLASSES = layers_module.LAYER_CLASSES
_INERT_LAYER_KEYS = layers_module.INERT_CONFIG


class SavedModelError(ValueError):
    """A saved file or configuration that kerox cannot load (a ``ValueError``); the message
    names the part that is wrong: archive member, layer, variable path or config key."""


_Bad = SavedModelError


# ----------------------------------------------------------------------------------------------
# Serialization of objects
# ----------------------------------------------------------------------------------------------
def serialize_keras_object(obj: Any) -> Any:
    """Keras 3's ``{"module", "class_name", "config", "registered_name"}`` form of a kerox
    layer, model, optimizer, loss, metric or initializer (strings and None pass through)."""
    if obj is None or isinstance(obj, (str, int, float, bool)):
        return obj
    from .models import Sequential

    if isinstance(obj, Sequential):
        out = {
            "module": "keras",
            "class_name": "Sequential",
            "config": obj.get_config(),
            "registered_name": None,
        }
        if obj.built and obj._build_shape is not None:
            out["build_config"] = {"input_shape": list(obj._build_shape)}
        # Keras writes `{}` for a model that was never compiled.
        out["compile_config"] = _compile_config(obj) if obj.compiled else {}
        return out
    for base, module in (
        (Layer, "keras.layers"),
        (optimizers_module.Optimizer, "keras.optimizers"),
        (losses_module.Loss, "keras.losses"),
        (metrics_module.Metric, "keras.metrics"),
    ):
        if isinstance(obj, base):
            return {
                "module": module,
                "class_name": type(obj).__name__,
                "config": obj.get_config(),
                "registered_name": None,
            }
    if isinstance(obj, initializers_module.Initializer):
        return initializers_module.serialize(obj)
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(o) for o in obj]
    raise TypeError(f"kerox cannot serialize {obj!r} (of type {type(obj).__name__}).")


def deserialize_keras_object(config: Any, custom_objects: Any = None, safe_mode: bool = True):
    """Rebuilds a layer, model, optimizer, loss or metric from its Keras 3 serialized form.

    Only kerox's built-in classes are known; ``custom_objects`` is refused (kerox runs
    built-in computations only), and nothing from the config is ever executed.
    """
    _no_custom_objects(custom_objects)
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise _Bad(
            f"Expected a dict with a 'class_name' string (Keras serialized object). "
            f"Received: {_short(config)}"
        )
    name = config["class_name"]
    if name in ("Sequential", "Functional", "Model"):
        return _model_from_serialized(config, where="config")
    if name in _LAYER_CLASSES:
        return _layer_from_serialized(config, where="config")
    if name.split(">")[-1] in optimizers_module._CLASSES:
        return _optimizer_from_config(config, where="config")
    if name in losses_module._CLASSES:
        return _loss_from_config(config, where="config")
    raise _Bad(f"config: unknown class '{name}'; kerox can load {_known_classes()}.")


def _no_custom_objects(custom_objects: Any) -> None:
    if custom_objects:
        raise ValueError(
            "kerox loads built-in Keras classes only; `custom_objects` is not supported. "
            f"Received: custom_objects={_short(custom_objects)}"
        )


def _known_classes() -> str:
    return ", ".join(["Sequential", *_LAYER_CLASSES])


def _short(obj: Any, limit: int = 200) -> str:
    text = repr(obj)
    return text if len(text) <= limit else text[:limit] + "..."


def _compile_config(model: Any) -> dict[str, Any]:
    cc = model._compile_config
    loss = cc.get("loss")
    if not isinstance(loss, str):
        loss = serialize_keras_object(model._compiled_loss)

    def ser(ms: Any) -> Any:
        return (
            None
            if ms is None
            else [m if isinstance(m, str) else serialize_keras_object(m) for m in ms]
        )

    metrics = ser(cc.get("metrics"))
    weighted = ser(cc.get("weighted_metrics"))
    return {
        "optimizer": serialize_keras_object(model.optimizer),
        "loss": loss,
        "loss_weights": None,
        "metrics": metrics,
        "weighted_metrics": weighted,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": True,
    }


# ----------------------------------------------------------------------------------------------
# Deserialization (allow-listed, schema-checked)
# ----------------------------------------------------------------------------------------------
def _expect_dict(obj: Any, where: str) -> dict[str, Any]:
    if not isinstance(obj, dict):
        raise _Bad(f"{where}: expected a JSON object, found {type(obj).__name__}.")
    return obj


def _shape_list(obj: Any, where: str) -> tuple[int | None, ...]:
    if not isinstance(obj, (list, tuple)) or not all(
        d is None or (isinstance(d, int) and not isinstance(d, bool) and d > 0) for d in obj
    ):
        raise _Bad(f"{where}: expected a shape (list of positive ints or null), found {obj!r}.")
    return tuple(obj)


def _k2_layer_config(class_name: str, cfg: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Translates Keras 2 spellings (``batch_input_shape``, string dtype, list ``axis``)."""
    cfg = dict(cfg)
    input_shape = cfg.pop("batch_input_shape", None)
    if class_name == "InputLayer":
        if input_shape is not None and "batch_shape" not in cfg:
            cfg["batch_shape"] = input_shape
        input_shape = None
    for key in ("activity_regularizer",):
        if cfg.get(key) is None:
            cfg.pop(key, None)
    if class_name == "BatchNormalization" and isinstance(cfg.get("axis"), list):
        axis = cfg["axis"]
        cfg["axis"] = axis[0] if len(axis) == 1 else axis
    return cfg, input_shape


def _layer_from_serialized(entry: Any, where: str) -> tuple[Layer, Any]:
    entry = _expect_dict(entry, where)
    name = entry.get("class_name")
    if not isinstance(name, str):
        raise _Bad(f"{where}: missing 'class_name'.")
    module = entry.get("module")
    if module not in (None, "keras.layers", "keras", "keras.src.layers"):
        raise _Bad(f"{where}: refusing class '{name}' from module {module!r}.")
    cls = _LAYER_CLASSES.get(name)
    if cls is None:
        raise _Bad(
            f"{where}: unknown layer class '{name}'. kerox can load "
            + ", ".join(_LAYER_CLASSES)
            + " (no custom or Lambda layers)."
        )
    cfg = _expect_dict(entry.get("config", {}), f"{where} ({name}) config")
    cfg, k2_input_shape = _k2_layer_config(name, cfg)
    for key in ("batch_shape", "shape"):
        if name == "InputLayer" and cfg.get(key) is not None:
            _shape_list(cfg[key], f"{where} ({name}) {key}")
    for key, default in _INERT_LAYER_KEYS.get(name, {}).items():
        if key in cfg:
            if cfg[key] != default:
                raise _Bad(f"{where} ({name}): kerox does not support {key}={cfg[key]!r}.")
            del cfg[key]
    dtype = cfg.pop("dtype", None)
    if isinstance(dtype, dict):
        inner = dtype.get("config")
        dtype = inner.get("name") if isinstance(inner, dict) else inner
    if dtype not in (None, "float32"):
        raise _Bad(f"{where} ({name}): kerox computes in float32; found dtype={dtype!r}.")
    try:
        layer = cls(**cfg)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        raise _Bad(f"{where} ({name} '{cfg.get('name', '?')}'): {e}") from None
    build = entry.get("build_config")
    build_shape = None
    if build is not None:
        build = _expect_dict(build, f"{where} build_config")
        if "input_shape" in build and build["input_shape"] is not None:
            build_shape = _shape_list(build["input_shape"], f"{where} build_config.input_shape")
    if k2_input_shape is not None:
        build_shape = _shape_list(k2_input_shape, f"{where} batch_input_shape")
        layer._input_shape_arg = build_shape
    return layer, build_shape


def _model_from_serialized(entry: Any, where: str, compile_: bool = False) -> Any:
    entry = _expect_dict(entry, where)
    name = entry.get("class_name")
    if name != "Sequential":
        raise _Bad(
            f"{where}: kerox loads Sequential models only; found class_name={name!r}"
            + (" (functional models are not supported yet)." if name else ".")
        )
    module = entry.get("module")
    if module not in (None, "keras", "keras.models", "keras.src.models"):
        raise _Bad(f"{where}: refusing class 'Sequential' from module {module!r}.")
    config = _expect_dict(entry.get("config"), f"{where} config")
    model = _sequential_from_inner(config, where)
    build = entry.get("build_config")
    if build is not None and not model.built:
        build = _expect_dict(build, f"{where} build_config")
        shape = build.get("input_shape")
        if shape is not None:
            _build(model, _shape_list(shape, f"{where} build_config.input_shape"), where)
    if compile_ and entry.get("compile_config"):
        _compile_from_config(model, entry["compile_config"], f"{where} compile_config")
    return model


def _build(model: Any, shape: tuple[int | None, ...], where: str) -> None:
    try:
        model.build(shape)
    except (TypeError, ValueError, AttributeError) as e:
        raise _Bad(f"{where}: the model cannot be built for input shape {shape}: {e}") from None


def _sequential_from_inner(config: Any, where: str) -> Any:
    from .models import Sequential

    config = _expect_dict(config, where)
    layers = config.get("layers")
    if not isinstance(layers, list):
        raise _Bad(f"{where}: 'layers' must be a list, found {type(layers).__name__}.")
    name = config.get("name")
    if name is not None and not isinstance(name, str):
        raise _Bad(f"{where}: 'name' must be a string, found {name!r}.")
    trainable = config.get("trainable", True)
    if not isinstance(trainable, bool):
        raise _Bad(f"{where}: 'trainable' must be true or false, found {trainable!r}.")
    model = Sequential(name=name, trainable=trainable)
    first_shape = None
    for i, entry in enumerate(layers):
        layer, shape = _layer_from_serialized(entry, f"{where} layers[{i}]")
        if i == 0 and shape is not None:
            first_shape = shape
        try:
            model.add(layer, rebuild=False)
        except (TypeError, ValueError) as e:
            raise _Bad(f"{where} layers[{i}]: {e}") from None
    build_shape = config.get("build_input_shape")
    try:
        if build_shape is not None:
            _build(model, _shape_list(build_shape, f"{where} build_input_shape"), where)
        elif model._input_layer is not None and model._layers:
            model._maybe_build()
        elif first_shape is not None and model._layers:
            _build(model, first_shape, where)
    except _Bad:
        raise
    except (TypeError, ValueError) as e:
        raise _Bad(f"{where}: {e}") from None
    return model


def sequential_from_config(config: Any, custom_objects: Any = None) -> Any:
    """``Sequential.from_config``: accepts ``model.get_config()`` output (or the full
    serialized dict with ``class_name``)."""
    _no_custom_objects(custom_objects)
    if isinstance(config, dict) and "class_name" in config and "layers" not in config:
        return _model_from_serialized(config, where="config")
    return _sequential_from_inner(config, where="config")


def _optimizer_from_config(entry: Any, where: str) -> optimizers_module.Optimizer:
    if isinstance(entry, str):
        try:
            return optimizers_module.get(entry)
        except ValueError as e:
            raise _Bad(f"{where}: {e}") from None
    entry = _expect_dict(entry, where)
    name = entry.get("class_name")
    cls = optimizers_module._CLASSES.get(name.split(">")[-1]) if isinstance(name, str) else None
    if cls is None:
        raise _Bad(
            f"{where}: unknown or unsupported optimizer class {name!r}; kerox has "
            f"{', '.join(optimizers_module._CLASSES)}."
        )
    cfg = dict(_expect_dict(entry.get("config", {}), f"{where} config"))
    # Keras 2 keys with no effect in Keras 3.
    for key in ("jit_compile", "is_legacy_optimizer"):
        cfg.pop(key, None)
    lr = cfg.get("learning_rate", cfg.pop("lr", None))
    if lr is None:
        cfg.pop("learning_rate", None)
    elif isinstance(lr, dict):
        try:
            cfg["learning_rate"] = optimizers_module.schedules.deserialize(lr)
        except (TypeError, ValueError) as e:
            raise _Bad(f"{where} ({name} learning_rate): {e}") from None
    else:
        if isinstance(lr, int) and not isinstance(lr, bool):
            lr = float(lr)
        cfg["learning_rate"] = lr
    momentum = cfg.get("momentum")
    if isinstance(momentum, int) and not isinstance(momentum, bool):
        cfg["momentum"] = float(momentum)
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as e:
        raise _Bad(f"{where} ({name}): {e}") from None


def _from_registry(
    entry: Any,
    where: str,
    kind: str,
    resolve_name: Callable[[str], Any],
    classes: Callable[[str], Any],
    pop: tuple[str, ...] = (),
) -> Any:
    """A loss or metric from a name (kept as the string) or a ``{"class_name", "config"}``."""
    if isinstance(entry, str):
        try:
            resolve_name(entry)
        except ValueError as e:
            raise _Bad(f"{where}: {e}") from None
        return entry
    entry = _expect_dict(entry, where)
    name = entry.get("class_name")
    cls = classes(name) if isinstance(name, str) else None
    if cls is None:
        raise _Bad(f"{where}: unknown {kind} {name!r}.")
    cfg = dict(_expect_dict(entry.get("config", {}), f"{where} config"))
    for key in pop:
        value = cfg.pop(key, "sum_over_batch_size")
        if value not in ("sum_over_batch_size", "auto", None):
            raise _Bad(f"{where} ({name}): kerox supports {key}='sum_over_batch_size' only.")
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as e:
        raise _Bad(f"{where} ({name}): {e}") from None


def _loss_from_config(entry: Any, where: str) -> Any:
    return _from_registry(
        entry, where, "loss", losses_module.get, losses_module._CLASSES.get, ("reduction",)
    )


def _metric_from_config(entry: Any, where: str) -> Any:
    return _from_registry(
        entry,
        where,
        "metric",
        metrics_module.get,
        lambda name: metrics_module._BY_NAME.get(_snake_case(name)),
    )


def _compile_from_config(model: Any, cc: Any, where: str) -> None:
    cc = _expect_dict(cc, where)
    optimizer = _optimizer_from_config(cc.get("optimizer", "rmsprop"), f"{where} optimizer")
    loss = cc.get("loss")
    if loss is None:
        raise _Bad(f"{where}: no loss.")
    if isinstance(loss, list) and len(loss) == 1:
        loss = loss[0]
    loss = _loss_from_config(loss, f"{where} loss")
    lists: dict[str, Any] = {}
    for key in ("metrics", "weighted_metrics"):
        ms = cc.get(key)
        if ms is not None:
            if isinstance(ms, list) and len(ms) == 1 and isinstance(ms[0], list):
                ms = ms[0]  # Keras 2 nests metrics per output
            if not isinstance(ms, list):
                raise _Bad(f"{where}: '{key}' must be a list, found {_short(ms)}.")
            ms = [_metric_from_config(m, f"{where} {key}[{i}]") for i, m in enumerate(ms)]
        lists[key] = ms
    if cc.get("loss_weights"):
        raise _Bad(f"{where}: kerox does not support loss_weights={cc['loss_weights']!r}.")
    try:
        model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=lists["metrics"],
            weighted_metrics=lists["weighted_metrics"],
        )
    except (TypeError, ValueError) as e:
        raise _Bad(f"{where}: {e}") from None


# ----------------------------------------------------------------------------------------------
# Weights: Keras 3 layout
# ----------------------------------------------------------------------------------------------
def _h5py() -> Any:
    try:
        import h5py
    except ImportError as e:  # pragma: no cover - h5py is a dependency
        raise ImportError("Saving and loading weights needs h5py: `pip install h5py`.") from e
    return h5py


def _layer_paths(model: Any) -> Iterator[tuple[str, Layer]]:
    """Keras's container naming: snake_case class name with a per-model counter."""
    used: dict[str, int] = {}
    for layer in model.layers:
        name = _snake_case(type(layer).__name__)
        if name in used:
            used[name] += 1
            name = f"{name}_{used[name]}"
        else:
            used[name] = 0
        yield f"layers/{name}", layer


def _optimizer_state(model: Any) -> list[np.ndarray] | None:
    """The optimizer's variables in Keras's order (``optimizer/vars/<i>``)."""
    opt = model.optimizer
    if opt is None:
        return None
    return opt._state_values()


def _write_weights_h5(model: Any, f: Any) -> None:
    layers_group = f.create_group("layers")
    for path, layer in _layer_paths(model):
        g = layers_group.create_group(path.split("/", 1)[1]).create_group("vars")
        g.attrs["name"] = layer.name
        for i, v in enumerate(layer.weights):
            g.create_dataset(str(i), data=v.numpy())
    opt_state = _optimizer_state(model)
    if opt_state is not None:
        g = f.create_group("optimizer").create_group("vars")
        g.attrs["name"] = model.optimizer.name
        for i, a in enumerate(opt_state):
            g.create_dataset(str(i), data=a)
    f.create_group("vars").attrs["name"] = model.name


def _mismatch(msg: str, skip_mismatch: bool) -> None:
    """A structural mismatch: a warning (the item is skipped) or a ValueError."""
    if not skip_mismatch:
        raise _Bad(msg)
    warnings.warn(msg + " Skipped (skip_mismatch=True).", stacklevel=4)


def _datasets(group: Any, where: str) -> list[Any]:
    """The datasets ``"0"``, ``"1"``, ... of a ``vars`` group, in order."""
    h5py = _h5py()
    keys = list(group.keys())
    try:
        idx = sorted(int(k) for k in keys)
    except ValueError:
        raise _Bad(f"{where}: unexpected entries {keys[:5]} (expected '0', '1', ...).") from None
    if idx != list(range(len(idx))):
        raise _Bad(f"{where}: variable indices {idx} are not 0..{len(idx) - 1}.")
    out = []
    for i in idx:
        item = _child(group, str(i), f"{where}/{i}")
        if not isinstance(item, h5py.Dataset):
            raise _Bad(f"{where}/{i}: expected a dataset, found a group.")
        out.append(item)
    return out


def _child(group: Any, name: str, where: str) -> Any:
    """``group[name]`` (or None), refusing links that lead out of the file."""
    h5py = _h5py()
    link = group.get(name, getlink=True)
    if link is None:
        return None
    if isinstance(link, h5py.ExternalLink):
        raise _Bad(f"{where}: refusing an external link to another file ({link.filename}).")
    item = group.get(name)
    if item is None:
        raise _Bad(f"{where}: dangling link.")
    if item.file != group.file:
        raise _Bad(f"{where}: refusing an object stored in another file.")
    return item


def _read_array(ds: Any, where: str, shape: tuple[int, ...] | None) -> np.ndarray:
    if ds.dtype.kind not in "fiub" or ds.dtype.itemsize > 8:
        raise _Bad(f"{where}: expected numeric data, found dtype {ds.dtype}.")
    if shape is not None and tuple(ds.shape) != tuple(shape):
        raise _Bad(
            f"{where}: shape mismatch: the model expects {tuple(shape)}, "
            f"the file has {tuple(ds.shape)}."
        )
    try:
        return np.asarray(ds[()])
    except (OSError, RuntimeError, ValueError, KeyError) as e:
        raise _Bad(f"{where}: cannot read the data ({e}).") from None


def _read_weights_h5(
    model: Any, f: Any, where: str, skip_mismatch: bool, strict_optimizer: bool = False
) -> None:
    h5py = _h5py()
    assignments: list[tuple[Any, np.ndarray]] = []
    layers_group = _child(f, "layers", f"{where}:layers")
    if layers_group is None and model.layers:
        raise _Bad(f"{where}: no 'layers' group; this is not a Keras 3 weights file.")
    seen = set()
    for path, layer in _layer_paths(model):
        key = path.split("/", 1)[1]
        seen.add(key)
        variables = layer.weights
        g = _child(layers_group, key, f"{where}:{path}") if layers_group is not None else None
        if g is None or not isinstance(g, h5py.Group):
            if not variables:
                continue
            _mismatch(f"{where}: missing '{path}' for layer '{layer.name}'.", skip_mismatch)
            continue
        vg = _child(g, "vars", f"{where}:{path}/vars")
        datasets = _datasets(vg, f"{where}:{path}/vars") if isinstance(vg, h5py.Group) else []
        if len(datasets) != len(variables):
            _mismatch(
                f"{where}:{path}/vars: layer '{layer.name}' expects {len(variables)} variables "
                f"({[v.name for v in variables]}), the file has {len(datasets)}.",
                skip_mismatch,
            )
            continue
        for i, (v, ds) in enumerate(zip(variables, datasets)):
            vw = f"{where}:{path}/vars/{i}"
            if tuple(ds.shape) != tuple(v.shape) and skip_mismatch:
                _mismatch(f"{vw}: shape mismatch.", skip_mismatch)
                continue
            assignments.append((v, _read_array(ds, vw, v.shape)))
    if layers_group is not None and not skip_mismatch:
        extra = sorted(set(layers_group.keys()) - seen)
        if extra:
            raise _Bad(
                f"{where}: the file has weights for layers {extra} that this model does not "
                f"have (model layers: {sorted(seen)})."
            )
    opt_arrays = None
    og = _child(f, "optimizer", f"{where}:optimizer")
    ovars = _child(og, "vars", f"{where}:optimizer/vars") if isinstance(og, h5py.Group) else None
    if model.optimizer is not None and isinstance(ovars, h5py.Group):
        opt_arrays = [
            _read_array(ds, f"{where}:optimizer/vars/{i}", None)
            for i, ds in enumerate(_datasets(ovars, f"{where}:optimizer/vars"))
        ]
    opt_where = where + ":optimizer/vars"
    if opt_arrays is not None:
        # Checked before any weight is assigned, so a bad optimizer state changes nothing.
        _load_optimizer_state(model, opt_arrays, opt_where, strict_optimizer, dry_run=True)
    _warn_non_finite(assignments, where)
    for v, a in assignments:
        v.assign(a.astype(np.float32, copy=False))
    if opt_arrays is not None:
        _load_optimizer_state(model, opt_arrays, opt_where, strict_optimizer)


def _warn_non_finite(assignments: list[tuple[Any, np.ndarray]], where: str) -> None:
    bad = [v.path for v, a in assignments if a.dtype.kind == "f" and not np.isfinite(a).all()]
    if bad:
        warnings.warn(
            f"{where}: the weights {bad} contain NaN or infinity; the model's outputs will not "
            "be finite. The file may be damaged or saved from a diverged training run.",
            RuntimeWarning,
            stacklevel=4,
        )


def _load_optimizer_state(
    model: Any, arrays: list[np.ndarray], where: str, strict: bool = False, dry_run: bool = False
) -> None:
    """Restores the optimizer's variables. Variables that do not fit the optimizer (another
    optimizer's, or options that make other slots) are skipped with Keras's warning when
    loading weights into a compiled model; a model file whose own optimizer does not fit
    its state (``strict``) is damaged, and refused."""
    try:
        reason = model.optimizer._load_state(arrays, model.trainable_weights, where, dry_run)
    except ValueError as e:
        raise _Bad(str(e)) from None
    if reason is None or (dry_run and not strict):
        return
    if strict:
        raise _Bad(f"{where}: {reason} The file's optimizer state does not fit its optimizer.")
    warnings.warn(reason, stacklevel=4)


# ----------------------------------------------------------------------------------------------
# Public entry points
# ----------------------------------------------------------------------------------------------
def _ends(path: str, *suffixes: str) -> bool:
    return path.lower().endswith(suffixes)


def save_model(
    model: Any, filepath: Any, overwrite: bool = True, zipped: bool | None = None, **kwargs: Any
) -> None:
    """``model.save``: a ``.keras`` archive (or a legacy ``.h5``), written atomically."""
    path = fspath(filepath)
    if kwargs.pop("save_format", None) not in (None, "keras", "h5"):
        raise ValueError("The `save_format` argument is deprecated in Keras 3.")
    if kwargs:
        raise ValueError(f"Unrecognized keyword arguments: {sorted(kwargs)}")
    if _ends(path, ".h5", ".hdf5"):
        warnings.warn(
            "You are saving your model as an HDF5 file via `model.save()`. This file format "
            "is considered legacy. We recommend using instead the native Keras format, e.g. "
            "`model.save('my_model.keras')`.",
            stacklevel=3,
        )
        if not _may_write(path, overwrite):
            return
        _save_legacy_h5(model, path)
        return
    if not _ends(path, ".keras"):
        raise ValueError(
            "Invalid filepath extension for saving. Please add either a `.keras` extension "
            "for the native Keras format (recommended) or a `.h5` extension. Use "
            f"`model.export(filepath)` if you want to export an ONNX graph. Received: "
            f"filepath={path}."
        )
    if zipped is False:
        raise ValueError("kerox writes zipped `.keras` archives only (zipped=True).")
    if not _may_write(path, overwrite):
        return
    config = serialize_keras_object(model)
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    h5py = _h5py()
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        _write_weights_h5(model, f)
    import zipfile  # here, not at the top: `import kerox` need not load it

    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as z:
        z.writestr(_METADATA, json.dumps(metadata))
        z.writestr(_CONFIG, json.dumps(config))
        z.writestr(_WEIGHTS, buf.getbuffer())


def _may_write(path: str, overwrite: bool) -> bool:
    if overwrite or not os.path.exists(path):
        return True
    answer = input(f"[WARNING] {path} already exists - overwrite? [y/n] ")
    return answer.strip().lower().startswith("y")


def save_weights(
    model: Any, filepath: Any, overwrite: bool = True, max_shard_size: Any = None
) -> None:
    """``model.save_weights``: Keras 3's ``.weights.h5`` layout, written atomically."""
    path = fspath(filepath)
    if not _ends(path, ".weights.h5"):
        raise ValueError(f"The filename must end in `.weights.h5`. Received: filepath={path}")
    if max_shard_size is not None:
        raise ValueError("kerox does not write sharded weights (`max_shard_size`) yet.")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' has not been built yet, so it has no weights to save. "
            "Call it on data or call `build(input_shape)` first."
        )
    if not _may_write(path, overwrite):
        return
    h5py = _h5py()
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        _write_weights_h5(model, f)


def _open_h5(source: Any, where: str) -> Any:
    h5py = _h5py()
    try:
        return h5py.File(source, "r")
    except (OSError, ValueError, RuntimeError, KeyError, OverflowError) as e:
        raise _Bad(f"{where}: not a readable HDF5 file ({e}).") from None


def load_weights(model: Any, filepath: Any, skip_mismatch: bool = False, **kwargs: Any) -> None:
    """``model.load_weights`` for ``.weights.h5``, ``.keras`` and legacy ``.h5`` files."""
    path = fspath(filepath)
    by_name = kwargs.pop("by_name", False)
    if kwargs:
        raise ValueError(f"Invalid keyword arguments: {kwargs}")
    if not model.built:
        raise ValueError(
            f"Model '{model.name}' has not been built yet; build it (call it on data or "
            "`build(input_shape)`) before loading weights into it."
        )
    if _ends(path, ".h5", ".hdf5") and not _ends(path, ".weights.h5"):
        _exists(path)
        with _open_h5(path, os.path.basename(path)) as f:
            name = os.path.basename(path)

            def read() -> None:
                group = _child(f, "model_weights", f"{name}/model_weights") or f
                _read_legacy_weights(model, group, path, by_name, skip_mismatch)

            _h5_guard(read, name)
        return
    if by_name:
        raise ValueError(
            f"`by_name` only supports loading legacy '.h5' or '.hdf5' files. Received: {path}"
        )
    if _ends(path, ".weights.h5"):
        _exists(path)
        with _open_h5(path, os.path.basename(path)) as f:
            name = os.path.basename(path)
            _h5_guard(lambda: _read_weights_h5(model, f, name, skip_mismatch), name)
        return
    if _ends(path, ".keras"):
        _exists(path)
        with _open_zip(path) as z:
            data = _read_member(z, _WEIGHTS)
        with _open_h5(io.BytesIO(data), _WEIGHTS) as f:
            _h5_guard(lambda: _read_weights_h5(model, f, _WEIGHTS, skip_mismatch), _WEIGHTS)
        return
    raise ValueError(
        f"File format not supported: filepath={path}. Keras 3 only supports V3 `.keras` and "
        "`.weights.h5` files, or legacy V1/V2 `.h5` files."
    )


def _h5_guard(fn: Callable[[], Any], where: str) -> Any:
    """Runs a reader; h5py errors from a damaged file become ValueErrors naming the file."""
    try:
        return fn()
    except _Bad:
        raise
    except (OSError, RuntimeError, KeyError, TypeError, AttributeError, OverflowError) as e:
        raise _Bad(f"{where}: damaged HDF5 data ({type(e).__name__}: {e}).") from None


def _exists(path: str) -> None:
    if not os.path.exists(path):
        raise ValueError(
            f"File not found: filepath={path}. Please ensure the file is an accessible "
            "`.keras` zip file."
        )


def _open_zip(path: str) -> zipfile.ZipFile:
    import zipfile

    try:
        z = zipfile.ZipFile(path, "r")
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as e:
        raise _Bad(f"{os.path.basename(path)}: not a valid .keras (zip) archive ({e}).") from None
    return z


def _read_member(z: zipfile.ZipFile, member: str) -> bytes:
    try:
        info = z.getinfo(member)
    except KeyError:
        raise _Bad(f"The .keras archive has no '{member}' (found {z.namelist()[:10]}).") from None
    if info.file_size > _MAX_MEMBER_BYTES:
        raise _Bad(f"'{member}' in the .keras archive is implausibly large.")
    import zipfile

    try:
        return z.read(member)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError) as e:
        raise _Bad(f"'{member}' in the .keras archive is damaged ({e}).") from None
    except Exception as e:  # zlib.error and friends
        raise _Bad(f"'{member}' in the .keras archive is damaged ({e}).") from None


def _parse_json(data: bytes | str, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise _Bad(f"{where}: not valid JSON ({e}).") from None


def load_model(
    filepath: Any, custom_objects: Any = None, compile: bool = True, safe_mode: bool = True
) -> Any:
    """Opens a ``.keras`` archive (or a legacy ``.h5`` model file) saved by Keras or kerox.

    The model is rebuilt from its JSON config (built-in classes only), compiled from the saved
    compile config when ``compile=True``, and given its weights and optimizer state, so
    training continues exactly where it stopped.
    """
    _no_custom_objects(custom_objects)
    path = fspath(filepath)
    if _ends(path, ".keras"):
        _exists(path)
        with _open_zip(path) as z:
            config_bytes = _read_member(z, _CONFIG)
            weights = _read_member(z, _WEIGHTS)
            if _METADATA in z.namelist():
                _parse_json(_read_member(z, _METADATA), _METADATA)
        config = _parse_json(config_bytes, _CONFIG)
        model = _model_for_loading(lambda: _model_from_serialized(config, _CONFIG, compile))
        with _open_h5(io.BytesIO(weights), _WEIGHTS) as f:
            _h5_guard(lambda: _read_weights_h5(model, f, _WEIGHTS, False, True), _WEIGHTS)
        return model
    if _ends(path, ".h5", ".hdf5"):
        _exists(path)
        with _open_h5(path, os.path.basename(path)) as f:
            return _h5_guard(lambda: _load_legacy_model(f, path, compile), os.path.basename(path))
    if not os.path.exists(path):
        raise ValueError(
            f"File not found: filepath={path}. Please ensure the file is an accessible "
            "`.keras` zip file."
        )
    raise ValueError(
        f"File format not supported: filepath={path}. Keras 3 only supports V3 `.keras` files "
        "and legacy H5 format files (`.h5` extension). Note that the legacy SavedModel format "
        "is not supported by `load_model()` in Keras 3."
    )


def _model_for_loading(build: Callable[[], Any]) -> Any:
    """Builds the model a file describes, without running initializers (its weights come
    from the file next); a config too deep or too large for memory is a ValueError."""
    try:
        with skip_initializers():
            return build()
    except RecursionError:
        raise _Bad(f"{_CONFIG}: nested too deeply.") from None
    except (TypeError, AttributeError, KeyError, IndexError, OverflowError) as e:
        # A value of an unexpected JSON type somewhere the checks above do not look.
        raise _Bad(f"{_CONFIG}: malformed configuration ({type(e).__name__}: {e}).") from None
    except MemoryError as e:
        raise _Bad(
            f"{_CONFIG}: the model it declares does not fit in memory ({e}); the layer sizes "
            "in the config are implausible."
        ) from None


def model_to_json(model: Any, **kwargs: Any) -> str:
    """``model.to_json()``: the serialized model (config, build and compile config)."""
    return json.dumps(serialize_keras_object(model), **kwargs)


def model_from_json(json_string: str, custom_objects: Any = None) -> Any:
    """Rebuilds a model (fresh weights; compiled if the JSON has a compile config) from
    :func:`model_to_json` output."""
    _no_custom_objects(custom_objects)
    if not isinstance(json_string, (str, bytes)):
        raise TypeError(f"`json_string` must be a string. Received: {type(json_string).__name__}")
    config = _parse_json(json_string, "json_string")
    try:
        # Like Keras, a JSON with a compile config gives a compiled model.
        return _model_from_serialized(config, where="json_string", compile_=True)
    except RecursionError:
        raise _Bad("json_string: nested too deeply.") from None
    except (TypeError, AttributeError, KeyError, IndexError, OverflowError) as e:
        raise _Bad(f"json_string: malformed configuration ({type(e).__name__}: {e}).") from None


# ----------------------------------------------------------------------------------------------
# Legacy Keras 2 HDF5
# ----------------------------------------------------------------------------------------------
def _attr_strings(group: Any, key: str, where: str) -> list[str]:
    if key not in group.attrs:
        raise _Bad(f"{where}: missing the '{key}' attribute; not a Keras legacy weights file.")
    raw = group.attrs[key]
    try:
        return [x.decode("utf8") if isinstance(x, bytes) else str(x) for x in np.ravel(raw)]
    except (UnicodeDecodeError, TypeError) as e:
        raise _Bad(f"{where}: unreadable '{key}' attribute ({e}).") from None


def _legacy_layer_arrays(group: Any, name: str, where: str) -> list[Any]:
    g = _child(group, name, f"{where}/{name}")
    if g is None:
        raise _Bad(f"{where}: layer group '{name}' listed in layer_names is missing.")
    out = []
    for wn in _attr_strings(g, "weight_names", f"{where}/{name}"):
        ds = _child(g, wn, f"{where}/{name}/{wn}")
        if ds is None:
            raise _Bad(f"{where}/{name}: weight '{wn}' listed in weight_names is missing.")
        out.append((wn, ds))
    return out


def _read_legacy_weights(
    model: Any, group: Any, path: str, by_name: bool, skip_mismatch: bool
) -> None:
    where = os.path.basename(path)
    names = _attr_strings(group, "layer_names", where)
    saved = [(n, _legacy_layer_arrays(group, n, where)) for n in names]
    assignments: list[tuple[Any, np.ndarray]] = []
    if by_name:
        by = dict(saved)
        for layer in model.layers:
            if layer.name not in by:
                continue
            _legacy_assign(layer, by[layer.name], where, skip_mismatch, assignments)
    else:
        with_weights = [(n, a) for n, a in saved if a]
        layers = [la for la in model.layers if la.weights]
        if len(with_weights) != len(layers):
            raise _Bad(
                f"{where}: Layer count mismatch when loading weights from file. Model expected "
                f"{len(layers)} layers, found {len(with_weights)} saved layers."
            )
        for layer, (_, arrays) in zip(layers, with_weights):
            _legacy_assign(layer, arrays, where, skip_mismatch, assignments)
    _warn_non_finite(assignments, where)
    for v, a in assignments:
        v.assign(a.astype(np.float32, copy=False))


def _legacy_assign(
    layer: Layer, arrays: list[Any], where: str, skip_mismatch: bool, out: list[Any]
) -> None:
    """Pairs a layer's variables with the file's datasets (errors name the file's path)."""
    variables = layer.weights
    if len(arrays) != len(variables):
        _mismatch(
            f"{where}: layer '{layer.name}' expects {len(variables)} weights, the file has "
            f"{len(arrays)} ({[n for n, _ in arrays]}).",
            skip_mismatch,
        )
        return
    for v, (wn, ds) in zip(variables, arrays):
        if tuple(ds.shape) != tuple(v.shape) and skip_mismatch:
            _mismatch(f"{where}: '{wn}' shape mismatch.", skip_mismatch)
            continue
        # ds.name is the dataset's full path in the file, e.g. /model_weights/dense/.../kernel
        where_ds = f"{where}:{ds.name} (layer '{layer.name}')"
        out.append((v, _read_array(ds, where_ds, v.shape)))


def _load_legacy_model(f: Any, path: str, compile: bool) -> Any:
    where = os.path.basename(path)
    raw = f.attrs.get("model_config")
    if raw is None:
        raise _Bad(f"{where}: no model found in config file (no 'model_config' attribute).")
    if isinstance(raw, bytes):
        raw = raw.decode("utf8", errors="replace")
    config = _parse_json(raw, f"{where} model_config")
    model = _model_for_loading(lambda: _model_from_serialized(config, f"{where} model_config"))
    training = f.attrs.get("training_config")
    if compile and training is not None:
        if isinstance(training, bytes):
            training = training.decode("utf8", errors="replace")
        tc = _expect_dict(_parse_json(training, f"{where} training_config"), "training_config")
        cc = dict(tc)
        cc["optimizer"] = tc.get("optimizer_config")
        _compile_from_config(model, cc, f"{where} training_config")
    elif compile:
        warnings.warn(
            "No training configuration found in the save file, so the model was *not* "
            "compiled. Compile it manually.",
            stacklevel=3,
        )
    group = _child(f, "model_weights", f"{where}/model_weights") or f
    _read_legacy_weights(model, group, path, False, False)
    if compile and model.optimizer is not None and "optimizer_weights" in f:
        og = f["optimizer_weights"]
        names = _attr_strings(og, "weight_names", f"{where}/optimizer_weights")
        arrays = []
        for n in names:
            ds = _child(og, n, f"{where}/optimizer_weights/{n}")
            if ds is None:
                raise _Bad(f"{where}/optimizer_weights: '{n}' is missing.")
            arrays.append(_read_array(ds, f"{where}/optimizer_weights/{n}", None))
        has_lr = any(n.split("/")[-1].startswith("learning_rate") for n in names)
        opt = model.optimizer
        if not has_lr and arrays:  # Keras 2 has no learning-rate variable
            if len(opt._slot_names()) > 1 and len(arrays) > 1:
                # Keras 2 groups several slots by kind (all m, then all v), not per variable.
                warnings.warn(
                    f"{where}: the optimizer slots of a Keras 2 file are not restored for "
                    f"{type(opt).__name__} (they start from zero); the iteration count is.",
                    stacklevel=3,
                )
                arrays = arrays[:1]
            if opt._schedule is None:
                arrays.insert(1, np.float32(opt._learning_rate))
        _load_optimizer_state(model, arrays, f"{where}/optimizer_weights", strict=True)
    return model


def _save_legacy_h5(model: Any, path: str) -> None:
    h5py = _h5py()
    config = serialize_keras_object(model)
    legacy_config = _strip_modules({"class_name": config["class_name"], "config": config["config"]})
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs["backend"] = "kerox"
        f.attrs["keras_version"] = KERAS_FORMAT_VERSION
        f.attrs["model_config"] = json.dumps(legacy_config)
        if model.compiled:
            cc = _compile_config(model)
            tc = {k: v for k, v in cc.items() if k != "optimizer"}
            tc["optimizer_config"] = _strip_modules(cc["optimizer"])
            tc["loss"] = _strip_modules(tc["loss"])
            f.attrs["training_config"] = json.dumps(tc)
        g = f.create_group("model_weights")
        g.attrs["backend"] = "kerox"
        g.attrs["keras_version"] = KERAS_FORMAT_VERSION
        g.attrs["layer_names"] = np.array([la.name.encode("utf8") for la in model.layers])
        for layer in model.layers:
            lg = g.create_group(layer.name)
            names = [f"{model.name}/{layer.name}/{v.name}" for v in layer.weights]
            lg.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
            for n, v in zip(names, layer.weights):
                lg.create_dataset(n, data=v.numpy())
        g.create_group("top_level_model_weights").attrs["weight_names"] = np.array([], "S1")
        opt_state = _optimizer_state(model) if model.compiled else None
        if opt_state is not None:
            og = f.create_group("optimizer_weights")
            opt = model.optimizer
            names = opt._state_names(model.trainable_weights)[: len(opt_state)]
            og.attrs["weight_names"] = np.array([n.encode("utf8") for n in names])
            for n, a in zip(names, opt_state):
                og.create_dataset(n, data=a)


def _strip_modules(obj: Any) -> Any:
    """Keras's legacy H5 config has no ``module``/``registered_name`` keys on layers."""
    if isinstance(obj, dict):
        if "class_name" in obj and obj.get("module") in ("keras", "keras.layers"):
            return {
                k: _strip_modules(v)
                for k, v in obj.items()
                if k not in ("module", "registered_name", "build_config")
            }
        return {k: _strip_modules(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strip_modules(v) for v in obj]
    return obj
