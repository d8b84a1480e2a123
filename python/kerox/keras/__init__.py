"""`kerox.keras`: the Keras 3 API for dense networks, trained by kerox's Rust engine."""

from . import (
    activations,
    backend,
    callbacks,
    config,
    initializers,
    layers,
    losses,
    metrics,
    models,
    optimizers,
    regularizers,
    saving,
    utils,
)
from .layers import Input, Layer, Variable
from .models import Model, Sequential
from .saving import KERAS_FORMAT_VERSION

#: The Keras API version kerox follows (also written into saved files as ``keras_version``);
#: a constant, since kerox does not depend on Keras at runtime.
__version__ = KERAS_FORMAT_VERSION

__all__ = [
    "Input",
    "Layer",
    "Model",
    "Sequential",
    "Variable",
    "__version__",
    "activations",
    "backend",
    "callbacks",
    "config",
    "datasets",
    "initializers",
    "layers",
    "losses",
    "metrics",
    "models",
    "optimizers",
    "regularizers",
    "saving",
    "utils",
]


def __getattr__(name: str) -> object:
    # `keras.datasets` is imported on first use (its loaders pull in pathlib, hashlib, gzip
    # and pickle, which `import kerox` need not pay for).
    if name == "datasets":
        import importlib

        return importlib.import_module(f"{__name__}.datasets")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
