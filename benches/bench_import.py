"""How long ``import kerox`` takes beyond NumPy's own import.

Runs fresh interpreters (``--python``, default this one) ``--runs`` times each, alternating:
``import numpy`` and ``import kerox`` by wall time (process start to exit, medians and their
difference), and ``python -X importtime -c "import kerox"``'s cumulative microseconds for
``kerox`` and, within it, ``numpy``. Python only writes ``.pyc`` files where it may (not under
``PYTHONDONTWRITEBYTECODE``), so measure an installed wheel (pip compiles them) or a tree
that has them; a tree without compiles every module on each import.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time

ROW = re.compile(r"import time:\s*(\d+) \|\s*(\d+) \|\s*(\S.*)")


def wall(python: str, code: str) -> float:
    t = time.perf_counter()
    subprocess.run([python, "-c", code], check=True)
    return time.perf_counter() - t


def cumulative(python: str) -> tuple[float, float]:
    err = subprocess.run(
        [python, "-X", "importtime", "-c", "import kerox"],
        check=True,
        capture_output=True,
        text=True,
    ).stderr
    rows = {m.group(3).strip(): int(m.group(2)) for m in ROW.finditer(err)}
    return rows["kerox"] / 1e6, rows.get("numpy", 0) / 1e6


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--python", default=sys.executable)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args(argv)
    numpy, kerox, cum, cum_np = [], [], [], []
    for _ in range(args.runs):
        numpy.append(wall(args.python, "import numpy"))
        kerox.append(wall(args.python, "import kerox"))
        k, n = cumulative(args.python)
        cum.append(k)
        cum_np.append(n)
    med = statistics.median
    print(f"import time, {args.runs} runs each, medians ({args.python}):")
    print(
        f"  wall: import numpy {med(numpy):.3f} s, import kerox {med(kerox):.3f} s, "
        f"kerox beyond numpy {med(kerox) - med(numpy):.3f} s"
    )
    print(
        f"  -X importtime: kerox {med(cum):.3f} s cumulative, of which numpy "
        f"{med(cum_np):.3f} s; beyond numpy {med([k - n for k, n in zip(cum, cum_np)]):.3f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
