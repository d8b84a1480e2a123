"""kerox: Keras for dense networks, with a Rust engine underneath.

``import kerox as tf`` then ``tf.keras.Sequential(...)``, or ``from kerox import keras``.
"""

from __future__ import annotations

import os as _os

from . import _core, config, keras

__version__ = _core.version()

__all__ = ["__version__", "config", "keras"]

if hasattr(_os, "register_at_fork"):
    # The child of a fork has none of the parent's worker threads: start a fresh pool there.
    _os.register_at_fork(after_in_child=_core._after_fork_in_child)
