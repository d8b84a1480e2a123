"""What an install gives: `python -m kerox`, a light `import kerox`, the extras.

The wheel itself (abi3, manylinux2014, one venv per CPython) is checked by `make test-wheel`
(tools/wheel_check.py); the API table by tests/test_api_table.py.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import kerox
import pytest
from kerox import _optional

ROOT = Path(__file__).resolve().parents[1]

# Packages `import kerox` must not load: the optional ones, h5py (loaded when saving), and the
# heavy ones a test environment happens to have.
NOT_AT_IMPORT = (
    "h5py",
    "onnx",
    "matplotlib",
    "mpi4py",
    "tensorboard",
    "pandas",
    "jax",
    "keras",
    "tensorflow",
    "torch",
    "scipy",
)


def _run(code: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_import_loads_no_optional_package():
    loaded = json.loads(
        _run(
            "import json, sys, kerox; from kerox import keras; "
            f"print(json.dumps([m for m in {list(NOT_AT_IMPORT)!r} if m in sys.modules]))"
        )
    )
    assert loaded == []


def test_python_m_kerox_reports_the_environment():
    proc = subprocess.run(
        [sys.executable, "-m", "kerox"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("  ")
        rows[key.strip()] = value.strip()
    assert rows["kerox"].startswith(kerox.__version__ + " ")
    assert rows["SIMD: CPU offers"] == kerox.config.cpu_level()
    assert rows["SIMD: models use"] == kerox.config.dispatch_level()
    assert rows["threads"] == str(kerox.config.get_num_threads())
    assert rows["NumPy"] == __import__("numpy").__version__
    assert rows["Python"].startswith(".".join(map(str, sys.version_info[:3])))
    assert Path(kerox._core.__file__).name in rows["extension"]
    for module in ("h5py", "onnx", "mpi4py", "tensorboard", "matplotlib"):
        installed = importlib.util.find_spec(module) is not None
        assert rows[module].startswith("not installed") != installed, (module, rows[module])


def test_python_m_kerox_honours_dispatch_cap():
    import os

    env = {**os.environ, "KEROX_DISPATCH": "scalar"}
    proc = subprocess.run(
        [sys.executable, "-m", "kerox"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert any(
        line.split() == ["SIMD:", "models", "use", "scalar"] for line in proc.stdout.splitlines()
    )
    assert any(line.split() == ["KEROX_DISPATCH", "scalar"] for line in proc.stdout.splitlines())


def test_extras_match_pyproject():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11 (the test venv's)
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for extra, rows in _optional.EXTRAS.items():
        assert sorted(extras[extra]) == sorted(dist for _, dist, _ in rows), extra
    assert extras["all"] == [f"kerox[{','.join(_optional.EXTRAS)}]"]


@pytest.mark.parametrize("extra", list(_optional.EXTRAS))
def test_missing_extra_names_the_install(monkeypatch, extra):
    for module, dist, _ in _optional.EXTRAS[extra]:
        monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
        with pytest.raises(ImportError) as info:
            _optional.require(module)
        assert f'pip install "kerox[{extra}]"' in str(info.value)
        assert f"`{dist}`" in str(info.value)


def test_require_returns_the_module_and_refuses_unknown_names():
    if importlib.util.find_spec("onnx") is not None:
        assert _optional.require("onnx") is sys.modules["onnx"]
    with pytest.raises(KeyError, match="not an optional dependency"):
        _optional.require("numpy")
