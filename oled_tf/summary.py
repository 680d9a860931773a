"""Summarise OLED runs: ``python -m oled_tf.summary runs/oled_quick/fashion_mnist_c*`` prints a markdown table
of every score's AUROC per normal class, the mean over classes and the wall time (from each ``metrics.json``)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

SCORES = ("s_rec", "s_mask", "s_cont", "s_avg")


def load(workdirs) -> list[dict]:
    out = []
    for d in workdirs:
        p = Path(d) / "metrics.json"
        if p.exists():
            out.append(json.loads(p.read_text()))
    return sorted(out, key=lambda m: (m["dataset"], m["normal_class"]))


def table(runs: list[dict], key: str = "auroc") -> str:
    if not runs:
        return "(no finished runs)"
    lines = ["| class | " + " | ".join(SCORES) + " | wall s |", "|---" * (len(SCORES) + 2) + "|"]
    for m in runs:
        lines.append(f"| {m['normal_class']} | " + " | ".join(f"{m[key][s]:.4f}" for s in SCORES)
                     + f" | {m['wall_seconds']:.0f} |")
    means = {s: sum(m[key][s] for m in runs) / len(runs) for s in SCORES}
    total = sum(m["wall_seconds"] for m in runs)
    lines.append(f"| mean ({len(runs)}) | " + " | ".join(f"**{means[s]:.4f}**" for s in SCORES)
                 + f" | {total:.0f} total |")
    return "\n".join(lines)


def main(argv) -> int:
    runs = load(argv[1:])
    print(table(runs, "auroc"))
    if runs and "auroc_last_epoch" in runs[0]:
        print("\nLast epoch (no model selection):\n")
        print(table(runs, "auroc_last_epoch"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
