"""docs/api.md and the README's summary are what tools/api_table.py generates now.

The table is generated from a snapshot of Keras's public names (tools/keras_names.json) and
kerox's own namespaces and registries, so adding a name to kerox without regenerating the
table (or the reverse) fails here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _api_table():
    spec = importlib.util.spec_from_file_location("api_table", ROOT / "tools" / "api_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_docs_and_readme_are_current():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "api_table.py"), "--check"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_status_follows_kerox(monkeypatch):
    """The table reads kerox, not a list of its own: a name removed from kerox shows as
    unsupported, with the error users then get."""
    from kerox.keras import losses

    api = _api_table()
    snapshot = json.loads((ROOT / "tools" / "keras_names.json").read_text())
    before = api.kerox_status(snapshot)
    assert "MeanSquaredError" in before["namespaces"]["keras.losses"]["have"]
    monkeypatch.delattr(losses, "MeanSquaredError")
    after = api.kerox_status(snapshot)
    row = after["namespaces"]["keras.losses"]
    assert "MeanSquaredError" in row["lack"]
    assert row["error"].startswith("AttributeError: ")
    assert api.render_doc(snapshot, after) != api.render_doc(snapshot, before)


def test_snapshot_matches_installed_keras():
    """tools/keras_names.json is what the installed Keras exposes, when it is that release."""
    keras = pytest.importorskip("keras")
    api = _api_table()
    snapshot = json.loads((ROOT / "tools" / "keras_names.json").read_text())
    if keras.__version__ != snapshot["keras_version"]:
        pytest.skip(
            f"snapshot of Keras {snapshot['keras_version']}, installed {keras.__version__}: "
            "`python tools/api_table.py --refresh-names` updates it"
        )
    assert os.environ.get("KERAS_BACKEND", "jax") == "jax"
    assert api.refresh_names() == snapshot
