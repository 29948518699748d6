#!/usr/bin/env python3
"""Draws the JSON of tools/bench.sh as a PNG: mhfa and PyTorch ms per case, ratio on the bars.

    python tools/bench_chart.py bench.json out.png

One group of two bars per case (median forward ms, log scale when the times span more than 20x),
the ratio PyTorch ms / mhfa ms above each group ("x faster" when above 1), the devices and the
date in the title. A case without both times gets a note instead of a ratio. When the JSON has CPU
peers, a third bar shows the best float32 peer (named under the case), its ratio under PyTorch's.
"""
import argparse
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

MHFA_COLOR = "#1f77b4"
TORCH_COLOR = "#ff7f0e"
PEER_COLOR = "#2ca02c"


def ratio_text(row):
    """The text above a case's bars and its colour."""
    mhfa, torch = row.get("mhfa_ms"), row.get("torch_ms")
    if mhfa and torch:
        ratio = torch / mhfa
        if ratio >= 1:
            return f"{ratio:.2f}x faster", "darkgreen"
        return f"{ratio:.2f}x (slower)", "darkred"
    if row.get("error"):
        return "error", "darkred"
    if row.get("skipped"):
        return row.get("note") or "skipped", "dimgray"
    return ("no PyTorch time" if mhfa else "no mhfa time"), "dimgray"


def peer_text(row):
    """The line under the ratio for the best float32 peer and its colour, or (None, None)."""
    ratio = row.get("best_f32_ratio")
    if not ratio:
        return None, None
    if ratio >= 1:
        return f"vs best peer: {ratio:.2f}x faster", PEER_COLOR
    return f"vs best peer: {ratio:.2f}x (slower)", "darkred"


def title(rows):
    def joined(key):
        return ", ".join(dict.fromkeys(r[key] for r in rows if r.get(key))) or "-"
    date = joined("date").replace("T", " ").replace("+00:00", " UTC")
    devices = f"mhfa: {joined('device')}    PyTorch: {joined('torch_device')}"
    peers = " and the best float32 CPU peer" if any(r.get("best_f32_ms") for r in rows) else ""
    return f"mhfa vs PyTorch{peers} ({date})\n{devices}"


def draw(rows, path):
    mhfa = [r.get("mhfa_ms") or 0 for r in rows]
    torch = [r.get("torch_ms") or 0 for r in rows]
    peer = [r.get("best_f32_ms") or 0 for r in rows]
    times = [t for t in mhfa + torch + peer if t > 0]
    log = bool(times) and max(times) / min(times) > 20

    groups = [mhfa, torch] + ([peer] if any(peer) else [])
    fig, ax = plt.subplots(figsize=(max(6.5, (0.85 * len(groups)) * len(rows) + 2), 5.2))
    x = range(len(rows))
    width = 0.76 / len(groups)

    def offset(k):  # bar k of a group, centred on the case
        return [i + (k - (len(groups) - 1) / 2) * width for i in x]

    bars_m = ax.bar(offset(0), mhfa, width, label="mhfa", color=MHFA_COLOR)
    bars_t = ax.bar(offset(1), torch, width, label="PyTorch", color=TORCH_COLOR)
    all_bars = [bars_m, bars_t]
    if len(groups) == 3:
        bars_p = ax.bar(offset(2), peer, width, label="best float32 CPU peer", color=PEER_COLOR)
        all_bars.append(bars_p)
    if log:
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    top = max(times) if times else 1
    ax.set_ylim(top=top * (6 if log else 1.25))
    if not log:
        ax.set_ylim(bottom=0)

    for bars in all_bars:  # each bar's ms just above it
        for bar in bars:
            h = bar.get_height()
            if h > 0:
                ax.annotate(f"{h:.3g}", (bar.get_x() + bar.get_width() / 2, h),
                            xytext=(0, 2), textcoords="offset points", ha="center",
                            va="bottom", fontsize=8)
    for i, row in enumerate(rows):  # the ratio above the group, the best peer's under it
        h = max(mhfa[i], torch[i], peer[i]) or (min(times) if times else 1)
        text, color = ratio_text(row)
        below, below_color = peer_text(row)
        ax.annotate(text, (i, h), xytext=(0, 26 if below else 14), textcoords="offset points",
                    ha="center", va="bottom", fontsize=10, fontweight="bold", color=color)
        if below:
            ax.annotate(below, (i, h), xytext=(0, 14), textcoords="offset points", ha="center",
                        va="bottom", fontsize=8, color=below_color)

    ax.set_xticks(list(x))
    labels = [r["case"] + (f"\n({r['note']})" if r.get("note") and not r.get("skipped") else "")
              + (f"\nbest peer: {r['best_f32_peer']}" if r.get("best_f32_peer") else "")
              for r in rows]
    ax.set_xticklabels(labels, fontsize=10)
    ax.set_xlabel("case")
    ax.set_ylabel("median forward time, ms" + (" (log scale)" if log else ""))
    ax.set_title(title(rows), fontsize=10)
    below = -0.13 - 0.07 * max(t.count("\n") for t in labels)  # under the case names
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, below), ncol=len(groups), frameon=False)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("json", help="the JSON list written by tools/bench.sh")
    p.add_argument("png", help="the chart to write")
    args = p.parse_args()
    with open(args.json) as f:
        rows = json.load(f)
    if not rows:
        raise SystemExit("bench_chart.py: no cases in " + args.json)
    draw(rows, args.png)
    print("# chart: " + args.png)


if __name__ == "__main__":
    main()
