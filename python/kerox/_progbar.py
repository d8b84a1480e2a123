"""Progress bar (``keras.utils.Progbar``), byte-for-byte compatible with Keras 3's output.

verbose=1 rewrites one line in place::

    \\r<b>4/4</b> <green>━━━━━━━━━━━━━━━━━━━━</green><white></white> <b>0s</b> 8ms/step - loss: 0.12

verbose=2 prints one line at the end: ``4/4 - 0s - 870us/step - loss: 0.1234``.
Behaviour (averaging, 0.05 s throttling, ETA and time-per-step estimates, number formats) is
reimplemented from the description of Keras 3's ``keras/src/utils/progbar.py``.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = ["Progbar", "print_msg"]

_BOLD = "\x1b[1m"
_RESET = "\x1b[0m"
_GREEN = "\x1b[32m"
_WHITE = "\x1b[37m"
_BAR_CHAR = "━"


def print_msg(message: str, line_break: bool = True) -> None:
    """Write ``message`` to ``sys.stdout`` and flush (Keras's ``io_utils.print_msg``).

    If stdout cannot encode ``━`` it is replaced by ``=`` (Keras does the same).
    """
    message = f"{message}\n" if line_break else str(message)
    try:
        sys.stdout.write(message)
    except UnicodeEncodeError:
        message = message.replace(_BAR_CHAR, "=")
        encoding = sys.stdout.encoding or "utf-8"
        sys.stdout.write(message.encode(encoding, errors="ignore").decode(encoding))
    sys.stdout.flush()


def _format_time(time_per_unit: float, unit_name: str) -> str:
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1000.0:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1000000.0:.0f}us/{unit_name}"


class Progbar:
    """Displays a progress bar.

    Metric values are averaged over steps by the bar unless they are *stateful*: by default
    (neither list given) every metric is averaged; names in ``stateful_metrics`` are shown
    as-is; if ``stateless_metrics`` is given instead, only those names are averaged (Keras's
    ``ProgbarLogger`` passes ``stateless_metrics=set()`` so every value is shown as-is).

    Args:
        target: Total number of steps expected, ``None`` if unknown.
        width: Bar width in characters.
        verbose: 0 (silent), 1 (dynamic bar), 2 (one line when finished).
        interval: Minimum seconds between two visual updates (except the final one).
        stateful_metrics: Names of metrics displayed as-is (not averaged).
        stateless_metrics: Names of metrics averaged (all others displayed as-is).
        unit_name: Name of a step in the time display (``"step"`` or ``"sample"``).

    Raises:
        ValueError: if both ``stateful_metrics`` and ``stateless_metrics`` are given.
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        stateless_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
    ) -> None:
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError(
                "Only one of `stateful_metrics` or `stateless_metrics` can be provided. "
                "`stateful_metrics` is used to make metrics stateless by default (with an "
                "exclusion list), while `stateless_metrics` is used to make metrics stateful "
                "by default (with an exclusion list)."
            )
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics: set[str] | None
        self.stateless_metrics: set[str] | None
        if stateless_metrics is not None:
            self.stateful_metrics, self.stateless_metrics = None, set(stateless_metrics)
        else:
            self.stateful_metrics, self.stateless_metrics = set(stateful_metrics or ()), None
        # Keras rewrites the line in place whenever it runs on a POSIX system, in IPython or
        # PyCharm, or when stdout is a terminal; otherwise it starts a new line per update.
        self._dynamic_display = (
            (hasattr(sys.stdout, "isatty") and sys.stdout.isatty())
            or "ipykernel" in sys.modules
            or "posix" in sys.modules
            or "PYCHARM_HOSTED" in os.environ
        )
        self._seen_so_far = 0
        self._values: dict[str, list[Any]] = {}
        self._values_order: list[str] = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step: float | None = None
        self._prev_total_width = 0

    def _is_stateless(self, name: str) -> bool:
        if self.stateful_metrics is not None:
            return name not in self.stateful_metrics
        return name in (self.stateless_metrics or ())

    def update(
        self,
        current: int,
        values: Sequence[tuple[str, Any]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Update the bar to step ``current``.

        Args:
            current: Index of the current step (1-based count of steps done).
            values: ``(name, value)`` pairs for the last step(s).
            finalize: Whether this is the last update; default ``current >= target``.
        """
        if finalize is None:
            finalize = False if self.target is None else current >= self.target

        for name, value in values or ():
            if name not in self._values_order:
                self._values_order.append(name)
            if self._is_stateless(name) and not finalize:
                # Weight the value by the number of steps since the last update.
                steps = max(current - self._seen_so_far, 1)
                if name in self._values:
                    self._values[name][0] += value * steps
                    self._values[name][1] += steps
                else:
                    self._values[name] = [value * steps, steps]
            else:
                self._values[name] = [value, 1]
        self._seen_so_far = current

        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)

        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            self._print_dynamic(current, now, time_per_unit, finalize)
        elif self.verbose == 2:
            if finalize and self.target is not None and self.target > 0:
                self._print_final_line(current, now, time_per_unit)
        self._last_update = now

    def add(self, n: int, values: Sequence[tuple[str, Any]] | None = None) -> None:
        """Advance the bar by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    def _average(self, name: str) -> Any:
        total, count = self._values[name]
        if not isinstance(total, float):
            total = np.mean(total)
        return total / max(1, count)

    def _print_dynamic(self, current: int, now: float, time_per_unit: float, final: bool) -> None:
        message = ("\b" * self._prev_total_width + "\r") if self._dynamic_display else "\n"
        known_target = self.target is not None and self.target > 0
        invisible = 0  # characters of ANSI escapes, not counted in the visible width
        if known_target:
            digits = int(math.log10(self.target)) + 1
            count = f"%{digits}d/%d" % (current, self.target)
            bar = f"{_BOLD}{count}{_RESET} "
            invisible += 8
            done = int(self.width * (float(current) / self.target))
            if done > 0:
                bar += f"{_GREEN}{_BAR_CHAR * done}{_RESET}"
                invisible += 9
            bar += f"{_WHITE}{_BAR_CHAR * (self.width - done)}{_RESET}"
            invisible += 9
        else:
            bar = f"{int(current):7d}/Unknown"
        message += bar

        if known_target and not final:
            eta = time_per_unit * (self.target - current)
            if eta > 3600:
                eta_text = f"{int(eta // 3600)}:{int((eta % 3600) // 60):02d}:{int(eta % 60):02d}"
            elif eta > 60:
                eta_text = f"{int(eta // 60)}:{int(eta % 60):02d}"
            else:
                eta_text = f"{int(eta)}s"
            info = f" {_BOLD}{eta_text}{_RESET}"
        else:
            info = f" {_BOLD}{now - self._start:.0f}s{_RESET}"
        invisible += 8
        info += _format_time(time_per_unit, self.unit_name)

        for name in self._values_order:
            avg = self._average(name)
            info += f" - {name}: {avg:.4f}" if abs(avg) > 1e-3 else f" - {name}: {avg:.4e}"
        message += info

        total_width = len(bar) + len(info) - invisible
        if self._prev_total_width > total_width:
            message += " " * (self._prev_total_width - total_width)
        if final:
            message += "\n"
        print_msg(message, line_break=False)
        self._prev_total_width = total_width

    def _print_final_line(self, current: int, now: float, time_per_unit: float) -> None:
        digits = int(math.log10(self.target)) + 1
        count = f"%{digits}d/%d" % (current, self.target)
        info = f"{count} - {now - self._start:.0f}s"
        info += f" -{_format_time(time_per_unit, self.unit_name)}"
        for name in self._values_order:
            avg = self._average(name)
            # Keras 3 compares `avg > 1e-3` here (not abs), so negatives print as %.4e.
            info += f" - {name}: {avg:.4f}" if avg > 1e-3 else f" - {name}: {avg:.4e}"
        print_msg(info + "\n", line_break=False)

    def _estimate_step_duration(self, current: int, now: float) -> float:
        """Seconds per step, ignoring the (unrepresentative) first step when possible."""
        if not current:
            return 0
        if self._time_after_first_step is not None and current > 1:
            time_per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            time_per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return time_per_unit
