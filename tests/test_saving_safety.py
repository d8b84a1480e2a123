"""Safe loading and durable saving.

Loading never executes code from the file (no pickle, no lambdas, only known layer, loss,
optimizer and activation names — Keras's ``safe_mode`` spirit). Every malformed file raises a
``ValueError`` naming the failing part: the archive member (``config.json``, ``metadata.json``,
``model.weights.h5``), the object (a class, activation, loss or optimizer name) or the
variable path (``layers/dense/vars/0``, with both shapes for a shape mismatch); nothing crashes
or hangs the interpreter. Every save writes a temporary file beside the target and renames it
into place, so a failed or killed save leaves the previous complete file.

The valid starting point of every mutation is written by real Keras 3 (JAX backend):
Input(8) → Dense(16, relu) → BatchNormalization → Dense(3, softmax), compiled with SGD momentum
and fitted one step, saved as ``.keras``, ``.weights.h5`` and legacy ``.h5``
(keras-spec §8.1–§8.3).
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import os
import pickle
import queue
import random
import re
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from conftest import keras_or_skip
from kerox import _atomic

CONFIG = "config.json"
METADATA = "metadata.json"
WEIGHTS = "model.weights.h5"

IN_DIM = 8
X_PROBE = np.random.default_rng(7).standard_normal((5, IN_DIM)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# The reference files, written by real Keras
# ---------------------------------------------------------------------------------------------


@dataclass
class Ref:
    dir: Path
    keras_path: Path
    weights_path: Path
    legacy_path: Path
    members: dict[str, bytes]
    config: dict
    model_json: str
    weights: list[np.ndarray]
    pred: np.ndarray
    cache: dict = field(default_factory=dict)


@pytest.fixture(scope="session")
def ref(tmp_path_factory) -> Ref:
    keras = keras_or_skip()
    d = tmp_path_factory.mktemp("keras_ref")
    # Explicit names: the legacy .h5 layout is keyed by layer name, and Keras's automatic
    # names depend on how many layers earlier tests in this process created.
    model = keras.Sequential(
        [
            keras.Input((IN_DIM,)),
            keras.layers.Dense(16, activation="relu", name="dense"),
            keras.layers.BatchNormalization(name="batch_normalization"),
            keras.layers.Dense(3, activation="softmax", name="dense_1"),
        ],
        name="sequential",
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9, name="sgd"),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, IN_DIM)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    model.fit(x, y, batch_size=32, epochs=1, verbose=0)
    # Before the legacy .h5 save: that one drops the optimizer from Keras's compile config
    # (a Keras quirk; model_from_json would then compile with the default "rmsprop").
    model_json = model.to_json()
    keras_path, weights_path, legacy_path = d / "ref.keras", d / "ref.weights.h5", d / "ref.h5"
    model.save(keras_path)
    model.save_weights(weights_path)
    model.save(legacy_path)
    with zipfile.ZipFile(keras_path) as zf:
        members = {name: zf.read(name) for name in zf.namelist()}
    assert list(members) == [METADATA, CONFIG, WEIGHTS]  # keras-spec §8.1
    return Ref(
        dir=d,
        keras_path=keras_path,
        weights_path=weights_path,
        legacy_path=legacy_path,
        members=members,
        config=json.loads(members[CONFIG]),
        model_json=model_json,
        weights=[np.asarray(w) for w in model.get_weights()],
        pred=np.asarray(model.predict(X_PROBE, verbose=0)),
    )


def kerox_twin(kx, compiled: bool = True):
    model = kx.Sequential(
        [
            kx.Input((IN_DIM,)),
            kx.layers.Dense(16, activation="relu"),
            kx.layers.BatchNormalization(),
            kx.layers.Dense(3, activation="softmax"),
        ]
    )
    if compiled:
        model.compile(
            optimizer=kx.optimizers.SGD(0.1, momentum=0.9),
            loss="sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
    return model


# ---------------------------------------------------------------------------------------------
# Mutation helpers
# ---------------------------------------------------------------------------------------------


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def deep_copy_config(ref: Ref) -> dict:
    return json.loads(json.dumps(ref.config))


def layer_entry(cfg: dict, class_name: str) -> dict:
    return next(e for e in cfg["config"]["layers"] if e["class_name"] == class_name)


def mutate_h5_bytes(data: bytes, fn: Callable[[h5py.File], None], scratch: Path) -> bytes:
    scratch.write_bytes(data)
    with h5py.File(scratch, "a") as f:
        fn(f)
    return scratch.read_bytes()


def replace_dataset(path: str, value: Any) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        del f[path]
        f[path] = value

    return fn


def delete(path: str) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        del f[path]

    return fn


def add_dataset(path: str, value: Any) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        f[path] = value

    return fn


def external_link(path: str) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        del f[path]
        f[path] = h5py.ExternalLink("/nonexistent/kerox-evil.h5", "/data")

    return fn


def huge_dataset(path: str) -> Callable[[h5py.File], None]:
    def fn(f: h5py.File) -> None:
        del f[path]
        f.create_dataset(path, shape=(2**40, 16), dtype="f4", chunks=(1, 16))

    return fn


def member_data_offset(raw: bytes, name: str) -> int:
    """Offset of a member's (stored) data inside the raw zip bytes."""
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        info = zf.getinfo(name)
    hdr = info.header_offset
    n_name, n_extra = struct.unpack("<HH", raw[hdr + 26 : hdr + 30])
    return hdr + 30 + n_name + n_extra


def flip(data: bytes, start: int, length: int) -> bytes:
    b = bytearray(data)
    for i in range(start, min(start + length, len(b))):
        b[i] ^= 0xFF
    return bytes(b)


WEIGHT_PATHS = [
    "layers/dense/vars/0",
    "layers/dense/vars/1",
    "layers/batch_normalization/vars/0",
    "layers/batch_normalization/vars/1",
    "layers/batch_normalization/vars/2",
    "layers/batch_normalization/vars/3",
    "layers/dense_1/vars/0",
    "layers/dense_1/vars/1",
] + [f"optimizer/vars/{i}" for i in range(8)]


def h5_fully_readable(data: bytes) -> bool:
    """Whether plain h5py can read every variable of the reference layout from `data`."""
    try:
        with h5py.File(io.BytesIO(data), "r") as f:
            for p in WEIGHT_PATHS:
                ds = f[p]
                arr = ds[()]
                dict(f[p.rsplit("/", 1)[0]].attrs)
                if not isinstance(arr, np.ndarray | np.generic):
                    return False
        return True
    except Exception:
        return False


def corrupt_h5_offsets(ref: Ref, count: int = 3) -> list[int]:
    """Offsets (past the superblock) where flipping 64 bytes makes the HDF5 unreadable."""
    if "h5_offsets" not in ref.cache:
        raw = ref.members[WEIGHTS]
        found = []
        for start in range(128, len(raw) - 64, 384):
            if not h5_fully_readable(flip(raw, start, 64)):
                found.append(start)
            if len(found) >= 3 * count:
                break
        # Spread over the file: first, middle and last detectable corruption.
        assert len(found) >= count, "reference HDF5 unexpectedly robust to corruption"
        ref.cache["h5_offsets"] = [found[0], found[len(found) // 2], found[-1]]
    return ref.cache["h5_offsets"]


def superblock_overflow(data: bytes) -> bytes:
    """Top byte of the version-0 superblock's driver-information address (bytes 48..55) set."""
    assert data[8] == 0 and data[48:56] == b"\xff" * 8  # superblock v0, no driver info block
    b = bytearray(data)
    b[55] = 0x80
    return bytes(b)


# Payloads that would leave a marker directory behind if anything executed them.


class _PickleBomb:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def pickle_payload(marker: Path) -> bytes:
    return pickle.dumps(_PickleBomb(str(marker)))


def lambda_code(marker: Path) -> dict:
    """A Keras-style serialized lambda (`__lambda__`, marshalled code) that creates `marker`."""
    fn = eval(f"lambda x: (__import__('os').makedirs({str(marker)!r}), x)[1]")
    code = base64.encodebytes(marshal.dumps(fn.__code__)).decode("ascii")
    return {"class_name": "__lambda__", "config": {"code": code, "defaults": None, "closure": None}}


def lambda_layer_entry(marker: Path) -> dict:
    keras = keras_or_skip()
    fn = eval(f"lambda x: (__import__('os').makedirs({str(marker)!r}), x)[1]")
    entry = keras.saving.serialize_keras_object(keras.layers.Lambda(fn, output_shape=(16,)))
    return json.loads(json.dumps(entry))


def callable_entry(module: str, name: str, **config: str) -> dict:
    """A config entry naming an arbitrary importable callable, as an attacker would write it."""
    return {"module": module, "class_name": name, "config": config, "registered_name": None}


def os_system_entry(marker: Path) -> dict:
    return callable_entry("os", "system", command=f"mkdir {marker}")


def builtins_eval_entry(marker: Path) -> dict:
    return callable_entry("builtins", "eval", source=f"__import__('os').makedirs({str(marker)!r})")


def pickle_loads_entry(marker: Path) -> dict:
    data = base64.b64encode(pickle_payload(marker)).decode("ascii")
    return callable_entry("pickle", "loads", data=data)


# ---------------------------------------------------------------------------------------------
# The cases
# ---------------------------------------------------------------------------------------------


@dataclass
class Ctx:
    ref: Ref
    tmp: Path
    marker: Path

    def keras_file(self, members: dict[str, bytes], name: str = "bad.keras") -> Path:
        return write_zip(self.tmp / name, members)

    def with_config(self, fn: Callable[[dict], Any]) -> Path:
        cfg = deep_copy_config(self.ref)
        out = fn(cfg)
        if out is not None:
            cfg = out
        members = dict(self.ref.members)
        members[CONFIG] = json.dumps(cfg).encode()
        return self.keras_file(members)

    def with_member(self, name: str, data: bytes | None) -> Path:
        members = dict(self.ref.members)
        if data is None:
            del members[name]
        else:
            members[name] = data
        return self.keras_file(members)

    def with_h5(self, fn: Callable[[h5py.File], None]) -> Path:
        data = mutate_h5_bytes(self.ref.members[WEIGHTS], fn, self.tmp / "scratch.h5")
        return self.with_member(WEIGHTS, data)

    def raw_file(self, data: bytes, name: str) -> Path:
        p = self.tmp / name
        p.write_bytes(data)
        return p

    def weights_file(self, fn: Callable[[h5py.File], None], name: str = "bad.weights.h5") -> Path:
        data = mutate_h5_bytes(self.ref.weights_path.read_bytes(), fn, self.tmp / name)
        return self.raw_file(data, name)

    def legacy_file(self, fn: Callable[[h5py.File], None], name: str = "bad.h5") -> Path:
        data = mutate_h5_bytes(self.ref.legacy_path.read_bytes(), fn, self.tmp / name)
        return self.raw_file(data, name)

    def json_with(self, fn: Callable[[dict], Any]) -> str:
        cfg = json.loads(self.ref.model_json)
        out = fn(cfg)
        return json.dumps(cfg if out is None else out)


@dataclass
class Case:
    id: str
    api: str  # "model" (load_model), "weights" (load_weights), "json" (model_from_json)
    build: Callable[[Ctx], Any]
    match: str  # regex the ValueError message must match
    shapes: tuple = ()  # shapes that must both appear in the message
    tolerant: bool = False  # loading successfully (ignoring the oddity, as Keras does) is fine


def shape_regex(shape: tuple) -> str:
    inner = r",\s*".join(str(s) for s in shape)
    if len(shape) == 1:
        inner += r",?"
    return r"[\(\[]\s*" + inner + r"\s*[\)\]]"


def _set(path: list, value: Any) -> Callable[[dict], None]:
    def fn(cfg: dict) -> None:
        obj = cfg
        for key in path[:-1]:
            obj = obj[key]
        obj[path[-1]] = value

    return fn


def _dense_cfg(key: str, value: Any) -> Callable[[dict], None]:
    def fn(cfg: dict) -> None:
        layer_entry(cfg, "Dense")["config"][key] = value

    return fn


def _input_cfg(key: str, value: Any) -> Callable[[dict], None]:
    def fn(cfg: dict) -> None:
        layer_entry(cfg, "InputLayer")["config"][key] = value

    return fn


def _replace_layer(make: Callable[[Path], dict], index: int = 2) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        def fn(cfg: dict) -> None:
            cfg["config"]["layers"][index] = make(ctx.marker)

        return ctx.with_config(fn)

    return build


def _compile_cfg(key: str, make: Callable[[Ctx], Any]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        return ctx.with_config(_set(["compile_config", key], make(ctx)))

    return build


def _sgd_cfg(key: str, value: Any) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        return ctx.with_config(_set(["compile_config", "optimizer", "config", key], value))

    return build


def _h5_flip(which: int) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        start = corrupt_h5_offsets(ctx.ref)[which]
        return ctx.with_member(WEIGHTS, flip(ctx.ref.members[WEIGHTS], start, 64))

    return build


def _truncated_zip(frac: float | None = None, cut: int | None = None) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        raw = ctx.ref.keras_path.read_bytes()
        n = int(len(raw) * frac) if frac is not None else len(raw) - cut
        return ctx.raw_file(raw[:n], "bad.keras")

    return build


def _zip_crc(member: str) -> Callable[[Ctx], Path]:
    """Flip one stored byte of `member` so that only the zip CRC can tell."""

    def build(ctx: Ctx) -> Path:
        raw = ctx.ref.keras_path.read_bytes()
        start = member_data_offset(raw, member)
        if member == CONFIG:
            # A digit of `"units": 16` -> `"units": 17`: still valid JSON, wrong content.
            k = ctx.ref.members[CONFIG].index(b'"units": 16') + len(b'"units": 1')
        else:
            with h5py.File(io.BytesIO(ctx.ref.members[WEIGHTS]), "r") as f:
                k = f["layers/dense/vars/0"].id.get_offset() + 2  # inside the kernel's data
        b = bytearray(raw)
        b[start + k] ^= 0x01
        return ctx.raw_file(bytes(b), "bad.keras")

    return build


def _legacy_model_config(fn: Callable[[dict, Path], Any]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        def mut(f: h5py.File) -> None:
            cfg = json.loads(f.attrs["model_config"])
            fn(cfg, ctx.marker)
            f.attrs["model_config"] = json.dumps(cfg)

        return ctx.legacy_file(mut)

    return build


def _legacy_replace_kernel(f: h5py.File) -> None:
    path = "model_weights/dense/sequential/dense/kernel"
    del f[path]
    f[path] = np.zeros((8, 17), np.float32)


def _legacy_drop_layer_name(f: h5py.File) -> None:
    g = f["model_weights"]
    g.attrs["layer_names"] = [n for n in g.attrs["layer_names"] if n != "batch_normalization"]


def _legacy_missing_dataset(f: h5py.File) -> None:
    del f["model_weights/dense_1/sequential/dense_1/bias"]


def _legacy_training_config(fn: Callable[[dict, Path], Any]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        def mut(f: h5py.File) -> None:
            tc = json.loads(f.attrs["training_config"])
            fn(tc, ctx.marker)
            f.attrs["training_config"] = json.dumps(tc)

        return ctx.legacy_file(mut)

    return build


def _lambda_in_legacy(cfg: dict, marker: Path) -> None:
    entry = lambda_layer_entry(marker)
    cfg["config"]["layers"][2] = {"class_name": "Lambda", "config": entry["config"]}


def _conv2d_in_legacy(cfg: dict, marker: Path) -> None:
    cfg["config"]["layers"][2]["class_name"] = "Conv2D"


def _json_layer(make: Callable[[Path], dict]) -> Callable[[Ctx], str]:
    def build(ctx: Ctx) -> str:
        def fn(cfg: dict) -> None:
            cfg["config"]["layers"][2] = make(ctx.marker)

        return ctx.json_with(fn)

    return build


def _rename_class(old: str, new: str) -> Callable[[dict], None]:
    def fn(cfg: dict) -> None:
        layer_entry(cfg, old)["class_name"] = new

    return fn


def _conv2d(marker: Path) -> dict:
    return {
        "module": "keras.layers",
        "class_name": "Conv2D",
        "config": {"name": "conv2d", "filters": 4, "kernel_size": [3, 3]},
        "registered_name": None,
    }


def _activation(make: Callable[[Ctx], Any]) -> Callable[[Ctx], Path]:
    def build(ctx: Ctx) -> Path:
        return ctx.with_config(_dense_cfg("activation", make(ctx)))

    return build


def _layers_wrong_item(cfg: dict) -> None:
    cfg["config"]["layers"][1] = "Dense"


def _layer_without_config(cfg: dict) -> None:
    del layer_entry(cfg, "Dense")["config"]


def _without_class_name(cfg: dict) -> None:
    del cfg["class_name"]


def _pkl_member(ctx: Ctx) -> Path:
    members = dict(ctx.ref.members)
    members["assets/model.pkl"] = pickle_payload(ctx.marker)
    members["model.pkl"] = pickle_payload(ctx.marker)
    return ctx.keras_file(members)


def _traversal_member(ctx: Ctx) -> Path:
    members = dict(ctx.ref.members)
    members["../" * 8 + str(ctx.marker).lstrip("/")] = b"escaped"
    members["assets/../../escaped_marker"] = b"escaped"
    return ctx.keras_file(members)


CASES: list[Case] = [
    # -- not a zip archive at all --------------------------------------------------------------
    Case(
        "keras-random-bytes",
        "model",
        lambda c: c.raw_file(np.random.default_rng(1).bytes(4096), "bad.keras"),
        r"(?i)zip",
    ),
    Case("keras-empty-file", "model", lambda c: c.raw_file(b"", "bad.keras"), r"(?i)zip"),
    Case(
        "keras-text-file",
        "model",
        lambda c: c.raw_file(b"this is not a model\n" * 10, "bad.keras"),
        r"(?i)zip",
    ),
    Case(
        "keras-is-a-pickle",
        "model",
        lambda c: c.raw_file(pickle_payload(c.marker), "bad.keras"),
        r"(?i)zip",
    ),
    Case(
        "keras-hdf5-not-zip",
        "model",
        lambda c: c.raw_file(c.ref.weights_path.read_bytes(), "bad.keras"),
        r"(?i)zip",
    ),
    # -- truncated archives (the end-of-central-directory record goes first) -------------------
    Case("keras-truncated-10pct", "model", _truncated_zip(frac=0.1), r"(?i)zip|truncat|corrupt"),
    Case("keras-truncated-50pct", "model", _truncated_zip(frac=0.5), r"(?i)zip|truncat|corrupt"),
    Case("keras-truncated-90pct", "model", _truncated_zip(frac=0.9), r"(?i)zip|truncat|corrupt"),
    Case("keras-truncated-last-byte", "model", _truncated_zip(cut=1), r"(?i)zip|truncat|corrupt"),
    Case("keras-truncated-eocd", "model", _truncated_zip(cut=22), r"(?i)zip|truncat|corrupt"),
    # -- members missing / damaged inside a valid zip ------------------------------------------
    Case("keras-missing-config", "model", lambda c: c.with_member(CONFIG, None), r"config\.json"),
    Case(
        "keras-missing-weights", "model", lambda c: c.with_member(WEIGHTS, None), r"model\.weights"
    ),
    Case("keras-crc-config", "model", _zip_crc(CONFIG), r"config\.json"),
    Case("keras-crc-weights", "model", _zip_crc(WEIGHTS), r"model\.weights\.h5"),
    Case(
        "keras-missing-metadata",
        "model",
        lambda c: c.with_member(METADATA, None),
        r"metadata\.json",
        tolerant=True,
    ),
    Case(
        "keras-metadata-not-json",
        "model",
        lambda c: c.with_member(METADATA, b"{not json"),
        r"metadata\.json",
        tolerant=True,
    ),
    Case("keras-pkl-members", "model", _pkl_member, r"(?i)pkl|pickle|member", tolerant=True),
    Case("keras-path-traversal-member", "model", _traversal_member, r"(?i)member", tolerant=True),
    # -- config.json that is not (usable) JSON -------------------------------------------------
    Case(
        "config-not-json",
        "model",
        lambda c: c.with_member(CONFIG, b'{"class_name": "Sequential", '),
        r"config\.json",
    ),
    Case(
        "config-not-utf8",
        "model",
        lambda c: c.with_member(CONFIG, b"\xff\xfe\xfa" + c.ref.members[CONFIG]),
        r"config\.json",
    ),
    Case(
        "config-deep-nesting",
        "model",
        lambda c: c.with_member(CONFIG, b"[" * 200_000 + b"]" * 200_000),
        r"config\.json",
    ),
    Case(
        "config-is-pickle",
        "model",
        lambda c: c.with_member(CONFIG, pickle_payload(c.marker)),
        r"config\.json",
    ),
    # -- JSON of the wrong schema --------------------------------------------------------------
    Case("config-list", "model", lambda c: c.with_config(lambda cfg: [cfg]), r"config\.json"),
    Case(
        "config-missing-class-name",
        "model",
        lambda c: c.with_config(_without_class_name),
        r"class_name",
    ),
    Case(
        "config-functional-model",
        "model",
        lambda c: c.with_config(_set(["class_name"], "Functional")),
        r"Functional",
    ),
    Case(
        "config-layers-not-list",
        "model",
        lambda c: c.with_config(_set(["config", "layers"], {"dense": 16})),
        r"layers",
    ),
    Case("config-layer-is-string", "model", lambda c: c.with_config(_layers_wrong_item), r"layers"),
    Case(
        "config-layer-without-config",
        "model",
        lambda c: c.with_config(_layer_without_config),
        r"Dense|config",
    ),
    Case(
        "config-units-string", "model", lambda c: c.with_config(_dense_cfg("units", "16")), "units"
    ),
    Case(
        "config-units-negative", "model", lambda c: c.with_config(_dense_cfg("units", -4)), "units"
    ),
    Case(
        "config-units-float",
        "model",
        lambda c: c.with_config(_dense_cfg("units", 16.5)),
        "units",
    ),
    Case(
        "config-unknown-layer-kwarg",
        "model",
        lambda c: c.with_config(_dense_cfg("bogus_kwarg", 1)),
        "bogus_kwarg",
    ),
    Case(
        "config-batch-shape-strings",
        "model",
        lambda c: c.with_config(_input_cfg("batch_shape", ["a", "b"])),
        r"batch_shape|InputLayer",
    ),
    Case(
        "config-batch-shape-negative",
        "model",
        lambda c: c.with_config(_input_cfg("batch_shape", [None, -8])),
        r"batch_shape|InputLayer",
    ),
    Case(
        "config-batch-shape-number",
        "model",
        lambda c: c.with_config(_input_cfg("batch_shape", 8)),
        r"batch_shape|InputLayer",
    ),
    # -- unknown / dangerous classes (nothing may execute) -------------------------------------
    Case("layer-conv2d", "model", _replace_layer(_conv2d), "Conv2D"),
    Case(
        "layer-renamed-unknown",
        "model",
        lambda c: c.with_config(_rename_class("BatchNormalization", "LayerNormalization")),
        "LayerNormalization",
    ),
    Case("layer-lambda", "model", _replace_layer(lambda_layer_entry), "Lambda"),
    Case("layer-os-system", "model", _replace_layer(os_system_entry), "system"),
    Case("layer-builtins-eval", "model", _replace_layer(builtins_eval_entry), "eval"),
    Case("layer-pickle-loads", "model", _replace_layer(pickle_loads_entry), "loads"),
    Case(
        "activation-unknown",
        "model",
        _activation(lambda c: "not_an_activation"),
        "not_an_activation",
    ),
    Case(
        "activation-os-system-function",
        "model",
        _activation(
            lambda c: {
                "module": "os",
                "class_name": "function",
                "config": "system",
                "registered_name": "system",
            }
        ),
        "system",
    ),
    Case(
        "activation-lambda",
        "model",
        _activation(lambda c: lambda_code(c.marker)),
        r"__lambda__|activation",
    ),
    Case(
        "initializer-unknown",
        "model",
        lambda c: c.with_config(
            _dense_cfg(
                "kernel_initializer",
                {"module": "keras.initializers", "class_name": "NotAnInit", "config": {}},
            )
        ),
        "NotAnInit",
    ),
    Case("loss-unknown", "model", _compile_cfg("loss", lambda c: "not_a_loss"), "not_a_loss"),
    Case(
        "loss-lambda",
        "model",
        _compile_cfg("loss", lambda c: lambda_code(c.marker)),
        r"__lambda__|loss",
    ),
    Case(
        "metric-unknown",
        "model",
        _compile_cfg("metrics", lambda c: ["not_a_metric"]),
        "not_a_metric",
    ),
    Case(
        "optimizer-unknown-class",
        "model",
        _compile_cfg(
            "optimizer",
            lambda c: {"module": "keras.optimizers", "class_name": "NotAnOptimizer", "config": {}},
        ),
        "NotAnOptimizer",
    ),
    Case(
        "optimizer-unknown-string",
        "model",
        _compile_cfg("optimizer", lambda c: "not_an_optimizer"),
        "not_an_optimizer",
    ),
    Case("optimizer-unknown-key", "model", _sgd_cfg("bogus_key", 1), "bogus_key"),
    Case("optimizer-momentum-string", "model", _sgd_cfg("momentum", "fast"), "momentum"),
    Case(
        "optimizer-pickle-loads",
        "model",
        _compile_cfg("optimizer", lambda c: pickle_loads_entry(c.marker)),
        "loads",
    ),
    # -- model.weights.h5 inside the archive ---------------------------------------------------
    Case(
        "weights-wrong-shape-kernel",
        "model",
        lambda c: c.with_h5(replace_dataset("layers/dense/vars/0", np.zeros((8, 17), "f4"))),
        "layers/dense/vars/0",
        shapes=((8, 16), (8, 17)),
    ),
    Case(
        "weights-wrong-shape-bn",
        "model",
        lambda c: c.with_h5(
            replace_dataset("layers/batch_normalization/vars/2", np.zeros((15,), "f4"))
        ),
        "layers/batch_normalization/vars/2",
        shapes=((16,), (15,)),
    ),
    Case(
        "weights-wrong-shape-optimizer-slot",
        "model",
        lambda c: c.with_h5(replace_dataset("optimizer/vars/2", np.zeros((8, 15), "f4"))),
        "optimizer/vars/2",
        shapes=((8, 16), (8, 15)),
    ),
    Case(
        "weights-scalar-for-kernel",
        "model",
        lambda c: c.with_h5(replace_dataset("layers/dense_1/vars/0", np.float32(1.0))),
        "layers/dense_1/vars/0",
    ),
    Case(
        "weights-string-dtype",
        "model",
        lambda c: c.with_h5(replace_dataset("layers/dense/vars/1", np.array([b"abc"] * 16))),
        "layers/dense/vars/1",
    ),
    Case(
        # A dataset that declares 2**40 rows (no storage allocated): checked before it is read.
        "weights-huge-declared-shape",
        "model",
        lambda c: c.with_h5(huge_dataset("layers/dense/vars/0")),
        "layers/dense/vars/0",
        shapes=((8, 16), (2**40, 16)),
    ),
    Case(
        "weights-missing-dataset",
        "model",
        lambda c: c.with_h5(delete("layers/dense_1/vars/1")),
        "dense_1",
    ),
    Case(
        "weights-missing-layer-group",
        "model",
        lambda c: c.with_h5(delete("layers/batch_normalization")),
        "batch_normalization",
    ),
    Case(
        "weights-extra-layer-group",
        "model",
        lambda c: c.with_h5(add_dataset("layers/dense_2/vars/0", np.zeros((3, 3), "f4"))),
        "dense_2",
        tolerant=True,
    ),
    Case(
        "weights-external-link",
        "model",
        lambda c: c.with_h5(external_link("layers/dense/vars/0")),
        r"layers/dense/vars/0|model\.weights\.h5",
    ),
    Case(
        "h5-signature-destroyed",
        "model",
        lambda c: c.with_member(WEIGHTS, b"\0" * 8 + c.ref.members[WEIGHTS][8:]),
        r"model\.weights\.h5",
    ),
    Case(
        "h5-truncated-half",
        "model",
        lambda c: c.with_member(
            WEIGHTS, c.ref.members[WEIGHTS][: len(c.ref.members[WEIGHTS]) // 2]
        ),
        r"model\.weights\.h5",
    ),
    Case(
        "h5-truncated-100-bytes",
        "model",
        lambda c: c.with_member(WEIGHTS, c.ref.members[WEIGHTS][:100]),
        r"model\.weights\.h5",
    ),
    Case("h5-flipped-first", "model", _h5_flip(0), r"model\.weights\.h5|vars"),
    Case("h5-flipped-middle", "model", _h5_flip(1), r"model\.weights\.h5|vars"),
    Case("h5-flipped-last", "model", _h5_flip(2), r"model\.weights\.h5|vars"),
    Case(
        # The superblock's driver-information address beyond 2**63: h5py's file-object driver
        # raises OverflowError (found by test_random_damage_never_crashes).
        "h5-superblock-address-overflow",
        "model",
        lambda c: c.with_member(WEIGHTS, superblock_overflow(c.ref.members[WEIGHTS])),
        r"model\.weights\.h5",
    ),
    Case(
        "h5-is-pickle",
        "model",
        lambda c: c.with_member(WEIGHTS, pickle_payload(c.marker)),
        r"model\.weights\.h5",
    ),
    # -- model.load_weights on .weights.h5 / .keras --------------------------------------------
    Case(
        "wfile-text",
        "weights",
        lambda c: c.raw_file(b"not hdf5\n" * 50, "bad.weights.h5"),
        r"bad\.weights\.h5",
    ),
    Case(
        "wfile-empty", "weights", lambda c: c.raw_file(b"", "bad.weights.h5"), r"bad\.weights\.h5"
    ),
    Case(
        "wfile-truncated",
        "weights",
        lambda c: c.raw_file(c.ref.weights_path.read_bytes()[:5000], "bad.weights.h5"),
        r"bad\.weights\.h5",
    ),
    Case(
        "wfile-pickle",
        "weights",
        lambda c: c.raw_file(pickle_payload(c.marker), "bad.weights.h5"),
        r"bad\.weights\.h5",
    ),
    Case(
        "wfile-zip-not-hdf5",
        "weights",
        lambda c: c.raw_file(c.ref.keras_path.read_bytes(), "bad.weights.h5"),
        r"bad\.weights\.h5",
    ),
    Case(
        "wfile-wrong-shape",
        "weights",
        lambda c: c.weights_file(replace_dataset("layers/dense_1/vars/0", np.zeros((16, 4), "f4"))),
        "layers/dense_1/vars/0",
        shapes=((16, 3), (16, 4)),
    ),
    Case(
        "wfile-missing-bn-group",
        "weights",
        lambda c: c.weights_file(delete("layers/batch_normalization")),
        "batch_normalization",
    ),
    Case("wfile-missing-layers", "weights", lambda c: c.weights_file(delete("layers")), "layers"),
    Case(
        "wfile-missing-var",
        "weights",
        lambda c: c.weights_file(delete("layers/batch_normalization/vars/3")),
        "batch_normalization",
    ),
    Case(
        "wfile-keras-wrong-shape",
        "weights",
        lambda c: c.with_h5(replace_dataset("layers/dense/vars/0", np.zeros((7, 16), "f4"))),
        "layers/dense/vars/0",
        shapes=((8, 16), (7, 16)),
    ),
    Case(
        "wfile-superblock-address-overflow",
        "weights",
        lambda c: c.raw_file(
            superblock_overflow(c.ref.weights_path.read_bytes()), "bad.weights.h5"
        ),
        r"bad\.weights\.h5",
    ),
    Case(
        "wfile-keras-superblock-address-overflow",
        "weights",
        lambda c: c.with_member(WEIGHTS, superblock_overflow(c.ref.members[WEIGHTS])),
        r"model\.weights\.h5",
    ),
    Case(
        "wfile-keras-truncated",
        "weights",
        _truncated_zip(frac=0.5),
        r"(?i)zip|truncat|corrupt",
    ),
    # -- legacy Keras .h5 ----------------------------------------------------------------------
    Case(
        "legacy-layer-count-mismatch",
        "weights",
        lambda c: c.legacy_file(_legacy_drop_layer_name),
        "Layer count mismatch",
    ),
    Case(
        "legacy-missing-layer-names",
        "weights",
        lambda c: c.legacy_file(lambda f: f["model_weights"].attrs.__delitem__("layer_names")),
        "layer_names",
    ),
    Case(
        "legacy-wrong-shape",
        "weights",
        lambda c: c.legacy_file(_legacy_replace_kernel),
        # The dataset's path in the file (model_weights/)dense/sequential/dense/kernel.
        r"(^|[\s:/'\"])dense/sequential/dense/kernel",
        shapes=((8, 16), (8, 17)),
    ),
    Case(
        "legacy-missing-dataset",
        "weights",
        lambda c: c.legacy_file(_legacy_missing_dataset),
        r"dense_1",
    ),
    Case(
        "legacy-truncated",
        "weights",
        lambda c: c.raw_file(c.ref.legacy_path.read_bytes()[:3000], "bad.h5"),
        r"bad\.h5",
    ),
    Case(
        "legacy-model-no-config",
        "model",
        lambda c: c.legacy_file(lambda f: f.attrs.__delitem__("model_config")),
        "model_config",
    ),
    Case(
        "legacy-model-config-not-json",
        "model",
        lambda c: c.legacy_file(lambda f: f.attrs.__setitem__("model_config", "{oops")),
        "model_config",
    ),
    Case(
        "legacy-model-training-config-not-json",
        "model",
        lambda c: c.legacy_file(lambda f: f.attrs.__setitem__("training_config", "[oops")),
        "training_config",
    ),
    Case(
        "legacy-model-unknown-loss",
        "model",
        _legacy_training_config(lambda tc, m: tc.__setitem__("loss", "not_a_loss")),
        "not_a_loss",
    ),
    Case(
        "legacy-model-unknown-optimizer",
        "model",
        _legacy_training_config(
            lambda tc, m: tc.__setitem__(
                "optimizer_config", {"class_name": "Custom>Evil", "config": {}}
            )
        ),
        "Evil",
    ),
    Case(
        "legacy-model-pickle-optimizer",
        "model",
        _legacy_training_config(
            lambda tc, m: tc.__setitem__("optimizer_config", pickle_loads_entry(m))
        ),
        "loads",
    ),
    Case(
        "legacy-missing-weight-names",
        "weights",
        lambda c: c.legacy_file(
            lambda f: f["model_weights/dense"].attrs.__delitem__("weight_names")
        ),
        "weight_names",
    ),
    Case("legacy-model-conv2d", "model", _legacy_model_config(_conv2d_in_legacy), "Conv2D"),
    Case("legacy-model-lambda", "model", _legacy_model_config(_lambda_in_legacy), "Lambda"),
    # -- model_from_json -------------------------------------------------------------------------
    Case("json-not-json", "json", lambda c: '{"class_name": "Sequential",', r"(?i)json"),
    Case("json-empty", "json", lambda c: "", r"(?i)json"),
    Case("json-list", "json", lambda c: json.dumps([1, 2]), r"(?i)dict|object|mapping|list"),
    Case(
        "json-missing-class-name", "json", lambda c: c.json_with(_without_class_name), "class_name"
    ),
    Case("json-conv2d", "json", _json_layer(_conv2d), "Conv2D"),
    Case("json-lambda", "json", _json_layer(lambda_layer_entry), "Lambda"),
    Case("json-os-system", "json", _json_layer(os_system_entry), "system"),
    Case("json-builtins-eval", "json", _json_layer(builtins_eval_entry), "eval"),
    Case("json-units-string", "json", lambda c: c.json_with(_dense_cfg("units", "x")), "units"),
    Case(
        "json-deep-nesting",
        "json",
        lambda c: "[" * 200_000 + "]" * 200_000,
        r"(?i)json|nest|deep|recurs",
    ),
]


def _check_message(exc: BaseException, case: Case) -> None:
    msg = str(exc)
    assert re.search(case.match, msg), (
        f"{type(exc).__name__} message does not name the failing part ({case.match!r}): {msg!r}"
    )
    for shape in case.shapes:
        assert re.search(shape_regex(shape), msg), f"shape {shape} not in message: {msg!r}"


def _run(kx, case: Case, arg: Any) -> Any:
    if case.api == "model":
        return kx.models.load_model(arg)
    if case.api == "weights":
        model = kerox_twin(kx)
        model.load_weights(arg)
        return model
    return kx.models.model_from_json(arg)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_file_raises_clear_value_error(kx, ref, tmp_path, case):
    marker = tmp_path / "EXECUTED"
    ctx = Ctx(ref=ref, tmp=tmp_path, marker=marker)
    arg = case.build(ctx)
    cwd = os.getcwd()
    os.chdir(tmp_path)  # so that a relative escape would land here, not in the repo
    try:
        try:
            result = _run(kx, case, arg)
        except ValueError as exc:
            _check_message(exc, case)
        except Exception as exc:  # noqa: BLE001 - the type is what we test
            pytest.fail(f"expected ValueError, got {type(exc).__name__}: {exc}")
        else:
            if not case.tolerant:
                pytest.fail(f"{case.id}: loading succeeded; expected ValueError")
            if case.api == "model":
                # Ignoring the oddity is fine only if the model is the saved one.
                np.testing.assert_allclose(result.predict(X_PROBE, verbose=0), ref.pred, rtol=1e-5)
    finally:
        os.chdir(cwd)
    assert not marker.exists(), "loading executed code from the file"
    assert not (tmp_path / "escaped_marker").exists()
    assert not (tmp_path.parent / "escaped_marker").exists()


def test_payloads_would_execute_if_loaded_unsafely(tmp_path):
    """The marker payloads have teeth: unpickling, or calling the marshalled lambda, or
    resolving `module`/`class_name` naively, does create the marker."""
    import importlib
    import types

    marker = tmp_path / "m1"
    pickle.loads(pickle_payload(marker))
    assert marker.exists()
    marker = tmp_path / "m2"
    code = marshal.loads(base64.decodebytes(lambda_code(marker)["config"]["code"].encode()))
    types.FunctionType(code, {"__builtins__": __builtins__})(0)
    assert marker.exists()
    marker = tmp_path / "m3"
    entry = os_system_entry(marker)
    getattr(importlib.import_module(entry["module"]), entry["class_name"])(**entry["config"])
    assert marker.exists()


def test_enough_cases():
    assert len(CASES) >= 25
    assert {c.api for c in CASES} == {"model", "weights", "json"}


def test_safe_mode_false_still_executes_nothing(kx, ref, tmp_path):
    """kerox never deserializes lambdas, whatever `safe_mode` says."""
    marker = tmp_path / "EXECUTED"
    ctx = Ctx(ref=ref, tmp=tmp_path, marker=marker)
    path = _replace_layer(lambda_layer_entry)(ctx)
    with pytest.raises(ValueError, match=r"Lambda|safe_mode"):
        kx.models.load_model(path, safe_mode=False)
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------
# The valid reference files load (so that every mutation above starts from a good file)
# ---------------------------------------------------------------------------------------------


def _assert_same_weights(model, ref: Ref) -> None:
    got = model.get_weights()
    assert len(got) == len(ref.weights)
    for a, e in zip(got, ref.weights):
        np.testing.assert_array_equal(np.asarray(a), e)


def test_reference_keras_file_loads(kx, ref):
    model = kx.models.load_model(ref.keras_path)
    _assert_same_weights(model, ref)
    np.testing.assert_allclose(model.predict(X_PROBE, verbose=0), ref.pred, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("which", ["keras_path", "weights_path", "legacy_path"])
def test_reference_files_load_weights(kx, ref, which):
    model = kerox_twin(kx)
    model.load_weights(getattr(ref, which))
    _assert_same_weights(model, ref)


def test_reference_legacy_h5_loads(kx, ref):
    model = kx.models.load_model(ref.legacy_path)
    _assert_same_weights(model, ref)


def test_reference_json_loads(kx, ref):
    model = kx.models.model_from_json(ref.model_json)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "BatchNormalization",
        "Dense",
    ]
    assert [np.shape(w) for w in model.get_weights()] == [w.shape for w in ref.weights]


# ---------------------------------------------------------------------------------------------
# Paths and extensions
# ---------------------------------------------------------------------------------------------


def test_load_model_missing_file(kx, tmp_path):
    path = tmp_path / "nope.keras"
    with pytest.raises(ValueError, match=r"File not found: filepath=.*nope\.keras"):
        kx.models.load_model(path)


@pytest.mark.parametrize("name", ["model.txt", "model.pb", "model"])
def test_load_model_unsupported_extension(kx, ref, tmp_path, name):
    path = tmp_path / name
    path.write_bytes(ref.keras_path.read_bytes())  # a good archive, under the wrong name
    with pytest.raises(ValueError, match=r"File format not supported"):
        kx.models.load_model(path)


def test_load_weights_missing_file(kx, tmp_path):
    path = tmp_path / "nope.weights.h5"
    # Keras raises FileNotFoundError here; a ValueError is fine too. Either names the file.
    with pytest.raises((ValueError, FileNotFoundError), match=r"nope\.weights\.h5"):
        kerox_twin(kx).load_weights(path)


def test_load_weights_unsupported_extension(kx, ref, tmp_path):
    path = tmp_path / "weights.txt"
    path.write_bytes(ref.weights_path.read_bytes())
    with pytest.raises(ValueError, match=r"File format not supported"):
        kerox_twin(kx).load_weights(path)


@pytest.mark.parametrize("name", ["dir", "dir.keras", "dir.h5", "dir.weights.h5"])
def test_loaders_given_a_directory(kx, tmp_path, name):
    path = tmp_path / name
    path.mkdir()
    with pytest.raises(ValueError, match=re.escape(name)):
        kx.models.load_model(path)
    if name != "dir":
        with pytest.raises(ValueError, match=re.escape(name)):
            kerox_twin(kx).load_weights(path)


@pytest.mark.parametrize("name", ["model.txt", "model.weights.h5.bak", "model.zip", "model"])
def test_save_bad_extension(kx, tmp_path, name):
    with pytest.raises(ValueError, match=r"`\.keras`"):
        kerox_twin(kx).save(tmp_path / name)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["w.h5", "w.keras", "w.weights", "w.weights.h5.tmp"])
def test_save_weights_bad_extension(kx, tmp_path, name):
    with pytest.raises(ValueError, match=r"The filename must end in `\.weights\.h5`"):
        kerox_twin(kx).save_weights(tmp_path / name)
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------------
# Robustness: random damage never crashes, hangs or raises anything but ValueError
# ---------------------------------------------------------------------------------------------

FUZZ_SCRIPT = r"""
import io, json, random, sys, traceback, zipfile
from kerox import keras
import numpy as np

keras_path, weights_path, out = sys.argv[1], sys.argv[2], sys.argv[3]
rng = random.Random(1234)
results = []

def twin():
    m = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                          keras.layers.BatchNormalization(),
                          keras.layers.Dense(3, activation="softmax")])
    m.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
              loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return m

def attempt(label, data, suffix, fn):
    path = out + "/fuzz" + suffix
    with open(path, "wb") as f:
        f.write(data)
    try:
        fn(path)
        results.append([label, "ok", ""])
    except ValueError as e:
        results.append([label, "ValueError", str(e)[:200]])
    except BaseException as e:
        # Keep the input and where it failed, for the report.
        with open(out + "/failing-" + label + suffix, "wb") as f:
            f.write(data)
        tb = traceback.extract_tb(e.__traceback__)[-3:]
        where = " <- ".join(f"{fr.name}:{fr.lineno}" for fr in reversed(tb))
        results.append([label, type(e).__name__, str(e)[:200], where])
    print(json.dumps(results[-1]), flush=True)

raw = open(keras_path, "rb").read()
wraw = open(weights_path, "rb").read()
for i in range(40):
    b = bytearray(raw)
    for _ in range(rng.choice([1, 4, 32])):
        b[rng.randrange(len(b))] = rng.randrange(256)
    attempt(f"keras-flip-{i}", bytes(b), ".keras", keras.models.load_model)
for i in range(15):
    attempt(f"keras-cut-{i}", raw[: rng.randrange(len(raw))], ".keras", keras.models.load_model)
# Damage inside a well-formed archive: the members themselves.
z = zipfile.ZipFile(keras_path)
members = {n: z.read(n) for n in z.namelist()}
for i in range(30):
    name = rng.choice(list(members))
    data = bytearray(members[name])
    for _ in range(rng.choice([1, 8, 64])):
        data[rng.randrange(len(data))] = rng.randrange(256)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zw:
        for n, d in members.items():
            zw.writestr(n, bytes(data) if n == name else d)
    attempt(f"member-{name}-{i}", buf.getvalue(), ".keras", keras.models.load_model)
for i in range(25):
    b = bytearray(wraw)
    for _ in range(rng.choice([1, 16, 128])):
        b[rng.randrange(len(b))] = rng.randrange(256)
    attempt(f"weights-flip-{i}", bytes(b), ".weights.h5", lambda p: twin().load_weights(p))
print("DONE", flush=True)
"""


def test_random_damage_never_crashes(ref, tmp_path):
    env = dict(os.environ, KEROX_NUM_THREADS="1")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            FUZZ_SCRIPT,
            str(ref.keras_path),
            str(ref.weights_path),
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = proc.stdout.splitlines()
    assert proc.returncode == 0 and lines and lines[-1] == "DONE", (
        f"the loader crashed (rc={proc.returncode}) after {lines[-1:]}:\n{proc.stderr[-3000:]}"
    )
    results = [json.loads(line) for line in lines[:-1]]
    assert len(results) == 110
    bad = [r for r in results if r[1] not in ("ok", "ValueError")]
    assert not bad, "non-ValueError exceptions:\n" + "\n".join(map(str, bad))
    # Some damage must be caught (a flip inside weight data or an unused byte can load fine).
    assert sum(r[1] == "ValueError" for r in results) >= 60


HUGE_SCRIPT = r"""
import json, resource, sys, time
from kerox import keras

path = sys.argv[1]
# 4 GB of address space: a loader that believes the config allocates until it fails.
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.getrlimit(resource.RLIMIT_AS)[1]))
t = time.perf_counter()
try:
    keras.models.load_model(path)
    out = ["ok", ""]
except ValueError as e:
    out = ["ValueError", str(e)[:300]]
except BaseException as e:
    out = [type(e).__name__, str(e)[:300]]
print(json.dumps(out + [time.perf_counter() - t]), flush=True)
"""


@pytest.mark.parametrize("units", [10**8, 10**12])
def test_tiny_file_declaring_a_huge_layer(ref, tmp_path, units):
    """A 30 kB archive whose config declares a Dense layer of 0.8G or 8T parameters (its weights
    file says (8, 16)) is refused with a ValueError: no crash, hang, MemoryError or swapping
    (the child runs with 4 GB of address space, so trying to allocate the layer fails fast)."""
    cfg = deep_copy_config(ref)
    layer_entry(cfg, "Dense")["config"]["units"] = units
    members = dict(ref.members)
    members[CONFIG] = json.dumps(cfg).encode()
    path = write_zip(tmp_path / "huge.keras", members)
    proc = subprocess.run(
        [sys.executable, "-c", HUGE_SCRIPT, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, KEROX_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, f"crashed (rc={proc.returncode}): {proc.stderr[-2000:]}"
    kind, msg, seconds = json.loads(proc.stdout.strip().splitlines()[-1])
    assert kind == "ValueError", f"expected ValueError, got {kind}: {msg} (after {seconds:.1f} s)"
    assert re.search(r"config\.json|units|dense|Dense", msg), msg
    assert seconds < 10.0, f"took {seconds:.1f} s to refuse a 30 kB file"


# ---------------------------------------------------------------------------------------------
# Durability: a failed save leaves the previous file untouched and no temporary files
# ---------------------------------------------------------------------------------------------


def _small_model(kx, seed: int):
    model = kerox_twin(kx)
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.standard_normal(np.shape(w)).astype(np.float32) for w in model.get_weights()]
    )
    return model


SAVERS = {
    "save": ("target.keras", lambda m, p: m.save(p)),
    "save_weights": ("target.weights.h5", lambda m, p: m.save_weights(p)),
}


@pytest.mark.parametrize("saver", list(SAVERS))
def test_failed_rename_keeps_previous_file(kx, tmp_path, monkeypatch, saver):
    name, save = SAVERS[saver]
    target = tmp_path / name
    save(_small_model(kx, 0), target)
    before = target.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", boom)
    monkeypatch.setattr(os, "rename", boom)
    with pytest.raises(OSError, match="simulated crash"):
        save(_small_model(kx, 1), target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == [name], "temporary files left behind"


@pytest.mark.parametrize("saver", list(SAVERS))
def test_failed_write_midway_keeps_previous_file(kx, tmp_path, monkeypatch, saver):
    name, save = SAVERS[saver]
    target = tmp_path / name
    save(_small_model(kx, 0), target)
    before = target.read_bytes()
    calls = []
    real = h5py.Group.create_dataset

    def failing_create_dataset(self, *args, **kwargs):
        calls.append(args[:1])
        if len(calls) == 3:
            raise RuntimeError("simulated failure while writing a variable")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create_dataset)
    try:
        save(_small_model(kx, 1), target)
    except Exception as exc:  # noqa: BLE001 - any error is fine, the file state is the point
        assert "simulated failure" in str(exc) or isinstance(exc, RuntimeError)
    else:
        if len(calls) < 3:
            pytest.skip("saving does not write through h5py.Group.create_dataset")
        pytest.fail("the save swallowed the write error")
    finally:
        monkeypatch.undo()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == [name], "temporary files left behind"


def test_unserialisable_model_keeps_previous_file(kx, tmp_path, monkeypatch):
    target = tmp_path / "target.keras"
    model = _small_model(kx, 0)
    model.save(target)
    before = target.read_bytes()
    layer = model.layers[0]

    def bad_config():
        return {"name": layer.name, "units": object()}  # not JSON-serialisable

    monkeypatch.setattr(layer, "get_config", bad_config)
    with pytest.raises(Exception):  # noqa: B017 - TypeError or ValueError are both fine
        model.save(target)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["target.keras"]


DISK_FULL_SCRIPT = r"""
import hashlib, json, resource, signal, sys
import numpy as np
from kerox import keras

target_k, target_w = sys.argv[1], sys.argv[2]
model = keras.Sequential([keras.Input((256,)), keras.layers.Dense(1024), keras.layers.Dense(256)])
model.save(target_k)
model.save_weights(target_w)
digests = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in (target_k, target_w)}
model.set_weights([w + 1.0 for w in model.get_weights()])
# The "disk" is full after 256 KiB per file (about 2 MiB would be needed).
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (256 * 1024, hard))
errors = {}
for path, save in ((target_k, model.save), (target_w, model.save_weights)):
    try:
        save(path)
        errors[path] = None
    except Exception as e:
        errors[path] = f"{type(e).__name__}: {e}"
print(json.dumps({"digests": digests, "errors": errors}), flush=True)
"""


def test_disk_full_keeps_previous_files(tmp_path):
    import hashlib

    target_k, target_w = tmp_path / "target.keras", tmp_path / "target.weights.h5"
    proc = subprocess.run(
        [sys.executable, "-c", DISK_FULL_SCRIPT, str(target_k), str(target_w)],
        capture_output=True,
        text=True,
        timeout=60,
        env=dict(os.environ, KEROX_NUM_THREADS="1"),
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    for path in (target_k, target_w):
        assert report["errors"][str(path)], f"saving {path.name} past the size limit did not fail"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        assert digest == report["digests"][str(path)], f"{path.name} changed by a failed save"
    assert sorted(os.listdir(tmp_path)) == ["target.keras", "target.weights.h5"]


# ---------------------------------------------------------------------------------------------
# Durability: SIGKILL in the middle of a save leaves the previous complete file
# ---------------------------------------------------------------------------------------------

KILL_SCRIPT = r"""
import sys, time
import numpy as np
from kerox import keras

mode, target = sys.argv[1], sys.argv[2]
# ~21M parameters (84 MB): one save takes a noticeable time.
model = keras.Sequential([keras.Input((1024,)), keras.layers.Dense(4096),
                          keras.layers.Dense(4096, use_bias=False)])
shapes = [w.shape for w in model.get_weights()]
save = model.save if mode == "keras" else model.save_weights
print("ready", flush=True)
i = 0
while True:
    # Every array of save number i holds the value i: a torn file would mix versions.
    model.set_weights([np.full(s, float(i), np.float32) for s in shapes])
    t = time.perf_counter()
    save(target)
    print(f"saved {i} {time.perf_counter() - t:.4f}", flush=True)
    i += 1
"""


def _kill_twin(kx):
    return kx.Sequential(
        [kx.Input((1024,)), kx.layers.Dense(4096), kx.layers.Dense(4096, use_bias=False)]
    )


def _reader(stream, q):
    for line in stream:
        q.put(line.strip())
    q.put(None)


def _wait_line(q, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        line = q.get(timeout=max(0.01, deadline - time.monotonic()))
        if line is None:
            raise AssertionError(f"child exited before printing {prefix!r}")
        if line.startswith(prefix):
            return line


def _temp_files(directory: Path, target: Path) -> list[str]:
    return [n for n in os.listdir(directory) if n != target.name]


def _poll(cond: Callable[[], bool], proc, what: str, timeout: float = 60.0) -> float:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        assert proc.poll() is None, f"child died: {proc.stderr.read()[-2000:]}"
        time.sleep(0.001)
    return time.monotonic()


def _kill_mid_save(mode: str, directory: Path, target: Path, delay_frac: float | None, rng):
    """Runs the child and SIGKILLs it during a save.

    `delay_frac` None: during the very first save, as soon as its temporary file appears.
    Otherwise the parent first times whole writes (the temporary file's lifetime, ~0.1 s) and
    then kills the next save about that fraction of the way through one. Returns (last save reported
    complete or -1, whether a temporary file was left behind, i.e. the kill hit a write).
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, mode, str(target)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ, KEROX_NUM_THREADS="1"),
    )
    q: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, q), daemon=True).start()
    saved = []
    try:
        _wait_line(q, "ready", 60)
        if delay_frac is not None:
            _wait_line(q, "saved 0", 60)
            saved.append(0)
            windows = []
            for _ in range(2):  # the shorter of two whole writes
                appeared = _poll(lambda: _temp_files(directory, target), proc, "a save starts")
                gone = _poll(lambda: not _temp_files(directory, target), proc, "the save ends")
                windows.append(gone - appeared)
            window = min(windows)
        _poll(lambda: _temp_files(directory, target), proc, "a save starts")
        if delay_frac is not None:
            time.sleep(rng.uniform(0.8, 1.0) * delay_frac * window)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    while True:
        try:
            line = q.get(timeout=5)
        except queue.Empty:
            break
        if line is None:
            break
        if line.startswith("saved "):
            saved.append(int(line.split()[1]))
    return (max(saved) if saved else -1), bool(_temp_files(directory, target))


def _check_consistent(kx, mode: str, target: Path, last_saved: int) -> None:
    if mode == "keras":
        with zipfile.ZipFile(target) as zf:
            assert zf.testzip() is None
            assert {CONFIG, WEIGHTS} <= set(zf.namelist())
            with h5py.File(io.BytesIO(zf.read(WEIGHTS)), "r") as f:
                assert f["layers/dense/vars/0"].shape == (1024, 4096)
        model = kx.models.load_model(target)
    else:
        with h5py.File(target, "r") as f:
            assert f["layers/dense_1/vars/0"].shape == (4096, 4096)
        model = _kill_twin(kx)
        model.load_weights(target)
    values = set()
    for w in model.get_weights():
        w = np.asarray(w)
        lo, hi = float(w.min()), float(w.max())
        assert lo == hi, f"a torn file: one array holds {lo} and {hi}"
        values.add(lo)
    assert len(values) == 1, f"arrays from different saves in one file: {values}"
    (k,) = values
    # The file is the last save reported complete, or the one after it if the kill landed
    # between its rename and its "saved" line.
    assert k in (last_saved, last_saved + 1), f"file holds save {k}, last completed {last_saved}"


@pytest.mark.parametrize("mode", ["keras", "weights"])
def test_sigkill_during_save_leaves_previous_complete_file(kx, tmp_path, mode):
    rng = random.Random(20240611 + (mode == "keras"))
    name = "target.keras" if mode == "keras" else "target.weights.h5"
    outcomes = []
    # None: killed during the very first save (no previous file); fractions: during a later
    # save, that far into the measured duration of a save.
    points = [None, 0.1, 0.4, 0.7] if mode == "keras" else [None, 0.2, 0.6]
    for i, frac in enumerate(points):
        directory = tmp_path / f"kill{i}"
        directory.mkdir()
        target = directory / name
        last, mid = _kill_mid_save(mode, directory, target, frac, rng)
        outcomes.append((frac, last, mid))
        if last < 0 and not target.exists():
            continue  # killed during the first save: no file, never a torn one
        _check_consistent(kx, mode, target, last)
        # A later save over the leftovers works.
        small = _kill_twin(kx)
        (small.save if mode == "keras" else small.save_weights)(target)
    # A kill that lands just after a rename proves nothing (but is not wrong either).
    mid_writes = sum(mid for _, _, mid in outcomes)
    assert mid_writes >= len(points) - 1, (
        f"only {mid_writes} kills landed during a write: (fraction, last save, mid-write) "
        f"{outcomes}"
    )


# ---------------------------------------------------------------------------------------------
# _atomic.atomic_path
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_path_permissions_like_a_normal_file(tmp_path, umask_027):
    normal = tmp_path / "normal.bin"
    with open(normal, "wb") as f:
        f.write(b"x")
    target = tmp_path / "atomic.bin"
    with _atomic.atomic_path(target) as tmp:
        with open(tmp, "wb") as f:
            f.write(b"x")
    assert _mode(target) == _mode(normal) == 0o640


def test_saved_files_have_normal_permissions(kx, tmp_path, umask_027):
    normal = tmp_path / "normal.bin"
    normal.write_bytes(b"x")
    model = _small_model(kx, 0)
    model.save(tmp_path / "m.keras")
    model.save_weights(tmp_path / "m.weights.h5")
    assert _mode(tmp_path / "m.keras") == _mode(normal)
    assert _mode(tmp_path / "m.weights.h5") == _mode(normal)


def test_atomic_path_failure_keeps_target(tmp_path):
    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with _atomic.atomic_path(target) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"new, half writ")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["t.bin"]


def test_atomic_path_replaces_and_cleans_up(tmp_path):
    target = tmp_path / "sub" / "t.bin"
    with _atomic.atomic_path(target) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path / "sub")  # beside the target
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(tmp_path / "sub") == ["t.bin"]


def test_keras_reads_what_a_failed_save_left(kx, tmp_path):
    """After a failed save the previous file is still a valid archive for real Keras too."""
    keras = keras_or_skip()
    target = tmp_path / "m.keras"
    model = _small_model(kx, 3)
    model.save(target)
    with pytest.raises(ValueError):
        model.save(tmp_path / "m.txt")
    restored = keras.models.load_model(target)
    for a, e in zip(restored.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(e))


def test_every_layer_class_is_registered_for_loading():
    """Each layer class registers itself (`@register` in layers.py); a class added without
    it would be one that saves but does not load."""
    from kerox.keras import layers

    exported = {
        name: cls
        for name in layers.__all__
        if isinstance(cls := getattr(layers, name), type)
        and issubclass(cls, layers.Layer)
        and cls is not layers.Layer
    }
    assert layers.LAYER_CLASSES == exported
    assert layers.INERT_CONFIG["Dense"] == {"quantization_config": None, "lora_enabled": False}
