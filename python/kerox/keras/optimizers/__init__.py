"""Optimizers (`keras.optimizers`): Keras 3's optimizers, each an update rule of the engine.

Everything the optimizers share lives once in the base :class:`Optimizer`, as in Keras's
``BaseOptimizer``: the learning rate (a float, a schedule or a callable), clipping (one of
``clipnorm``, ``clipvalue``, ``global_clipnorm``), decoupled weight decay, the moving average of
the weights (``use_ema``), gradient accumulation, the iteration counter, the optimizer's
variables in Keras's order (for saving) and their validation. A subclass declares its
constructor (Keras's arguments and defaults), its rule's settings for the engine and its slot
names; the engine applies everything in Keras's order (`kerox-core/src/optim`).

Adding an optimizer: its class here (with ``_RULE`` naming the engine's rule) and one line in
``_CLASSES``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..layers import auto_name
from . import schedules
from .schedules import LearningRateSchedule

__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]


class OptimizerVariable:
    """A scalar or slot variable of an optimizer, shaped like Keras's ``keras.Variable``:
    ``numpy()``, ``value``, ``assign``, and conversion to numbers and arrays."""

    def __init__(
        self,
        path: str,
        shape: tuple[int, ...],
        dtype: str,
        read: Callable[[], Any],
        write: Callable[[Any], None] | None = None,
    ) -> None:
        self.path = path
        self.name = path.rsplit("/", 1)[-1]
        self.shape = shape
        self.dtype = dtype
        self.trainable = False
        self._read = read
        self._write = write

    def numpy(self) -> np.ndarray:
        """The current value (a copy)."""
        return np.array(self._read(), dtype=self.dtype)

    @property
    def value(self) -> np.ndarray:
        """The current value."""
        return self.numpy()

    def assign(self, value: Any) -> OptimizerVariable:
        """Sets the value (where the optimizer allows it: ``learning_rate``, ``iterations``)."""
        if self._write is None:
            raise ValueError(f"The optimizer variable '{self.path}' cannot be assigned.")
        self._write(value)
        return self

    def assign_add(self, delta: Any) -> OptimizerVariable:
        """Adds ``delta`` to the value."""
        return self.assign(self.numpy() + np.asarray(delta, dtype=self.dtype))

    def assign_sub(self, delta: Any) -> OptimizerVariable:
        """Subtracts ``delta`` from the value."""
        return self.assign(self.numpy() - np.asarray(delta, dtype=self.dtype))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        a = self.numpy()
        return a if dtype is None else a.astype(dtype)

    def __float__(self) -> float:
        return float(self.numpy())

    def __int__(self) -> int:
        return int(self.numpy())

    def __index__(self) -> int:
        if self.dtype.startswith("int"):
            return int(self.numpy())
        raise TypeError(f"'{self.path}' is a float variable")

    def __bool__(self) -> bool:
        return bool(self.numpy())

    def __format__(self, spec: str) -> str:
        return format(self.numpy()[()], spec)

    def __repr__(self) -> str:
        return (
            f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype}, "
            f"value={self.numpy()}>"
        )

    __hash__ = None  # type: ignore[assignment]


def _binary(op: Callable[[Any, Any], Any], reflected: bool = False) -> Callable[..., Any]:
    def f(self: OptimizerVariable, other: Any) -> Any:
        a, b = self.numpy()[()], np.asarray(other)[()]
        return op(b, a) if reflected else op(a, b)

    return f


for _name, _op in {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "truediv": lambda a, b: a / b,
    "floordiv": lambda a, b: a // b,
    "mod": lambda a, b: a % b,
    "pow": lambda a, b: a**b,
}.items():
    setattr(OptimizerVariable, f"__{_name}__", _binary(_op))
    setattr(OptimizerVariable, f"__r{_name}__", _binary(_op, reflected=True))
for _name, _op in {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
}.items():
    setattr(OptimizerVariable, f"__{_name}__", _binary(_op))
OptimizerVariable.__neg__ = lambda self: -self.numpy()[()]  # type: ignore[attr-defined]
OptimizerVariable.__abs__ = lambda self: abs(self.numpy()[()])  # type: ignore[attr-defined]


def _number(arg: str, v: Any, *, lo: float | None = None, hi: float | None = None) -> float:
    """A finite real number (optionally within [lo, hi]), else TypeError/ValueError."""
    if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)):
        raise TypeError(f"`{arg}` must be a number. Received: {arg}={v!r}")
    v = float(v)
    if not math.isfinite(v):
        raise ValueError(f"`{arg}` must be finite. Received: {arg}={v}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise ValueError(f"`{arg}` must be in the range [{lo}, {hi}]. Received: {arg}={v}")
    return v


def _unit(arg: str, v: Any) -> float:
    """A decay rate in [0, 1) (``beta_1``, ``rho``, ...)."""
    v = _number(arg, v)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"`{arg}` must be a float in [0, 1). Received: {arg}={v}")
    return v


def _positive(arg: str, v: Any) -> float:
    v = _number(arg, v)
    if v <= 0:
        raise ValueError(f"`{arg}` must be a float above 0. Received: {arg}={v}")
    return v


class Optimizer:
    """Base optimizer: learning rate, clipping, decoupled weight decay, EMA and gradient
    accumulation, with Keras 3's arguments, defaults and validation (plus refusing values
    Keras silently accepts but that make no sense, such as a negative ``clipnorm``).

    Every optimizer takes these keyword arguments (``weight_decay``, ``clipnorm``,
    ``clipvalue``, ``global_clipnorm``, ``use_ema``, ``ema_momentum``,
    ``ema_overwrite_frequency``, ``loss_scale_factor``, ``gradient_accumulation_steps``,
    ``name``) besides its own."""

    #: The engine's name of the update rule (see ``kerox-core/src/optim``).
    _RULE = ""

    def __init__(
        self,
        learning_rate: Any,
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
            if v is not None:
                _number(arg, v)
        for arg, v in (
            ("clipnorm", clipnorm),
            ("clipvalue", clipvalue),
            ("global_clipnorm", global_clipnorm),
        ):
            # Keras accepts a negative threshold (turning descent into ascent); 0 means off.
            if v is not None and v < 0:
                raise ValueError(f"`{arg}` must be >= 0 (0 disables it). Received: {arg}={v}")
        if weight_decay is not None and weight_decay < 0:
            raise ValueError(f"`weight_decay` must be >= 0. Received: weight_decay={weight_decay}")
        if not isinstance(use_ema, (bool, np.bool_)):
            raise TypeError(f"`use_ema` must be a bool. Received: use_ema={use_ema!r}")
        _number("ema_momentum", ema_momentum, lo=0.0, hi=1.0)
        if ema_overwrite_frequency is not None and (
            isinstance(ema_overwrite_frequency, bool)
            or not isinstance(ema_overwrite_frequency, (int, np.integer))
            or ema_overwrite_frequency < 1
        ):
            raise ValueError(
                "`ema_overwrite_frequency` must be a positive integer or None. Received: "
                f"ema_overwrite_frequency={ema_overwrite_frequency!r}"
            )
        if loss_scale_factor is not None:
            _positive("loss_scale_factor", loss_scale_factor)
        if gradient_accumulation_steps is not None and (
            isinstance(gradient_accumulation_steps, bool)
            or not isinstance(gradient_accumulation_steps, (int, np.integer))
            or gradient_accumulation_steps < 2
        ):
            raise ValueError(
                "`gradient_accumulation_steps` must be an integer >= 2. Received: "
                f"gradient_accumulation_steps={gradient_accumulation_steps}"
            )
        # Keras names optimizers like layers: the default ("Adam") becomes "adam", "adam_1", ...
        if name is None or name == type(self).__name__:
            name = auto_name(type(self).__name__)
        self.name = name
        self._engine: Any = None
        self._schedule: LearningRateSchedule | Callable[[], Any] | None = None
        self._learning_rate = 0.0
        self._set_learning_rate(learning_rate, initial=True)
        self.weight_decay = weight_decay
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.use_ema = bool(use_ema)
        self.ema_momentum = ema_momentum
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.loss_scale_factor = loss_scale_factor
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self._iterations = 0
        self._trainable: list[Any] = []
        # State kept while no engine holds it: slots in Keras's file order, extra scalars.
        self._pending_slots: list[np.ndarray] | None = None
        self._pending_extra: list[float] | None = None

    # -- the learning rate -------------------------------------------------------------------
    def _set_learning_rate(self, value: Any, initial: bool = False) -> None:
        if isinstance(value, LearningRateSchedule) or (
            callable(value) and not isinstance(value, OptimizerVariable)
        ):
            self._schedule = value
            return
        if isinstance(value, OptimizerVariable):
            value = float(value)
        if initial and not isinstance(value, (float, np.floating)):
            raise ValueError(
                "Argument `learning_rate` should be float, or an instance of "
                "LearningRateSchedule, or a callable (that takes in the current iteration "
                "value and returns the corresponding learning rate value). Received instead: "
                f"learning_rate={value}"
            )
        if self._schedule is not None and not initial:
            raise TypeError(
                "This optimizer was created with a `LearningRateSchedule` object as its "
                "`learning_rate` constructor argument, hence its learning rate is not "
                "settable. If you need the learning rate to be settable, you should "
                "instantiate the optimizer with a float `learning_rate` argument."
            )
        try:
            v = float(np.float32(np.asarray(value, dtype=np.float64)))
        except (TypeError, ValueError):
            raise TypeError(
                f"`learning_rate` must be a number. Received: learning_rate={value!r}"
            ) from None
        if not math.isfinite(v) or v < 0:
            raise ValueError(
                "`learning_rate` must be a finite non-negative float. Received: "
                f"learning_rate={value}"
            )
        # Stored as float32, like Keras's learning-rate variable.
        self._learning_rate = v
        if self._engine is not None:
            self._engine.set_learning_rate(v)

    @property
    def learning_rate(self) -> Any:
        """The learning rate: a variable-like scalar (``numpy()``, ``assign()``, ``float()``),
        or, with a schedule, its float32 value at the current step (not settable)."""
        if self._schedule is not None:
            return np.float32(self._lr_values(self._raw_iterations(), 1)[0])
        return OptimizerVariable(
            f"{self.name}/learning_rate",
            (),
            "float32",
            lambda: self._learning_rate,
            self._set_learning_rate,
        )

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        self._set_learning_rate(value)

    lr = learning_rate

    def _lr_values(self, first_step: int, count: int) -> np.ndarray | None:
        """The learning rates of steps ``first_step ..`` (raw iteration numbers) as float32,
        for a schedule or callable; None for a fixed rate."""
        s = self._schedule
        if s is None:
            return None
        if isinstance(s, LearningRateSchedule):
            return s._values(first_step, count)
        values = np.empty(count, np.float32)
        for k in range(count):
            v = np.float32(np.asarray(s()))
            if not np.isfinite(v) or v < 0:
                raise ValueError(
                    f"the learning-rate callable returned {v} at step {first_step + k}; it "
                    "must return a finite non-negative float"
                )
            values[k] = v
        return values

    # -- iterations ---------------------------------------------------------------------------
    def _raw_iterations(self) -> int:
        if self._engine is not None:
            return int(self._engine.iterations)
        return self._iterations

    def _set_raw_iterations(self, value: Any) -> None:
        it = int(np.asarray(value))
        if it < 0:
            raise ValueError(f"`iterations` must be >= 0. Received: {it}")
        self._iterations = it
        if self._engine is not None:
            self._engine.iterations = it

    @property
    def iterations(self) -> OptimizerVariable:
        """Optimizer updates made (with gradient accumulation, every k-th step is one)."""
        k = self.gradient_accumulation_steps or 1
        return OptimizerVariable(
            f"{self.name}/iteration",
            (),
            "int32",
            lambda: self._raw_iterations() // k,
            lambda v: self._set_raw_iterations(int(np.asarray(v)) * k),
        )

    @property
    def built(self) -> bool:
        """True once the optimizer has state (after the first training step)."""
        return self._engine is not None or self._pending_slots is not None

    # -- slots --------------------------------------------------------------------------------
    def _rule_slot_groups(self) -> list[list[str]]:
        """The rule's slots as Keras creates them: one list per ``add_optimizer_variables``
        call, names interleaved per variable within a list (Adam: ``[[momentum, velocity]]``)."""
        return []

    def _extra_variable_names(self) -> list[str]:
        """Optimizer-wide variables a rule creates after its slots (Nadam's ``u_product``)."""
        return []

    def _slot_groups(self) -> list[list[str]]:
        groups = []
        if self.use_ema:
            groups.append(["average"])
        if self.gradient_accumulation_steps:
            groups.append(["gradient_accumulator"])
        return groups + self._rule_slot_groups()

    def _slot_names(self) -> list[str]:
        """Slot names per variable in the engine's order (the groups, flattened)."""
        return [n for g in self._slot_groups() for n in g]

    def _slot_layout(self, n_vars: int) -> list[tuple[int, int]]:
        """Keras's order of the slot variables as (trainable variable, engine slot index)."""
        out = []
        k0 = 0
        for group in self._slot_groups():
            for v in range(n_vars):
                for j in range(len(group)):
                    out.append((v, k0 + j))
            k0 += len(group)
        return out

    def _bind(self, engine: Any, trainable: list[Any]) -> None:
        if self._engine is not None and self._engine is not engine:
            self._unbind()
        self._engine = engine
        self._trainable = list(trainable)
        if engine.slot_count != len(self._slot_names()):
            raise RuntimeError(
                f"internal error: the engine keeps {engine.slot_count} slots per variable, "
                f"{type(self).__name__} declares {self._slot_names()}"
            )
        engine.iterations = self._iterations
        engine.set_learning_rate(self._learning_rate)
        slots, self._pending_slots = self._pending_slots, None
        extra, self._pending_extra = self._pending_extra, None
        shapes = [tuple(v.shape) for v in trainable]
        layout = self._slot_layout(len(shapes))
        if slots is not None and [tuple(s.shape) for s in slots] == [shapes[v] for v, _ in layout]:
            idx = self._trainable_engine_indices()
            for (v, k), s in zip(layout, slots):
                engine.set_slot(idx[v], k, np.ascontiguousarray(s, dtype=np.float32))
            for value in extra or []:
                engine.rule_state = float(value)

    def _unbind(self) -> None:
        if self._engine is not None:
            self._iterations = int(self._engine.iterations)
            # Keep the state: a rebuilt engine with the same variables resumes it.
            self._pending_slots = self._slot_values()
            self._pending_extra = self._extra_values()
            self._engine = None

    def _trainable_engine_indices(self) -> list[int]:
        assert self._engine is not None
        return [i for i, (_, trainable) in enumerate(self._engine.variables()) if trainable]

    def _slot_values(self, model: Any = None) -> list[np.ndarray] | None:
        """The slot variables in Keras's order (None while the optimizer has no state yet)."""
        if self._engine is not None:
            idx = self._trainable_engine_indices()
            return [
                np.asarray(self._engine.get_slot(idx[v], k)) for v, k in self._slot_layout(len(idx))
            ]
        if self._pending_slots is not None:
            return [np.array(s, copy=True) for s in self._pending_slots]
        return None

    def _extra_values(self) -> list[float] | None:
        if not self._extra_variable_names():
            return []
        if self._engine is not None:
            return [float(np.float32(self._engine.rule_state))]
        return None if self._pending_extra is None else list(self._pending_extra)

    def _state_values(self) -> list[np.ndarray]:
        """Every optimizer variable's value, in Keras's order: ``iteration``,
        ``learning_rate`` (unless a schedule), the slots, then extra variables."""
        values = [np.asarray(self._raw_iterations(), dtype=np.int64)]
        if self._schedule is None:
            values.append(np.float32(self._learning_rate))
        slots = self._slot_values()
        if slots is not None:
            values.extend(np.asarray(s, dtype=np.float32) for s in slots)
            extra = self._extra_values()
            if extra:
                values.extend(np.float32(e) for e in extra)
        return values

    def _state_names(self, trainable: list[Any]) -> list[str]:
        """Keras's variable names, in the order of :meth:`_state_values` (built state)."""
        names = [f"{self.name}/iteration"]
        if self._schedule is None:
            names.append(f"{self.name}/learning_rate")
        groups = self._slot_groups()
        for group in groups:
            for v in trainable:
                for slot in group:
                    names.append(f"{self.name}/{v.path.replace('/', '_')}_{slot}")
        names.extend(self._extra_variable_names())
        return names

    def _load_state(
        self, arrays: list[np.ndarray], trainable: list[Any], where: str, dry_run: bool = False
    ) -> str | None:
        """Restores saved optimizer variables (Keras's order); with ``dry_run``, only checks
        them. Returns a reason when the file's variables do not fit this optimizer (the
        caller warns or refuses), after changing nothing; a value that cannot be right raises
        ValueError, also after changing nothing."""
        shapes = [tuple(v.shape) for v in trainable]
        layout = self._slot_layout(len(shapes))
        has_lr = self._schedule is None
        n_extra = len(self._extra_variable_names())
        head = 1 + int(has_lr)
        built = head + len(layout) + n_extra
        if len(arrays) not in (head, built):
            return (
                f"Skipping variable loading for optimizer '{self.name}', because it has "
                f"{built} variables whereas the saved optimizer has {len(arrays)} variables."
            )
        it = arrays[0]
        if np.shape(it) != () or (has_lr and np.shape(arrays[1]) != ()):
            raise ValueError(f"{where}: iteration and learning rate must be scalars.")
        iterations = int(it)
        if iterations < 0:
            raise ValueError(f"{where}: invalid iteration {iterations}.")
        lr = float(arrays[1]) if has_lr else None
        if lr is not None and (not math.isfinite(lr) or lr < 0):
            raise ValueError(f"{where}: invalid learning rate {lr}.")
        slots = [np.asarray(a) for a in arrays[head : head + len(layout)]]
        for i, (s, (v, _)) in enumerate(zip(slots, layout)):
            if tuple(s.shape) != shapes[v]:
                raise ValueError(
                    f"{where}/{head + i}: shape mismatch: the optimizer expects {shapes[v]}, "
                    f"the file has {tuple(s.shape)}."
                )
            if s.dtype.kind not in "fiu":
                raise ValueError(f"{where}/{head + i}: expected numbers, found {s.dtype}.")
        extra = [float(np.asarray(a)) for a in arrays[head + len(layout) :]]
        if any(not math.isfinite(e) for e in extra):
            raise ValueError(f"{where}: optimizer state {extra} is not finite.")
        if dry_run:
            return None
        if lr is not None:
            self.learning_rate = lr
        self._set_raw_iterations(iterations)
        if len(arrays) == head:
            return None
        slots = [s.astype(np.float32) for s in slots]
        if self._engine is not None:
            idx = self._trainable_engine_indices()
            for (v, k), s in zip(layout, slots):
                self._engine.set_slot(idx[v], k, np.ascontiguousarray(s))
            for e in extra:
                self._engine.rule_state = e
        else:
            self._pending_slots = slots
            self._pending_extra = extra
        return None

    @property
    def variables(self) -> list[OptimizerVariable]:
        """The optimizer's variables in Keras's order (as saved in files)."""
        values = self._state_values()
        names = self._state_names(self._trainable)
        if len(names) != len(values):  # not built yet: iteration (and learning rate) only
            names = names[: len(values)]
        out = []
        for n, v in zip(names, values):
            path = n if "/" in n else f"{self.name}/{n}"
            out.append(OptimizerVariable(path, tuple(np.shape(v)), str(v.dtype), lambda v=v: v))
        # The `iteration` variable counts steps (with gradient accumulation, `iterations`
        # counts updates: this divided by the accumulation steps).
        out[0] = OptimizerVariable(
            f"{self.name}/iteration", (), "int32", self._raw_iterations, self._set_raw_iterations
        )
        return out

    # -- the engine ---------------------------------------------------------------------------
    def _rule_settings(self) -> dict[str, Any]:
        """The rule's settings for the engine (Keras's argument names)."""
        return {}

    def _clip_spec(self) -> tuple[str, float]:
        # Keras 3 treats 0 (or None) as "no clipping"; first true branch wins.
        if self.clipnorm and self.clipnorm > 0:
            return "norm", float(self.clipnorm)
        if self.global_clipnorm and self.global_clipnorm > 0:
            return "global_norm", float(self.global_clipnorm)
        if self.clipvalue and self.clipvalue > 0:
            return "value", float(self.clipvalue)
        return "none", 0.0

    def _engine_spec(self) -> dict[str, Any]:
        clip, value = self._clip_spec()
        spec = {
            "rule": self._RULE,
            "learning_rate": self._learning_rate,
            "weight_decay": None if self.weight_decay is None else float(self.weight_decay),
            "clip": clip,
            "clip_value": value,
            "ema_momentum": float(self.ema_momentum) if self.use_ema else None,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }
        spec.update(self._rule_settings())
        return spec

    def finalize_variable_values(self, var_list: Any = None) -> None:
        """With ``use_ema``, the weights become their moving averages (``fit`` calls this
        at its end, as Keras does)."""
        if self.use_ema and self._engine is not None:
            self._engine.finalize_ema()

    def exclude_from_weight_decay(self, var_list: Any = None, var_names: Any = None) -> None:
        """Not supported by kerox yet: raises ValueError (decay then applies to every
        trainable variable, so silently ignoring it would give other numbers)."""
        raise ValueError(
            "kerox does not support `exclude_from_weight_decay` yet; weight decay applies "
            "to every trainable variable."
        )

    # -- config -------------------------------------------------------------------------------
    def get_config(self) -> dict[str, Any]:
        """Keras 3 configuration."""
        if isinstance(self._schedule, LearningRateSchedule):
            lr: Any = schedules.serialize(self._schedule)
        elif self._schedule is not None:
            raise ValueError(
                "kerox cannot serialize an optimizer whose learning rate is a plain callable; "
                "use a keras.optimizers.schedules.LearningRateSchedule."
            )
        else:
            lr = float(np.float32(self._learning_rate))
        return {
            "name": self.name,
            "learning_rate": lr,
            "weight_decay": self.weight_decay,
            "clipnorm": self.clipnorm,
            "global_clipnorm": self.global_clipnorm,
            "clipvalue": self.clipvalue,
            "use_ema": self.use_ema,
            "ema_momentum": self.ema_momentum,
            "ema_overwrite_frequency": self.ema_overwrite_frequency,
            "loss_scale_factor": self.loss_scale_factor,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """Rebuilds an optimizer from :meth:`get_config` output."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)


class SGD(Optimizer):
    """Gradient descent with optional (Nesterov) momentum, as Keras 3's ``SGD``.

    Update rules, per variable ``w`` with gradient ``g`` (after clipping and weight decay)::

        momentum == 0:  w = w - learning_rate * g
        momentum > 0:   m = momentum * m - learning_rate * g;  w = w + m
        nesterov:       m = momentum * m - learning_rate * g
                        w = w + momentum * m - learning_rate * g
    """

    _RULE = "sgd"

    def __init__(
        self,
        learning_rate: Any = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        name: str = "SGD",
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        if not isinstance(momentum, float) or momentum < 0 or momentum > 1:
            raise ValueError("`momentum` must be a float between [0, 1].")
        self.momentum = momentum
        self.nesterov = bool(nesterov)

    def _rule_slot_groups(self) -> list[list[str]]:
        return [["momentum"]] if self.momentum != 0 else []

    def _rule_settings(self) -> dict[str, Any]:
        return {"momentum": float(self.momentum), "nesterov": self.nesterov}

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"momentum": self.momentum, "nesterov": self.nesterov})
        return cfg


class Adam(Optimizer):
    """Adam, as Keras 3's ``Adam``: the bias correction is folded into the step size and
    ``epsilon`` is added to the uncorrected ``sqrt(v)`` (Keras's "epsilon hat")::

        t = iterations + 1;  alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t)
        m += (g - m) * (1 - beta_1);  v += (g**2 - v) * (1 - beta_2)
        amsgrad: v_hat = max(v_hat, v), used for v
        w -= m * alpha / (sqrt(v) + epsilon)
    """

    _RULE = "adam"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        _unit("beta_1", beta_1)
        _unit("beta_2", beta_2)
        _positive("epsilon", epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon
        self.amsgrad = bool(amsgrad)

    def _rule_slot_groups(self) -> list[list[str]]:
        groups = [["momentum", "velocity"]]
        if self.amsgrad:
            groups.append(["velocity_hat"])
        return groups

    def _rule_settings(self) -> dict[str, Any]:
        return {
            "beta_1": float(self.beta_1),
            "beta_2": float(self.beta_2),
            "epsilon": float(self.epsilon),
            "amsgrad": self.amsgrad,
        }

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "beta_1": self.beta_1,
                "beta_2": self.beta_2,
                "epsilon": self.epsilon,
                "amsgrad": self.amsgrad,
            }
        )
        return cfg


class AdamW(Adam):
    """Adam with decoupled weight decay (``weight_decay`` defaults to 0.004 and is
    required), as Keras 3's ``AdamW``: ``w -= w * weight_decay * lr`` before the Adam step."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        weight_decay: float = 0.004,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        amsgrad: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            amsgrad=amsgrad,
            weight_decay=weight_decay,
            **kwargs,
        )
        if self.weight_decay is None:
            raise ValueError("Argument `weight_decay` must be a float. Received: weight_decay=None")


class RMSprop(Optimizer):
    """RMSprop, as Keras 3's ``RMSprop`` (ε inside the square root)::

    v = rho * v + (1 - rho) * g**2
    centered: a = rho * a + (1 - rho) * g;  den = v - a**2 + epsilon  (else v + epsilon)
    inc = lr * g / sqrt(den)
    momentum > 0: mom = momentum * mom + inc; w -= mom   (else w -= inc)
    """

    _RULE = "rmsprop"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.9,
        momentum: float = 0.0,
        epsilon: float = 1e-7,
        centered: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        _unit("rho", rho)
        _number("momentum", momentum, lo=0.0, hi=1.0)
        _positive("epsilon", epsilon)
        self.rho, self.momentum, self.epsilon = rho, momentum, epsilon
        self.centered = bool(centered)

    def _rule_slot_groups(self) -> list[list[str]]:
        groups = [["velocity"]]
        if self.momentum > 0:
            groups.append(["momentum"])
        if self.centered:
            groups.append(["average_gradient"])
        return groups

    def _rule_settings(self) -> dict[str, Any]:
        return {
            "rho": float(self.rho),
            "momentum": float(self.momentum),
            "epsilon": float(self.epsilon),
            "centered": self.centered,
        }

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "rho": self.rho,
                "momentum": self.momentum,
                "epsilon": self.epsilon,
                "centered": self.centered,
            }
        )
        return cfg


class Adagrad(Optimizer):
    """Adagrad, as Keras 3's ``Adagrad``: ``acc += g**2; w -= lr * g / sqrt(acc + epsilon)``,
    the accumulator starting at ``initial_accumulator_value``."""

    _RULE = "adagrad"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        initial_accumulator_value: float = 0.1,
        epsilon: float = 1e-7,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        _number("initial_accumulator_value", initial_accumulator_value, lo=0.0)
        _positive("epsilon", epsilon)
        self.initial_accumulator_value = initial_accumulator_value
        self.epsilon = epsilon

    def _rule_slot_groups(self) -> list[list[str]]:
        return [["accumulator"]]

    def _rule_settings(self) -> dict[str, Any]:
        return {
            "initial_accumulator_value": float(self.initial_accumulator_value),
            "epsilon": float(self.epsilon),
        }

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update(
            {
                "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon,
            }
        )
        return cfg


class Adadelta(Optimizer):
    """Adadelta, as Keras 3's ``Adadelta``, with ``rms(x) = sqrt(x + epsilon)``::

    eg = rho * eg + (1 - rho) * g**2
    delta = -rms(ed) * g / rms(eg);  ed = rho * ed + (1 - rho) * delta**2
    w += lr * delta
    """

    _RULE = "adadelta"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        rho: float = 0.95,
        epsilon: float = 1e-7,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        _unit("rho", rho)
        _positive("epsilon", epsilon)
        self.rho, self.epsilon = rho, epsilon

    def _rule_slot_groups(self) -> list[list[str]]:
        return [["accumulated_grad", "accumulated_delta_var"]]

    def _rule_settings(self) -> dict[str, Any]:
        return {"rho": float(self.rho), "epsilon": float(self.epsilon)}

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"rho": self.rho, "epsilon": self.epsilon})
        return cfg


class _BetasEpsilon(Optimizer):
    """The constructor Adamax and Nadam share (Keras's arguments and defaults)."""

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-7,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        _unit("beta_1", beta_1)
        _unit("beta_2", beta_2)
        _positive("epsilon", epsilon)
        self.beta_1, self.beta_2, self.epsilon = beta_1, beta_2, epsilon

    def _rule_settings(self) -> dict[str, Any]:
        return {
            "beta_1": float(self.beta_1),
            "beta_2": float(self.beta_2),
            "epsilon": float(self.epsilon),
        }

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon})
        return cfg


class Adamax(_BetasEpsilon):
    """Adamax, as Keras 3's ``Adamax``::

    m += (g - m) * (1 - beta_1);  u = max(beta_2 * u, |g|)
    w -= lr * m / ((1 - beta_1**t) * (u + epsilon))
    """

    _RULE = "adamax"

    def _rule_slot_groups(self) -> list[list[str]]:
        return [["momentum", "norm"]]


class Nadam(_BetasEpsilon):
    """Nadam, as Keras 3's ``Nadam``: Adam with Nesterov momentum under Dozat's schedule
    ``mu_t = beta_1 * (1 - 0.5 * 0.96**t)``; keeps ``u_product = prod(mu_t)`` as an optimizer
    variable (saved after the slots)."""

    _RULE = "nadam"

    def _rule_slot_groups(self) -> list[list[str]]:
        return [["momentum", "velocity"]]

    def _extra_variable_names(self) -> list[str]:
        return ["variable"]


class Lion(Optimizer):
    """Lion, as Keras 3's ``Lion``::

    w -= lr * sign(beta_1 * m + (1 - beta_1) * g)
    m = beta_2 * m + (1 - beta_2) * g
    """

    _RULE = "lion"

    def __init__(
        self,
        learning_rate: Any = 0.001,
        beta_1: float = 0.9,
        beta_2: float = 0.99,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate,
            name=name,
            **kwargs,
        )
        b1 = _number("beta_1", beta_1)
        if b1 <= 0 or b1 > 1:
            raise ValueError(
                "Argument `beta_1` must be in the [0, 1] range. Otherwise, the optimizer "
                f"degenerates to SignSGD. Received: beta_1={beta_1}."
            )
        _unit("beta_2", beta_2)
        self.beta_1, self.beta_2 = beta_1, beta_2

    def _rule_slot_groups(self) -> list[list[str]]:
        return [["momentum"]]

    def _rule_settings(self) -> dict[str, Any]:
        return {"beta_1": float(self.beta_1), "beta_2": float(self.beta_2)}

    def get_config(self) -> dict[str, Any]:
        cfg = super().get_config()
        cfg.update({"beta_1": self.beta_1, "beta_2": self.beta_2})
        return cfg


#: Every optimizer class kerox has, by Keras class name (the registry `get`, deserialization
#: and saving use).
_CLASSES: dict[str, type[Optimizer]] = {
    cls.__name__: cls for cls in (SGD, Adam, AdamW, RMSprop, Adagrad, Adadelta, Adamax, Nadam, Lion)
}

#: Keras optimizers kerox does not implement (a clear error instead of an unknown name).
_UNSUPPORTED = ("Ftrl", "Adafactor", "Lamb", "Muon", "LossScaleOptimizer")


def _class_for(name: str) -> type[Optimizer]:
    key = name.split(">")[-1]
    for cls_name, cls in _CLASSES.items():
        if key == cls_name or key.lower() == cls_name.lower():
            return cls
    if key.lower() in (n.lower() for n in _UNSUPPORTED):
        raise ValueError(
            f"kerox does not implement the `{key}` optimizer; it has {', '.join(_CLASSES)}."
        )
    raise ValueError(f"Could not interpret optimizer identifier: {name}")


def serialize(optimizer: Optimizer) -> dict[str, Any]:
    """Keras 3's serialized form of an optimizer."""
    return {
        "module": "keras.optimizers",
        "class_name": type(optimizer).__name__,
        "config": optimizer.get_config(),
        "registered_name": None,
    }


def deserialize(config: dict[str, Any]) -> Optimizer:
    """Rebuilds a built-in optimizer from :func:`serialize` output (nothing is executed)."""
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"Could not interpret optimizer identifier: {config}")
    cls = _class_for(config["class_name"])
    return cls.from_config(dict(config.get("config") or {}))


def get(identifier: Any) -> Optimizer:
    """Resolves a name (``"adam"``, ``"rmsprop"``, ...), an optimizer instance or class, or a
    ``{"class_name": ..., "config": ...}`` dict."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Optimizer):
        return identifier()
    if isinstance(identifier, dict):
        return deserialize(identifier)
    if isinstance(identifier, str):
        return _class_for(identifier)()
    raise ValueError(f"Could not interpret optimizer identifier: {identifier}")
