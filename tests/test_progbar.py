"""kerox._progbar.Progbar against keras.utils.Progbar: same updates, same clock, same bytes.

Oracle: real Keras 3 (JAX backend). Both bars are driven with identical update sequences while
``time.time`` is replaced by a scripted clock and ``sys.stdout`` by a StringIO; the captured
bytes must be identical.
"""

from __future__ import annotations

import io
import os
import sys
import time

import numpy as np
import pytest
from kerox._progbar import Progbar

os.environ.setdefault("KERAS_BACKEND", "jax")


def _keras():
    if os.environ.get("KEROX_REQUIRE_ORACLE") == "1":
        import keras

        return keras
    return pytest.importorskip("keras")


class Clock:
    """A settable replacement for time.time."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def _drive(monkeypatch, cls, script, **kwargs) -> str:
    """Run ``script`` (a list of (clock time, method, args, kwargs)) on a new ``cls`` bar."""
    clock = Clock(script[0][0])
    out = io.StringIO()
    monkeypatch.setattr(time, "time", clock)
    monkeypatch.setattr(sys, "stdout", out)
    try:
        bar = cls(**kwargs)
        for t, method, args, kw in script[1:]:
            clock.t = t
            getattr(bar, method)(*args, **kw)
    finally:
        monkeypatch.undo()
    return out.getvalue()


def _compare(monkeypatch, script, **kwargs) -> str:
    keras = _keras()
    ours = _drive(monkeypatch, Progbar, script, **kwargs)
    theirs = _drive(monkeypatch, keras.utils.Progbar, script, **kwargs)
    assert ours == theirs
    return ours


def _steps(n, dt, start=1000.0, values=None, stride=1, finalize_last=None):
    script = [(start, None, (), {})]
    for i in range(stride, n + 1, stride):
        vals = values(i) if values else None
        kw = {}
        if finalize_last is not None and i == n:
            kw["finalize"] = finalize_last
        script.append((start + i * dt, "update", (i, vals), kw))
    return script


def _metrics(i):
    return [("loss", 1.0 / i), ("accuracy", 0.5 + i / 1000.0)]


@pytest.mark.parametrize("dt", [0.0, 2e-6, 3e-4, 0.002, 0.07, 1.0, 1.5, 90.0, 5000.0])
def test_verbose1_time_scales(monkeypatch, dt):
    out = _compare(monkeypatch, _steps(12, dt, values=_metrics), target=12)
    assert out.endswith("\n")
    assert "\x1b[32m" in out and "━" in out


def test_verbose1_throttling_and_width_shrink(monkeypatch):
    # Irregular timing: some updates fall within the 0.05 s interval and are skipped;
    # the metric text gets shorter, so trailing blanks must erase the old line.
    times = [0.0, 0.01, 0.02, 0.2, 0.21, 0.5, 0.6, 0.61, 2.0, 2.01]
    script = [(1000.0, None, (), {})]
    for i, t in enumerate(times, start=1):
        val = 123.456 if i < 5 else 0.5
        script.append((1000.0 + t, "update", (i, [("loss", val)]), {}))
    _compare(monkeypatch, script, target=10)


def test_default_metrics_are_averaged(monkeypatch):
    script = _steps(20, 0.1, values=lambda i: [("loss", float(i)), ("mae", np.float32(i * 2))])
    out = _compare(monkeypatch, script, target=20)
    assert "loss" in out


def test_stateful_and_stateless_metrics(monkeypatch):
    values = lambda i: [("loss", float(i)), ("acc", i / 100.0)]  # noqa: E731
    _compare(monkeypatch, _steps(8, 0.2, values=values), target=8, stateful_metrics=["acc"])
    _compare(monkeypatch, _steps(8, 0.2, values=values), target=8, stateless_metrics=set())
    _compare(monkeypatch, _steps(8, 0.2, values=values), target=8, stateless_metrics={"loss"})


def test_value_formats(monkeypatch):
    values = lambda i: [("tiny", 1e-5), ("neg", -0.5), ("negtiny", -1e-4), ("zero", 0.0)]  # noqa: E731
    _compare(monkeypatch, _steps(5, 0.3, values=values), target=5, stateless_metrics=set())
    _compare(
        monkeypatch, _steps(5, 0.3, values=values), target=5, verbose=2, stateless_metrics=set()
    )


@pytest.mark.parametrize("target", [1, 7, 10, 99, 100, 1875])
def test_verbose2_and_digit_widths(monkeypatch, target):
    stride = max(1, target // 9)
    script = _steps(target, 0.013, values=_metrics, stride=stride)
    if script[-1][2][0] != target:
        script.append((1000.0 + target * 0.013, "update", (target, _metrics(target)), {}))
    _compare(monkeypatch, script, target=target, verbose=2)
    _compare(monkeypatch, script, target=target, verbose=1)


def test_unknown_target(monkeypatch):
    script = _steps(6, 0.1, values=_metrics, finalize_last=True)
    _compare(monkeypatch, script, target=None)


def test_add_and_explicit_finalize(monkeypatch):
    script = [(50.0, None, (), {})]
    for k in range(1, 6):
        script.append((50.0 + k * 0.3, "add", (2, [("loss", k * 0.1)]), {}))
    script.append((52.5, "update", (10, [("loss", 0.9)]), {"finalize": True}))
    _compare(monkeypatch, script, target=10)
    script = [(0.0, None, (), {}), (1.0, "update", (3, [("x", 1.0)]), {"finalize": False})]
    script.append((2.0, "update", (5, [("x", 2.0)]), {"finalize": True}))
    _compare(monkeypatch, script, target=10, width=30)


def test_verbose0_prints_nothing(monkeypatch):
    assert _compare(monkeypatch, _steps(5, 0.1, values=_metrics), target=5, verbose=0) == ""


def test_non_dynamic_display(monkeypatch):
    # Without `posix` (e.g. Windows, no TTY) each update starts a new line instead of \r.
    saved = sys.modules.pop("posix", None)
    try:
        out = _compare(monkeypatch, _steps(4, 0.2, values=_metrics), target=4)
    finally:
        if saved is not None:
            sys.modules["posix"] = saved
    if saved is not None:
        assert "\r" not in out and out.startswith("\n")


def test_first_step_excluded_from_step_time(monkeypatch):
    # First step slow (compilation-like), then fast: the final time/step ignores step 1.
    script = [(0.0, None, (), {}), (5.0, "update", (1, None), {})]
    script += [(5.0 + 0.002 * k, "update", (1 + k, None), {}) for k in range(1, 10)]
    out = _compare(monkeypatch, script, target=10)
    assert "2ms/step" in out


def test_both_metric_lists_rejected():
    with pytest.raises(ValueError, match="Only one of `stateful_metrics`"):
        Progbar(10, stateful_metrics=["a"], stateless_metrics=["b"])


def test_exact_final_line_bytes(monkeypatch):
    # Spec §7.6 quotes the raw bytes of a finished K3 line; check ours against that literal.
    script = [(0.0, None, (), {}), (0.4, "update", (4, [("accuracy", 0.39), ("loss", 1.455)]), {})]
    out = _drive(monkeypatch, Progbar, script, target=4, stateless_metrics=set())
    assert out == (
        "\r\x1b[1m4/4\x1b[0m \x1b[32m━━━━━━━━━━━━━━━━━━━━\x1b[0m\x1b[37m\x1b[0m "
        "\x1b[1m0s\x1b[0m 100ms/step - accuracy: 0.3900 - loss: 1.4550\n"
    )
