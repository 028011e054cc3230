"""Markdown table of bench/results/latest.json (what the README shows): python -m bench.report"""

from __future__ import annotations

import json
import sys

from bench.common import RESULTS, fmt


def main() -> int:
    doc = json.loads((RESULTS / "latest.json").read_text())
    m = doc["machine"]
    print(f"Machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python {m['python']}; "
          f"everything (Kafka, HBase, Thrift, Airflow, Spark, load generators) on it. Runs: "
          + ", ".join(f"{b} {w}" for b, w in sorted(doc.get("runs", {}).items())) + "\n")  # fmt: skip
    print("| bench | what | median | [min, max] | unit | target |")
    print("|---|---|---:|---:|---|---|")
    for f in doc["figures"]:
        rng = f"[{fmt(f['min'])}, {fmt(f['max'])}]" if f["values"] else "-"
        print(f"| {f['bench']} | {f['name']} | {fmt(f['median'])} | {rng} | {f['unit']} | {f['target']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
