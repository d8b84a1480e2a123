"""``python -m kerox``: the environment a bug report needs.

Prints kerox's version and build, Python, the platform and CPU, NumPy's version, the SIMD
levels (the CPU's widest, the one models use, and ``KEROX_DISPATCH`` if set), threads, and
which optional packages are installed (without importing them), as
``python -m torch.utils.collect_env`` does for PyTorch.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path


def _cpu_model() -> str:
    """The CPU's name with its family and model numbers (which tell e.g. Zen 3 from Zen 5
    where the name is only "AMD EPYC")."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or "unknown"
    name = fields.get("model name", platform.processor() or "unknown")
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    return name


def collect() -> list[tuple[str, str]]:
    """The report as (field, value) rows."""
    import numpy as np

    import kerox
    from kerox import _core, _optional
    from kerox.keras import KERAS_FORMAT_VERSION

    core = Path(_core.__file__)
    rows = [
        ("kerox", f"{kerox.__version__} ({core.parent})"),
        (
            "extension",
            f"{core.name} ({'stable ABI' if '.abi3.' in core.name else 'version-specific'})",
        ),
        ("Keras API / file format", KERAS_FORMAT_VERSION),
        (
            "Python",
            f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})",
        ),
        ("platform", f"{platform.platform()} ({platform.machine()})"),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} logical cores"),
        ("NumPy", np.__version__),
        ("SIMD: CPU offers", kerox.config.cpu_level()),
        ("SIMD: models use", kerox.config.dispatch_level()),
        ("KEROX_DISPATCH", os.environ.get("KEROX_DISPATCH", "(not set)")),
        ("threads", str(kerox.config.get_num_threads())),
        ("KEROX_NUM_THREADS", os.environ.get("KEROX_NUM_THREADS", "(not set)")),
    ]
    for module, feature, version in _optional.status():
        rows.append((module, f"{version or 'not installed'} ({feature})"))
    return rows


def main() -> None:
    rows = collect()
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


if __name__ == "__main__":
    main()
