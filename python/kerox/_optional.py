"""Optional dependencies: each feature that needs one imports it here, when first used.

``import kerox`` loads none of them (a test checks), so the import stays light; a feature
whose package is missing raises an ImportError naming the extra that installs it
(``pip install "kerox[onnx]"``). The extras are declared in ``pyproject.toml``; this table
and that one name the same packages (a test checks that too).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
from types import ModuleType

__all__ = ["EXTRAS", "require", "status"]

#: extra -> (import name, distribution name, what it is for), one row per package.
EXTRAS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "onnx": (("onnx", "onnx", "model.export(format='onnx')"),),
    "mpi": (("mpi4py", "mpi4py", "data-parallel training over MPI"),),
    "tensorboard": (("tensorboard", "tensorboard", "TensorBoard event files"),),
    "plot": (("matplotlib", "matplotlib", "plots of training and gradients"),),
}

#: Packages every install has, loaded lazily too (saving needs h5py).
REQUIRED = (("h5py", "h5py", "saving and loading .keras / .h5 files"),)


def _row(module: str) -> tuple[str, tuple[str, str, str]]:
    for extra, rows in EXTRAS.items():
        for row in rows:
            if row[0] == module:
                return extra, row
    raise KeyError(f"{module!r} is not an optional dependency of kerox")


def require(module: str) -> ModuleType:
    """Imports the optional package ``module``; if it is missing, raises an ImportError that
    says which feature needs it and the ``pip install "kerox[extra]"`` that brings it."""
    extra, (_, dist, feature) = _row(module)
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{feature[0].upper()}{feature[1:]} needs the `{dist}` package, which is not "
            f'installed: `pip install "kerox[{extra}]"` (or `pip install {dist}`).'
        ) from e


def status() -> list[tuple[str, str, str | None]]:
    """(package, what needs it, installed version or None) for every optional package and
    h5py, without importing them."""
    rows = [(m, d, f) for group in EXTRAS.values() for (m, d, f) in group]
    out = []
    for module, dist, feature in [*REQUIRED, *rows]:
        version = None
        if importlib.util.find_spec(module) is not None:
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                version = "installed"
        out.append((module, feature, version))
    return out
