"""Reporting side of ``bench_fit.py``: markdown tables and the epoch-time bar chart.

Only the standard library at import time; matplotlib is imported inside :func:`plot_epoch_times`
(the driver runs that in the peers' interpreter when its own has no matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _workers import EXTRAS, FRAMEWORKS, OPTIMIZERS

REFERENCE = "kerox"


def config_label(cfg: dict[str, Any]) -> str:
    """Human label of a fit configuration, e.g. ``batch 32 + clipnorm 1``, ``batch 32, Adam``,
    ``batch 32, L2(0.0001) kernels``."""
    label = f"batch {cfg['batch_size']}"
    optimizer = cfg.get("optimizer") or "sgd"  # files from before Adam rows: SGD
    if optimizer != "sgd":
        label += f", {OPTIMIZERS.get(optimizer, (optimizer,))[0]}"
    kind = cfg.get("clip_kind") or ("clipnorm" if cfg.get("clipnorm") is not None else None)
    if kind is not None:
        value = cfg.get("clip_value", cfg.get("clipnorm"))
        label += f" + {kind} {value:g}"
    if cfg.get("extras"):
        label += f", {EXTRAS.get(cfg['extras'], cfg['extras'])}"
    if cfg.get("threads"):
        label += f", {cfg['threads']} thread" + ("s" if cfg["threads"] > 1 else "")
    if cfg.get("dispatch"):
        label += f", KEROX_DISPATCH={cfg['dispatch']}"
    if cfg.get("sparse_input") is False:
        label += ", KEROX_SPARSE_INPUT=0"
    return label


def _shared(configs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The configurations every framework ran (schema 1 files have only those)."""
    return [c for c in configs if not c.get("kerox_only")]


def _fmt_time(s: float) -> str:
    return f"{s:.3f} s" if s < 10 else f"{s:.1f} s"


def _ratio(peer: float | None, ref: float | None) -> str:
    if peer is None or ref is None or ref <= 0:
        return ""
    return f" ({peer / ref:.2f}x)"


#: A run during which other processes kept more CPU cores busy than this is flagged as noisy.
NOISE_CORES = 0.5


def _cell(rec: dict[str, Any] | None, value: float | None, ref: float | None, fmt: Any) -> str:
    if rec is None:
        return "not run"
    if rec["status"] == "missing":
        return "missing"
    if rec["status"] != "ok" or value is None:
        return "error"
    noisy = (rec.get("external_cores") or 0.0) > NOISE_CORES
    return fmt(value) + _ratio(value, ref) + (" †" if noisy else "")


def markdown(result: dict[str, Any]) -> str:
    """Render the result document as markdown: machine line, fit, memory and predict tables."""
    m = result["machine"]
    runs = result["runs"]
    fws = [fw for fw in FRAMEWORKS if fw in result["frameworks"]]
    by_key = {(r["framework"], r["config"]): r for r in runs}
    all_configs = result["configs"]
    configs = _shared(all_configs)
    ref_fw = REFERENCE if REFERENCE in fws else None
    lines: list[str] = []
    lines.append(
        f"Machine: {m['cpu_model']}, {m['cores']} cores, {m['mem_gib']:.0f} GiB; "
        f"{result['date']}; external CPU load during the runs: "
        f"max {result['load']['max_external_cores']:.2f} cores."
    )
    lines.append(
        f"Settings: {result['settings']['warmup']} warm-up + {result['settings']['epochs']} "
        f"timed epochs per run (median shown), {result['settings']['repeats']} process(es) "
        f"per cell; data: MNIST 60,000 x 784 float32 ({result['data']['source']})."
    )
    if ref_fw is None:
        lines.append("kerox did not run, so no ratios.")
    else:
        lines.append("Ratios in brackets: peer / kerox (above 1 means kerox is faster).")
    lines.append("")
    header = "| workload | " + " | ".join(FRAMEWORKS[f] for f in fws) + " |"
    sep = "|---|" + "---:|" * len(fws)

    level = result.get("kerox_dispatch")
    threads = result["settings"].get("threads")
    if level or threads:
        lines.append(
            f"kerox in the shared rows: dispatch level {level or '?'}, {threads} thread(s); "
            "the Keras backends use their default threading, PyTorch "
            f"`set_num_threads({threads})`."
        )
        lines.append("")

    lines += ["### Seconds per epoch (steady state, fit on 60,000 images)", "", header, sep]
    for cfg in configs:
        ck = cfg["key"]
        ref = by_key.get((ref_fw, ck), {}).get("epoch_median_s") if ref_fw else None
        cells = [
            _cell(
                by_key.get((fw, ck)),
                by_key.get((fw, ck), {}).get("epoch_median_s"),
                None if fw == ref_fw else ref,
                _fmt_time,
            )
            for fw in fws
        ]
        lines.append(f"| {config_label(cfg)} | " + " | ".join(cells) + " |")

    lines += ["", "### Peak RSS during fit above RSS after loading the data (MiB)", "", header, sep]
    for cfg in configs:
        ck = cfg["key"]
        ref = by_key.get((ref_fw, ck), {}).get("peak_rss_above_data_mib") if ref_fw else None
        cells = [
            _cell(
                by_key.get((fw, ck)),
                by_key.get((fw, ck), {}).get("peak_rss_above_data_mib"),
                None if fw == ref_fw else ref,
                lambda v: f"{v:.0f}",
            )
            for fw in fws
        ]
        lines.append(f"| {config_label(cfg)} | " + " | ".join(cells) + " |")

    pbs = result["settings"]["predict_batches"]
    pcfg = configs[0]["key"] if configs else None
    if pbs and pcfg is not None:
        lines += [
            "",
            "### predict on 10,000 test images (seconds per pass, images per second)",
            "",
            header,
            sep,
        ]
        for pb in pbs:

            def pred(fw: str, pb: int = pb) -> float | None:
                p = by_key.get((fw, pcfg), {}).get("predict", {}).get(str(pb), {})
                return p.get("median_s")

            ref = pred(ref_fw) if ref_fw else None
            cells = [
                _cell(
                    by_key.get((fw, pcfg)),
                    pred(fw),
                    None if fw == ref_fw else ref,
                    lambda v: f"{_fmt_time(v)}, {10_000 / v:,.0f}/s",
                )
                for fw in fws
            ]
            lines.append(f"| predict, batch {pb} | " + " | ".join(cells) + " |")

    if "gemm_peak" in result:
        lines += _gflops_section(result, configs, fws, by_key)
    if any(c.get("group") == "threads" for c in all_configs):
        lines += _threads_section(result, all_configs, by_key)
    if any(c.get("group") == "dense_path" for c in all_configs):
        lines += _dense_path_section(result, all_configs, by_key)
    if any(c.get("group") == "dispatch" for c in all_configs):
        lines += _dispatch_section(result, all_configs, by_key)
    if any(c.get("clip_kind") for c in all_configs) and ref_fw:
        lines += _clip_section(result, all_configs, by_key)
    if any(_is_adam(c) for c in configs) and ref_fw:
        lines += _adam_section(result, configs, fws, by_key)
    if any(c.get("extras") for c in configs):
        lines += _extras_section(result, configs, fws, by_key)

    gemm = result.get("gemm_peak") or {}
    measured = [r for r in runs if r["status"] == "ok"]
    measured += [g for g in (gemm.get("all_cores"), gemm.get("one_thread")) if g]
    if any((r.get("external_cores") or 0.0) > NOISE_CORES for r in measured):
        lines += [
            "",
            f"† other processes kept more than {NOISE_CORES} cores busy during that run "
            "(see `external_cores` in the JSON): treat the number as noise.",
        ]
    problems = [r for r in runs if r["status"] != "ok"]
    if problems:
        lines += ["", "### Not measured", ""]
        seen: set[tuple[str, str]] = set()
        for r in problems:
            msg = (r.get("error") or "").splitlines()[0][:300] if r.get("error") else ""
            key = (r["framework"], msg)
            if key in seen:
                continue
            seen.add(key)
            lines.append(
                f"- {FRAMEWORKS.get(r['framework'], r['framework'])}: {r['status']}: {msg}"
            )
    return "\n".join(lines) + "\n"


def _noisy(rec: dict[str, Any] | None) -> str:
    return " †" if rec and (rec.get("external_cores") or 0.0) > NOISE_CORES else ""


def _kerox(by_key: dict[tuple[str, str], Any], key: str) -> dict[str, Any] | None:
    r = by_key.get((REFERENCE, key))
    return r if r and r["status"] == "ok" else None


def _status(by_key: dict[tuple[str, str], Any], key: str) -> str:
    r = by_key.get((REFERENCE, key))
    return "not run" if r is None else r["status"]


def _gflops(r: dict[str, Any] | None) -> str:
    if r is None or r.get("gflops") is None:
        return "-"
    pct = r.get("pct_of_gemm_peak")
    return f"{r['gflops']:.1f}" + (f" ({pct:.0f} %)" if pct is not None else "")


def _peak_line(result: dict[str, Any]) -> str:
    g = result["gemm_peak"]
    if g.get("skipped"):
        return "GEMM peak: not measured (`--gemm-size 0`)."
    parts = []
    for key in ("all_cores", "one_thread"):
        rec = g.get(key) or {}
        t = rec.get("threads")
        if rec.get("status") == "ok":
            noisy = " †" if (rec.get("external_cores") or 0.0) > NOISE_CORES else ""
            parts.append(f"**{rec['gflops']:.1f} GFLOP/s** with {t} thread(s){noisy}")
        else:
            parts.append(f"{t} thread(s): {rec.get('error', 'not measured')}")
    rec = g.get("all_cores") or {}
    blas = rec.get("blas") or {}
    rt = rec.get("blas_runtime") or {}
    lib = " ".join(str(v) for v in (blas.get("name"), blas.get("version")) if v)
    if rt.get("corename"):
        lib += f", kernels {rt['corename']}"
    if rec.get("unset_env"):
        pinned = ", ".join(f"{k}={v}" for k, v in sorted(rec["unset_env"].items()))
        lib += f"; measured without this machine's {pinned}"
    return (
        f"GEMM peak (numpy {rec.get('numpy', '?')} float32 matmul {g['n']}x{g['n']}, median of "
        f"{g['reps']} after warm-up; {lib or 'BLAS unknown'}): " + "; ".join(parts) + "."
    )


def _section(title: str, notes: list[str], columns: list[str], align: str) -> list[str]:
    """Opening lines of a report section: heading, notes, and a table header.

    ``align`` has one character per column: ``l`` (left), ``r`` (right) or ``c`` (centre).
    """
    marks = {"l": "---", "r": "---:", "c": ":---:"}
    return [
        "",
        f"### {title}",
        "",
        *notes,
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "|".join(marks[a] for a in align) + "|",
    ]


def _gflops_section(
    result: dict[str, Any],
    configs: list[dict[str, Any]],
    fws: list[str],
    by_key: dict[tuple[str, str], Any],
) -> list[str]:
    f = result.get("flops_per_epoch") or {}
    fwd, grad_w, grad_x = (
        f.get(k, 0.0) / 1e9 for k in ("forward", "backward_weights", "backward_inputs")
    )
    lines = _section(
        "Training GFLOP/s beside the machine's GEMM peak (same run)",
        [
            _peak_line(result),
            f"Work per epoch: {f.get('total', 0) / 1e9:.1f} GFLOP (Dense matrix products: "
            f"forward {fwd:.1f}, weight gradients {grad_w:.1f}, input gradients {grad_x:.1f}). "
            "Cells: GFLOP/s (% of the all-cores GEMM peak).",
            "kerox's first layer skips exactly-zero inputs (about 81 % of MNIST's pixels), so "
            "its figures here are *dense-equivalent* (the same work count divided by its time) "
            "and can exceed the GEMM peak; the GEMM throughput it reaches with every product "
            "dense is in the `KEROX_SPARSE_INPUT=0` section below.",
        ],
        ["workload", *(FRAMEWORKS[fw] for fw in fws)],
        "l" + "r" * len(fws),
    )
    for cfg in configs:
        cells = []
        for fw in fws:
            r = by_key.get((fw, cfg["key"]))
            if r is None:
                cells.append("not run")
            elif r["status"] != "ok":
                cells.append(r["status"])
            else:
                cells.append(_gflops(r) + _noisy(r))
        lines.append(f"| {config_label(cfg)} | " + " | ".join(cells) + " |")
    return lines


def _threads_section(
    result: dict[str, Any], configs: list[dict[str, Any]], by_key: dict[tuple[str, str], Any]
) -> list[str]:
    n = result["settings"].get("threads")
    lines = _section(
        f"kerox: 1 thread vs {n} threads",
        [
            f"Speedup = 1-thread time / {n}-thread time. GFLOP/s in brackets: % of the GEMM "
            "peak with the same number of threads. *Paired*: one process alternating epochs "
            f"of two models, one on 1 thread and one on {n}, median of the per-pair ratios."
        ],
        ["batch", "1 thread", f"{n} threads", "speedup", "paired speedup", "GFLOP/s, 1 thread"]
        + [f"GFLOP/s, {n} threads"],
        "lrrrrrr",
    )
    for cfg in configs:
        if cfg.get("group") != "threads":
            continue
        pair = _pair_for(result, cfg, threads=1)
        # The ratio is 1-thread time / all-threads time.
        psp = pair.get("ratio_median")
        pcell = f"{psp:.2f}x ({pair['pairs']} pairs)" if psp else "-"
        one, many = _kerox(by_key, cfg["key"]), _kerox(by_key, f"b{cfg['batch_size']}")
        d = (result.get("derived") or {}).get("thread_speedup", {}).get(cfg["key"], {})
        sp = d.get("speedup")
        t1 = _fmt_time(one["epoch_median_s"]) + _noisy(one) if one else _status(by_key, cfg["key"])
        tn = _fmt_time(many["epoch_median_s"]) + _noisy(many) if many else "-"
        lines.append(
            f"| {cfg['batch_size']} | {t1} | {tn} | {f'{sp:.2f}x' if sp else '-'} | {pcell} | "
            f"{_gflops(one)} | {_gflops(many)} |"
        )
    return lines


def _dense_path_section(
    result: dict[str, Any], configs: list[dict[str, Any]], by_key: dict[tuple[str, str], Any]
) -> list[str]:
    lines = _section(
        "kerox: sparse-input first layer vs every product dense",
        [
            "`KEROX_SPARSE_INPUT=0` makes the first layer's forward and weight-gradient "
            "products dense GEMMs (as every peer computes them). Speedup = dense-path time / "
            "default time. GFLOP/s of the dense path: real GEMM work (% of the GEMM peak)."
        ],
        ["batch", "default s/epoch", "dense path s/epoch", "speedup", "GFLOP/s, dense path"],
        "lrrrr",
    )
    for cfg in configs:
        if cfg.get("group") != "dense_path":
            continue
        ref, dense = _kerox(by_key, f"b{cfg['batch_size']}"), _kerox(by_key, cfg["key"])
        d = (result.get("derived") or {}).get("sparse_input_speedup", {}).get(cfg["key"], {})
        sp = d.get("speedup")
        t0 = _fmt_time(ref["epoch_median_s"]) + _noisy(ref) if ref else "-"
        td = (
            _fmt_time(dense["epoch_median_s"]) + _noisy(dense)
            if dense
            else _status(by_key, cfg["key"])
        )
        lines.append(
            f"| {cfg['batch_size']} | {t0} | {td} | {f'{sp:.2f}x' if sp else '-'} | "
            f"{_gflops(dense)} |"
        )
    return lines


def _dispatch_section(
    result: dict[str, Any], configs: list[dict[str, Any]], by_key: dict[tuple[str, str], Any]
) -> list[str]:
    lines = _section(
        "kerox: dispatch levels",
        [
            "`KEROX_DISPATCH` caps the SIMD level; *reported* is `kerox.config.dispatch_level()` "
            "(= `kerox._core.default_level()`) in that worker / the built model's engine, so a "
            "cap that did not take shows here. Slowdown = time / time at the default level."
        ],
        ["batch", "KEROX_DISPATCH", "reported level", "s/epoch", "slowdown"]
        + ["GFLOP/s (% of peak)"],
        "lllrrr",
    )
    batches = sorted({c["batch_size"] for c in configs if c.get("group") == "dispatch"})
    for b in batches:
        ref = _kerox(by_key, f"b{b}")
        rows: list[tuple[str, str, dict[str, Any] | None]] = [("(unset)", f"b{b}", ref)]
        rows += [
            (c["dispatch"], c["key"], _kerox(by_key, c["key"]))
            for c in configs
            if c.get("group") == "dispatch" and c["batch_size"] == b
        ]
        for env, key, r in rows:
            if r is None:
                lines.append(f"| {b} | {env} | - | {_status(by_key, key)} | - | - |")
                continue
            v = r.get("versions") or {}
            level = v.get("kerox_dispatch") or "?"
            model = v.get("kerox_model_dispatch")
            if model and model != level:
                level += f" / model {model}"
            slow = f"{r['epoch_median_s'] / ref['epoch_median_s']:.2f}x" if ref else "-"
            lines.append(
                f"| {b} | {env} | {level} | {_fmt_time(r['epoch_median_s'])}{_noisy(r)} | "
                f"{slow} | {_gflops(r)} |"
            )
    return lines


def _variant_cells(
    by_key: dict[tuple[str, str], Any],
    cfg: dict[str, Any],
    pair: dict[str, Any],
    limit_pct: float,
    fmt: Any,
) -> list[str]:
    """kerox at ``cfg`` against its reference (the shared row at the batch size): the cells
    s/epoch, reference s/epoch, separate ratio, paired ratio and the verdict (paired when
    ``pair`` has a ratio, else separate) on "at most ``limit_pct`` % slower"; ``fmt`` writes a
    variant/reference ratio."""
    q = pair.get("ratio_median")
    pcell = f"{fmt(q)} ({pair['pairs']} pairs)" if q is not None else "-"
    r, ref = _kerox(by_key, cfg["key"]), _kerox(by_key, f"b{cfg['batch_size']}")
    if r is None or ref is None:
        verdict = "-" if q is None else ("yes" if 100.0 * (q - 1.0) <= limit_pct else "no")
        reft = _fmt_time(ref["epoch_median_s"]) if ref else "-"
        return [_status(by_key, cfg["key"]), reft, "-", pcell, verdict]
    ratio = r["epoch_median_s"] / ref["epoch_median_s"]
    if q is not None:
        verdict = "yes" if 100.0 * (q - 1.0) <= limit_pct else "no"
    else:
        verdict = "yes" if 100.0 * (ratio - 1.0) <= limit_pct else "no"
        if _noisy(r) or _noisy(ref):
            verdict = f"({verdict}) †"
    return [
        f"{_fmt_time(r['epoch_median_s'])}{_noisy(r)}",
        f"{_fmt_time(ref['epoch_median_s'])}{_noisy(ref)}",
        fmt(ratio),
        pcell,
        verdict,
    ]


def _pair_for(result: dict[str, Any], cfg: dict[str, Any], **match: Any) -> dict[str, Any]:
    """The paired entry (``derived.paired``) at ``cfg``'s batch size whose fields equal
    ``match``, or {}."""
    paired = (result.get("derived") or {}).get("paired", {})
    return next(
        (
            p
            for p in paired.values()
            if p["batch_size"] == cfg["batch_size"] and all(p.get(k) == v for k, v in match.items())
        ),
        {},
    )


def _clip_section(
    result: dict[str, Any], configs: list[dict[str, Any]], by_key: dict[tuple[str, str], Any]
) -> list[str]:
    lines = _section(
        "kerox: cost of gradient clipping (target: at most +10 % epoch time)",
        [
            "Overhead = kerox epoch time with the option / without it at the same batch size - "
            "1. *Separate*: from the rows above (other processes, other moments). *Paired*: "
            "one process alternating epochs of the two models, median of the per-pair "
            "ratios; the verdict uses it when present."
        ],
        ["batch", "option", "s/epoch", "unclipped s/epoch", "separate", "paired", "≤ 10 %"],
        "llrrrrc",
    )
    for cfg in configs:
        kind = cfg.get("clip_kind") or ("clipnorm" if cfg.get("clipnorm") is not None else None)
        if kind is None or cfg.get("group") == "paired":
            continue
        value = cfg.get("clip_value", cfg.get("clipnorm"))
        pair = _pair_for(result, cfg, clip={kind: value})
        cells = _variant_cells(by_key, cfg, pair, 10.0, lambda q: f"{100.0 * (q - 1.0):+.1f} %")
        lines.append(f"| {cfg['batch_size']} | {kind}={value:g} | " + " | ".join(cells) + " |")
    return lines


def _is_adam(cfg: dict[str, Any]) -> bool:
    return cfg.get("optimizer") == "adam" and not cfg.get("clip_kind")


#: kerox's target for Adam's epoch time over plain SGD's at the same batch size.
ADAM_SGD_TARGET = 1.15


def _adam_section(
    result: dict[str, Any],
    configs: list[dict[str, Any]],
    fws: list[str],
    by_key: dict[tuple[str, str], Any],
) -> list[str]:
    peers = [fw for fw in fws if fw != REFERENCE]
    lines = _section(
        f"kerox: cost of Adam over SGD (target: Adam/SGD at most {ADAM_SGD_TARGET:.2f})",
        [
            "Adam/SGD = epoch time with Adam(learning_rate=1e-3) / with SGD(learning_rate=0.01) "
            "at the same batch size. *Separate*: from the rows above. *Paired*: one kerox "
            "process alternating epochs of the two models, median of the per-pair ratios; the "
            "verdict uses it when present. The peers' Adam/SGD (separate rows) for comparison."
        ],
        ["batch", "Adam s/epoch", "SGD s/epoch", "Adam/SGD", "paired", f"≤ {ADAM_SGD_TARGET}"]
        + [f"Adam/SGD, {FRAMEWORKS[fw]}" for fw in peers],
        "lrrrrc" + "r" * len(peers),
    )
    limit_pct = 100.0 * (ADAM_SGD_TARGET - 1.0)
    for cfg in configs:
        if not _is_adam(cfg):
            continue
        pair = _pair_for(result, cfg, optimizer="adam", clip=None, threads=None)
        cells = _variant_cells(by_key, cfg, pair, limit_pct, lambda q: f"{q:.2f}x")
        for fw in peers:
            a, sgd = (by_key.get((fw, k)) for k in (cfg["key"], f"b{cfg['batch_size']}"))
            ok = a and sgd and a["status"] == "ok" and sgd["status"] == "ok"
            cells.append(
                f"{a['epoch_median_s'] / sgd['epoch_median_s']:.2f}x{_noisy(a) or _noisy(sgd)}"
                if ok
                else "-"
            )
        lines.append(f"| {cfg['batch_size']} | " + " | ".join(cells) + " |")
    return lines


#: Target for the extras (an L2 kernel regularizer, more metrics): at most this much slower.
EXTRAS_TARGET_PCT = 10.0


def _extras_section(
    result: dict[str, Any],
    configs: list[dict[str, Any]],
    fws: list[str],
    by_key: dict[tuple[str, str], Any],
) -> list[str]:
    peers = [fw for fw in fws if fw != REFERENCE]
    has_ref = REFERENCE in fws
    lines = _section(
        f"Cost of the extras (kerox's target: at most +{EXTRAS_TARGET_PCT:g} % epoch time)",
        [
            "Overhead = a framework's epoch time with the extra / its time for the plain seed "
            "model (the batch row above, same run) - 1. *l2*: "
            "`kernel_regularizer=keras.regularizers.l2(1e-4)` on every Dense layer; *metrics*: "
            "`metrics=['accuracy', 'mse', keras.metrics.RootMeanSquaredError(), 'mae']` "
            "instead of `['accuracy']`. kerox *separate*: from the rows above; *paired*: one "
            "process alternating epochs of the plain and the extra model, median of the "
            "per-pair ratios; the verdict uses it when present. The peers' overheads (separate "
            "rows) beside it."
        ],
        ["batch", "extra"]
        + (["kerox s/epoch", "plain s/epoch", "separate", "paired"] if has_ref else [])
        + ([f"≤ {EXTRAS_TARGET_PCT:g} %"] if has_ref else [])
        + [FRAMEWORKS[fw] for fw in peers],
        "ll" + ("rrrrc" if has_ref else "") + "r" * len(peers),
    )

    def pct(q: float) -> str:
        return f"{100.0 * (q - 1.0):+.1f} %"

    for cfg in configs:
        extra = cfg.get("extras")
        if not extra:
            continue
        cells = []
        if has_ref:
            pair = _pair_for(result, cfg, extras=extra)
            cells += _variant_cells(by_key, cfg, pair, EXTRAS_TARGET_PCT, pct)
        for fw in peers:
            a, plain = (by_key.get((fw, k)) for k in (cfg["key"], f"b{cfg['batch_size']}"))
            ok = a and plain and a["status"] == "ok" and plain["status"] == "ok"
            if ok:
                ratio = a["epoch_median_s"] / plain["epoch_median_s"]
                cells.append(pct(ratio) + (_noisy(a) or _noisy(plain)))
            else:
                cells.append(a["status"] if a and a["status"] != "ok" else "-")
        lines.append(f"| {cfg['batch_size']} | {extra} | " + " | ".join(cells) + " |")
    return lines


def plot_epoch_times(result_json: str, png: str) -> None:
    """Grouped bar chart: seconds per epoch by configuration (groups) and framework (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads(Path(result_json).read_text())
    configs = _shared(result["configs"])
    fws = [fw for fw in FRAMEWORKS if fw in result["frameworks"]]
    by_key = {(r["framework"], r["config"]): r for r in result["runs"]}
    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    width = 0.8 / max(len(fws), 1)
    for i, fw in enumerate(fws):
        xs, ys, noisy = [], [], []
        for j, cfg in enumerate(configs):
            r = by_key.get((fw, cfg["key"]))
            if r and r["status"] == "ok":
                xs.append(j + (i - (len(fws) - 1) / 2) * width)
                ys.append(r["epoch_median_s"])
                noisy.append((r.get("external_cores") or 0.0) > NOISE_CORES)
        label = FRAMEWORKS[fw] if xs else f"{FRAMEWORKS[fw]} (not measured)"
        bars = ax.bar(xs, ys, width, label=label)
        for bar, is_noisy in zip(bars, noisy, strict=True):
            if is_noisy:
                bar.set_hatch("//")
                bar.set_edgecolor("black")
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
    ax.set_xticks(range(len(configs)), [config_label(c) for c in configs])
    keys = {c["key"] for c in configs}
    heights = [
        r["epoch_median_s"] for r in result["runs"] if r["status"] == "ok" and r["config"] in keys
    ]
    if heights and max(heights) > 30 * min(heights):
        ax.set_yscale("log")
    ax.set_ylabel("seconds per epoch (median, lower is better)")
    ax.set_xlabel(f"hatched: other processes used > {NOISE_CORES} cores during that run (noise)")
    m = result["machine"]
    ax.set_title(
        f"Seed MLP on MNIST (60k images), fit epoch time\n{m['cpu_model']}, {m['cores']} cores",
        fontsize=10,
    )
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(png)
    plt.close(fig)
