"""Summarises balanced_engine_stage_seconds from a /metrics page read on stdin.

One line per stage: how many observations, the mean, and the bucket bounds that hold the
50th, 99th and 99.9th percentiles (a histogram knows no more than its buckets).
Usage: curl -s http://HOST:PORT/metrics | python3 bench/stages.py
"""
import re
import sys

METRIC = "balanced_engine_stage_seconds"
line_re = re.compile(METRIC + r'_(bucket|sum|count)\{([^}]*)\} (\S+)')

stages = {}
for line in sys.stdin:
    match = line_re.match(line)
    if not match:
        continue
    kind, labels, value = match.groups()
    fields = dict(re.findall(r'(\w+)="([^"]*)"', labels))
    stage = stages.setdefault(fields["stage"], {"buckets": [], "sum": 0.0, "count": 0.0})
    if kind == "bucket":
        stage["buckets"].append((float(fields["le"]), float(value)))
    else:
        stage[kind] = float(value)


def bound(buckets, count, quantile):
    for le, cumulative in sorted(buckets):
        if cumulative >= quantile * count:
            return "<= %g ms" % (le * 1000) if le != float("inf") else "> last bucket"
    return "?"


if not stages:
    sys.exit("no %s in the input" % METRIC)
for name, stage in stages.items():
    count = stage["count"]
    if count == 0:
        print("%-11s no observations" % name)
        continue
    print("%-11s n=%-9d mean %8.3f ms   p50 %-12s p99 %-12s p99.9 %s" % (
        name, count, stage["sum"] / count * 1000, bound(stage["buckets"], count, 0.5),
        bound(stage["buckets"], count, 0.99), bound(stage["buckets"], count, 0.999)))
