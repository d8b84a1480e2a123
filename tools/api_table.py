"""Writes docs/api.md: Keras's public names per namespace, and whether kerox has each.

The Keras side comes from ``tools/keras_names.json``, a snapshot of one Keras release's public
API (``--refresh-names`` rewrites it from the installed ``keras``, run under
``KERAS_BACKEND=jax``), so the table does not change with whatever Keras a machine has. The
kerox side is read from kerox itself: a name is supported when ``kerox.keras.<namespace>``
has it, and a string identifier when the namespace's ``get`` (the registry ``compile`` and
layers resolve strings with) accepts it; otherwise the table shows the error users get. The
same run rewrites the summary between the ``api-summary`` markers in README.md.

``python tools/api_table.py`` rewrites both files; ``--check`` only compares (exit 1 and a diff
when they are stale), which ``tests/test_api_table.py`` runs.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NAMES = ROOT / "tools" / "keras_names.json"
DOC = ROOT / "docs" / "api.md"
README = ROOT / "README.md"
START, END = "<!-- api-summary:start -->", "<!-- api-summary:end -->"

#: Namespaces below `keras` that are listed name by name (the others are single rows).
NESTED = {"optimizers": ("schedules",)}
#: Namespaces whose `get` resolves string identifiers (compile, layer arguments).
WITH_GET = ("activations", "initializers", "losses", "metrics", "optimizers")
#: Short names Keras resolves that are not attributes of the namespace.
ALIASES = ("accuracy", "acc", "crossentropy", "ce", "bce", "mse", "mae", "mape", "msle")


# ------------------------------------------------------------------------------------------
# The Keras snapshot


def _public(module: types.ModuleType) -> list[str]:
    return sorted(n for n in dir(module) if not n.startswith("_") and n != "src")


def refresh_names() -> dict[str, Any]:
    """Reads the installed Keras's public API (names per namespace, identifiers `get` takes)."""
    import keras

    spaces: dict[str, list[str]] = {"keras": _public(keras)}
    for name in spaces["keras"]:
        mod = getattr(keras, name)
        if isinstance(mod, types.ModuleType):
            spaces[f"keras.{name}"] = _public(mod)
            for sub in NESTED.get(name, ()):
                spaces[f"keras.{name}.{sub}"] = _public(getattr(mod, sub))
    identifiers: dict[str, list[str]] = {}
    for ns in WITH_GET:
        mod = getattr(keras, ns)
        lower = [n.lower() for n in spaces[f"keras.{ns}"]]
        candidates = sorted(set(lower) | set(ALIASES)) if ns != "optimizers" else sorted(lower)
        ok = []
        for ident in candidates:
            if ident in ("get", "serialize", "deserialize", "legacy", "schedules"):
                continue
            try:
                if mod.get(ident) is not None:
                    ok.append(ident)
            except Exception:  # noqa: BLE001 - not an identifier Keras takes
                pass
        identifiers[ns] = ok
    return {"keras_version": keras.__version__, "namespaces": spaces, "identifiers": identifiers}


# ------------------------------------------------------------------------------------------
# kerox's side


def _kerox_module(keras_ns: str) -> tuple[Any, str | None]:
    """kerox's module for a Keras namespace, or None and the error users get."""
    parts = keras_ns.split(".")[1:]
    mod: Any = importlib.import_module("kerox.keras")
    for p in parts:
        try:
            mod = getattr(mod, p)
        except AttributeError as e:
            return None, f"AttributeError: {e}"
    return mod, None


def _first_line(e: BaseException) -> str:
    text = f"{type(e).__name__}: {e}".splitlines()[0]
    return text if len(text) <= 160 else text[:157] + "..."


def kerox_status(snapshot: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ns, names in snapshot["namespaces"].items():
        mod, missing = _kerox_module(ns)
        row: dict[str, Any] = {"names": names, "missing": missing, "have": [], "lack": []}
        if mod is not None:
            for n in names:
                try:
                    getattr(mod, n)
                    row["have"].append(n)
                except AttributeError as e:
                    row["lack"].append(n)
                    row.setdefault("error", _first_line(e))
        out[ns] = row
    idents: dict[str, Any] = {}
    for ns, accepted in snapshot["identifiers"].items():
        mod, missing = _kerox_module(f"keras.{ns}")
        have, lack, errors = [], [], {}
        for ident in accepted:
            try:
                if mod is None or mod.get(ident) is None:
                    raise ValueError(missing or f"kerox.keras.{ns}.get returned None")
                have.append(ident)
            except (ValueError, TypeError, AttributeError) as e:
                lack.append(ident)
                errors.setdefault("example", (ident, _first_line(e)))
        idents[ns] = {"have": have, "lack": lack, **errors}
    return {"namespaces": out, "identifiers": idents}


# ------------------------------------------------------------------------------------------
# Rendering


def _codes(names: list[str]) -> str:
    return ", ".join(f"`{n}`" for n in names) if names else "—"


def summary_table(snapshot: dict[str, Any], status: dict[str, Any]) -> str:
    lines = [
        "| Keras namespace | Keras names | kerox has | string identifiers kerox resolves |",
        "|---|---|---|---|",
    ]
    for ns, row in status["namespaces"].items():
        total = len(row["names"])
        have = "namespace missing" if row["missing"] else f"{len(row['have'])}"
        short = ns.removeprefix("keras.")
        ident = status["identifiers"].get(short)
        idents = (
            f"{len(ident['have'])} of {len(ident['have']) + len(ident['lack'])}" if ident else ""
        )
        lines.append(f"| `{ns}` | {total} | {have} | {idents} |")
    return "\n".join(lines)


def render_doc(snapshot: dict[str, Any], status: dict[str, Any]) -> str:
    version = snapshot["keras_version"]
    out = [
        "# kerox and the Keras API",
        "",
        "<!-- Generated by tools/api_table.py from tools/keras_names.json and kerox's own",
        "     namespaces and registries; do not edit: run `python tools/api_table.py`. -->",
        "",
        f"Every public name of Keras {version}, namespace by namespace, and whether",
        "`kerox.keras` has it. A name kerox lacks raises the error shown when a script uses it;",
        'a string identifier (`optimizer="ftrl"`, `loss="huber"`) kerox does not resolve',
        "raises the ValueError shown. kerox covers dense networks, so whole namespaces",
        "(convolutions, applications, distribution) are out of its scope; others are open",
        "issues.",
        "",
        "## Summary",
        "",
        summary_table(snapshot, status),
        "",
    ]
    for ns, row in status["namespaces"].items():
        out += [f"## `{ns}`", ""]
        if row["missing"]:
            out += [
                f"Not in kerox ({len(row['names'])} names): `{row['missing']}`",
                "",
                f"Keras has: {_codes(row['names'])}.",
                "",
            ]
            continue
        out += [f"Supported ({len(row['have'])}): {_codes(row['have'])}.", ""]
        if row["lack"]:
            out += [f"Not supported ({len(row['lack'])}): {_codes(row['lack'])}.", ""]
            out += [f"Using one raises `{row['error']}`", ""]
        short = ns.removeprefix("keras.")
        ident = status["identifiers"].get(short)
        if ident:
            out += [
                f"String identifiers kerox resolves ({len(ident['have'])}): "
                f"{_codes(ident['have'])}.",
                "",
            ]
            if ident["lack"]:
                example, error = ident["example"]
                out += [f"Not resolved ({len(ident['lack'])}): {_codes(ident['lack'])}.", ""]
                out += [f"`{short}.get({example!r})` raises `{error}`", ""]
    return "\n".join(out).rstrip() + "\n"


def render_readme(readme: str, snapshot: dict[str, Any], status: dict[str, Any]) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"api_table: README.md lacks the {START} / {END} markers")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    block = (
        f"{START}\n"
        f"Generated from Keras {snapshot['keras_version']}'s public names and kerox's registries "
        "by `tools/api_table.py` (a test keeps it current); the names themselves are in "
        "[docs/api.md](docs/api.md).\n\n"
        f"{summary_table(snapshot, status)}\n"
        f"{END}"
    )
    return head + block + tail


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    p.add_argument(
        "--refresh-names", action="store_true", help="re-read Keras's names (needs keras)"
    )
    args = p.parse_args(argv)
    if args.refresh_names:
        os.environ.setdefault("KERAS_BACKEND", "jax")
        NAMES.write_text(json.dumps(refresh_names(), indent=1, sort_keys=True) + "\n")
    snapshot = json.loads(NAMES.read_text())
    status = kerox_status(snapshot)
    wanted = {DOC: render_doc(snapshot, status)}
    wanted[README] = render_readme(README.read_text(), snapshot, status)
    stale = False
    for path, text in wanted.items():
        current = path.read_text() if path.exists() else ""
        if current == text:
            continue
        stale = True
        if args.check:
            diff = difflib.unified_diff(
                current.splitlines(), text.splitlines(), str(path), "generated", lineterm=""
            )
            print("\n".join(list(diff)[:80]))
        else:
            path.write_text(text)
            print(f"api_table: wrote {path.relative_to(ROOT)}")
    if args.check and stale:
        print("api_table: stale; run `python tools/api_table.py`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
