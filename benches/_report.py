"""Reporting side of ``bench_fit.py``: markdown tables and the epoch-time bar chart.

Only the standard library at import time; matplotlib is imported inside :func:`plot_epoch_times`
(the driver runs that in the peers' interpreter when its own has no matplotlib).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _workers import FRAMEWORKS

REFERENCE = "kerox"


def config_label(cfg: dict[str, Any]) -> str:
    """Human label of a fit configuration, e.g. ``batch 32 + clipnorm 1.0``."""
    label = f"batch {cfg['batch_size']}"
    if cfg.get("clipnorm") is not None:
        label += f" + clipnorm {cfg['clipnorm']:g}"
    return label


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
    configs = result["configs"]
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
        lines += ["", "### predict on 10,000 test images (seconds per pass)", "", header, sep]
        for pb in pbs:

            def pred(fw: str, pb: int = pb) -> float | None:
                p = by_key.get((fw, pcfg), {}).get("predict", {}).get(str(pb), {})
                return p.get("median_s")

            ref = pred(ref_fw) if ref_fw else None
            cells = [
                _cell(by_key.get((fw, pcfg)), pred(fw), None if fw == ref_fw else ref, _fmt_time)
                for fw in fws
            ]
            lines.append(f"| predict, batch {pb} | " + " | ".join(cells) + " |")

    if any((r.get("external_cores") or 0.0) > NOISE_CORES for r in runs if r["status"] == "ok"):
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


def plot_epoch_times(result_json: str, png: str) -> None:
    """Grouped bar chart: seconds per epoch by configuration (groups) and framework (bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    result = json.loads(Path(result_json).read_text())
    configs = result["configs"]
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
    heights = [r["epoch_median_s"] for r in result["runs"] if r["status"] == "ok"]
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
