"""Python steps of examples/yaml/daily_report.yaml (found because it sits next to the YAML file)."""

import csv
from collections import Counter


def count_by_status(path: str, min_orders: int, ctx) -> dict[str, int]:
    """Orders per status in the CSV file at `path`, leaving out rare statuses."""
    with open(path, newline="") as fh:
        counts = Counter(row["status"] for row in csv.DictReader(fh))
    ctx.log.info("%d statuses in %s", len(counts), path)
    return {status: n for status, n in sorted(counts.items()) if n >= min_orders}
