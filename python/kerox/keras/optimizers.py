"""Optimizers (`keras.optimizers`): Keras 3's SGD with clipping and decoupled weight decay.

Clipping and weight decay live once in the base :class:`Optimizer` (validated there, applied by
the engine in Keras's order: clip → weight decay → update), so later optimizers inherit them.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .layers import auto_name

__all__ = ["SGD", "Optimizer", "get"]


class _SlotVariable:
    """Shape-only view of an optimizer variable (for ``summary()`` and introspection)."""

    def __init__(self, name: str, shape: tuple[int, ...], read: Any) -> None:
        self.name = name
        self.shape = shape
        self._read = read

    def numpy(self) -> np.ndarray:
        """Current value."""
        return self._read()


class Optimizer:
    """Base optimizer: learning rate, clipping (exactly one of ``clipnorm``, ``clipvalue``,
    ``global_clipnorm``) and decoupled weight decay, with Keras 3's validation."""

    def __init__(
        self,
        learning_rate: float,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if kwargs.pop("decay", None) is not None:
            warnings.warn(
                "Argument `decay` is no longer supported and will be ignored.", stacklevel=3
            )
        if kwargs:
            raise ValueError(f"Argument(s) not recognized: {kwargs}")
        if sum(a is not None for a in (clipnorm, clipvalue, global_clipnorm)) > 1:
            raise ValueError(
                "Only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set. "
                f"Received: clipnorm={clipnorm}, clipvalue={clipvalue}, "
                f"global_clipnorm={global_clipnorm}"
            )
        for arg, v in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
            ("weight_decay", weight_decay),
        ):
            if v is not None and (
                isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer))
            ):
                raise TypeError(f"`{arg}` must be a number or None. Received: {arg}={v!r}")
            if v is not None and not np.isfinite(v):
                raise ValueError(f"`{arg}` must be finite. Received: {arg}={v}")
        if use_ema:
            raise ValueError("kerox does not support `use_ema=True` yet.")
        if loss_scale_factor is not None:
            raise ValueError("kerox does not support `loss_scale_factor` yet.")
        if gradient_accumulation_steps:
            if not gradient_accumulation_steps >= 2:
                raise ValueError(
                    "`gradient_accumulation_steps` must be an integer >= 2. Received: "
                    f"gradient_accumulation_steps={gradient_accumulation_steps}"
                )
            raise ValueError("kerox does not support `gradient_accumulation_steps` yet.")
        if callable(learning_rate):
            raise ValueError(
                "kerox does not support learning-rate schedules yet; pass a float (and use "
                "callbacks such as ReduceLROnPlateau to change it)."
            )
        if not isinstance(learning_rate, float):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                "value and returns the corresponding learning rate value). Received instead: "
                f"learning_rate={learning_rate}"
            )
        # Keras names optimizers like layers: the default ("SGD") becomes "sgd", "sgd_1", ...
        if name is None or name == type(self).__name__:
            name = auto_name(type(self).__name__)
        self.name = name
        # Stored as float32, like Keras's learning-rate variable.
        self._learning_rate = float(np.float32(learning_rate))
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = False
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = None
        self.gradient_accumulation_steps = None
        self._engine: Any = None
        self._iterations = 0
        self._trainable_shapes: list[tuple[int, ...]] = []
        self._pending_slots: list[np.ndarray] | None = None

    # -- state shared with the engine --------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The current learning rate (float32 precision, as Keras stores it)."""
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value: float) -> None:
        value = float(np.float32(value))
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"`learning_rate` must be a non-negative float. Received: {value}")
        self._learning_rate = value
        if self._engine is not None:
            self._engine.set_learning_rate(value)

    lr = learning_rate

    @property
    def iterations(self) -> int:
        """Optimizer steps taken."""
        if self._engine is not None:
            return int(self._engine.iterations)
        return self._iterations

    @property
    def built(self) -> bool:
        """True once the optimizer has state (after the first training step)."""
        return self._engine is not None

    def _bind(self, engine: Any, trainable_shapes: list[tuple[int, ...]]) -> None:
        if self._engine is not None and self._engine is not engine:
            self._unbind()
        self._engine = engine
        self._trainable_shapes = trainable_shapes
        engine.iterations = self._iterations
        engine.set_learning_rate(self._learning_rate)
        pending, self._pending_slots = self._pending_slots, None
        if (
            pending is not None
            and self._slot_names()
            and [tuple(s.shape) for s in pending] == list(trainable_shapes)
        ):
            for i, s in zip(self._trainable_engine_indices(), pending):
                engine.set_slot(i, np.ascontiguousarray(s, dtype=np.float32))

    def _unbind(self) -> None:
        if self._engine is not None:
            self._iterations = int(self._engine.iterations)
            # Keep the momentum state: a rebuilt engine with the same variables resumes it.
            self._pending_slots = self._slot_values()
            self._engine = None

    def _trainable_engine_indices(self) -> list[int]:
        assert self._engine is not None
        return [i for i, (_, trainable) in enumerate(self._engine.variables()) if trainable]

    def _slot_values(self, model: Any = None) -> list[np.ndarray] | None:
        """Momentum slots in Keras order (None while the optimizer has no state yet)."""
        if not self._slot_names():
            return []
        if self._engine is not None:
            out = []
            for i in self._trainable_engine_indices():
                s = self._engine.get_slot(i)
                shape = tuple(self._engine.variables()[i][0])
                out.append(np.zeros(shape, np.float32) if s is None else np.asarray(s))
            return out
        if self._pending_slots is not None:
            return [np.array(s, copy=True) for s in self._pending_slots]
        return None

    def _set_state(self, iterations: int, learning_rate: float, slots: Any) -> None:
        """Restores iteration count, learning rate and slots (from a saved file)."""
        self.learning_rate = learning_rate
        self._iterations = int(iterations)
        if self._engine is not None:
            self._engine.iterations = self._iterations
            if slots is not None and self._slot_names():
                for i, s in zip(self._trainable_engine_indices(), slots):
                    self._engine.set_slot(i, np.ascontiguousarray(s, dtype=np.float32))
        else:
            self._pending_slots = list(slots) if slots is not None else None

    def _slot_names(self) -> list[str]:
        return []

    @property
    def variables(self) -> list[Any]:
        """Keras order: iteration, learning_rate, then slots per trainable variable."""
        out: list[Any] = [
            _SlotVariable("iteration", (), lambda: np.int64(self.iterations)),
            _SlotVariable("learning_rate", (), lambda: np.float32(self.learning_rate)),
        ]
        slots = self._slot_values()
        if slots:
            per = len(slots) // max(1, len(self._slot_names()))
            for k, value in enumerate(slots):
                name = self._slot_names()[k // per] if per else "slot"
                out.append(_SlotVariable(name, tuple(value.shape), lambda v=value: v))
        return out

    def _engine_spec(self) -> dict[str, Any]:
        raise NotImplementedError

    def _clip_spec(self) -> tuple[str, float]:
        # Keras 3 treats 0 (or None) as "no clipping"; first true branch wins.
        if self.clipnorm and self.clipnorm > 0:
            return "norm", float(self.clipnorm)
        if self.global_clipnorm and self.global_clipnorm > 0:
            return "global_norm", float(self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            return "value", float(self.clipvalue)
        return "none", 0.0

    def get_config(self) -> dict[str, Any]:
        """Keras 3 configuration."""
        return {
            "name": self.name,
            "learning_rate": float(np.float32(self.learning_rate)),
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": False,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": None,
            "gradient_accumulation_steps": None,
        }


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as Keras 3's ``SGD``.

    Update rules, per variable ``w`` with gradient ``g`` (after clipping and weight decay)::

        momentum == 0:  w = w - learning_rate * g
        momentum > 0:   m = momentum * m - learning_rate * g;  w = w + m
        nesterov:       m = momentum * m - learning_rate * g
                        w = w + momentum * m - learning_rate * g
    """

    def __init__(
        self,
        learning_rate: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float | None = None,
        clipnorm: float | None = None,
        clipvalue: float | None = None,
        global_clipnorm: float | None = None,
        use_ema: bool = False,
        ema_momentum: float = 0.99,
        ema_overwrite_frequency: int | None = None,
        loss_scale_factor: float | None = None,
        gradient_accumulation_steps: int | None = None,
        name: str = "SGD",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            weight_decay=weight_decay,
            clipnorm=clipnorm,
            clipvalue=clipvalue,
            global_clipnorm=global_clipnorm,
            use_ema=use_ema,
            ema_momentum=ema_momentum,
            ema_overwrite_frequency=ema_overwrite_frequency,
            loss_scale_factor=loss_scale_factor,
            gradient_accumulation_steps=gradient_accumulation_steps,
            name=name,
            **kwargs,
        )
        if not isinstance(momentum, float) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _slot_names(self) -> list[str]:
        return ["momentum"] if self.momentum != 0 else []

    def _engine_spec(self) -> dict[str, Any]:
        clip, value = self._clip_spec()
        return {
            "learning_rate": self.learning_rate,
            "momentum": float(self.momentum),
            "nesterov": self.nesterov,
            "weight_decay": None if self.weight_decay is None else float(self.weight_decay),
            "clip": clip,
            "clip_value": value,
        }

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return cfg


def get(identifier: Any) -> Optimizer:
    """Resolves ``"sgd"``, an optimizer instance or class, or a ``{"class_name"...}`` dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict) and identifier.get("class_name") in ("SGD", "sgd"):
        cfg = dict(identifier.get("config") or {})
        return SGD(**cfg)
    if isinstance(identifier, str):
        if identifier.lower() == "sgd":
            return SGD()
        if identifier.lower() in ("adam", "adamw", "rmsprop", "adagrad", "adadelta", "nadam"):
            raise ValueError(
                f"kerox does not implement the `{identifier}` optimizer yet; use "
                "keras.optimizers.SGD (optionally with momentum)."
            )
    raise ValueError(f"Could not interpret optimizer identifier: {identifier}")
