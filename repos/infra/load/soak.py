"""`make soak`: steady load on the API for a few minutes while its memory is sampled.

Runs Locust's `ApiUser` (the load test's API traffic: photo mix, batches, bad files) at a
fixed number of users, finds the API process by the port it listens on (it must run on
this machine), samples its resident memory (the process and its children) every few
seconds into reports/soak_memory.csv, and prints one JSON line: memory at the start of
the steady phase, at the end, the peak, and the slope over the second half (MB/min).
A flat API shows a slope near zero once its caches are warm.

    make soak API_URL=http://127.0.0.1:8000 SOAK_DURATION=300 USERS=8
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import gevent
import psutil
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).parent))  # a script beside the locustfile, not a package
import locustfile


def listening_process(port: int) -> psutil.Process:
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return psutil.Process(conn.pid)
    raise SystemExit(f"no process of this machine listens on port {port}: is the API running?")


def rss_mb(process: psutil.Process) -> float:
    processes = [process, *process.children(recursive=True)]
    total = 0
    for proc in processes:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total / 2**20


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of memory over time."""
    n = len(samples)
    if n < 2:
        return 0.0
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    num = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    den = sum((t - mean_t) ** 2 for t, _ in samples) or 1.0
    return num / den * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="http://127.0.0.1:8000")
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--duration", type=float, default=300.0, help="Seconds of steady load.")
    parser.add_argument("--warmup", type=float, default=20.0, help="Seconds before sampling.")
    parser.add_argument("--interval", type=float, default=5.0)
    parser.add_argument("--csv", type=Path, default=Path("reports/soak_memory.csv"))
    args = parser.parse_args()
    logging.getLogger("locust").setLevel(logging.WARNING)

    api = listening_process(urlparse(args.host).port or 80)
    locustfile.load_photos()
    locustfile.ApiUser.host = args.host
    env = Environment(user_classes=[locustfile.ApiUser])
    runner = env.create_local_runner()
    runner.start(args.users, spawn_rate=args.users)
    gevent.sleep(args.warmup)
    env.stats.reset_all()

    samples: list[tuple[float, float]] = []
    start = time.monotonic()
    while (elapsed := time.monotonic() - start) < args.duration:
        samples.append((elapsed, rss_mb(api)))
        gevent.sleep(args.interval)
    total = env.stats.total
    runner.quit()

    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["seconds", "rss_mb"])
        writer.writerows((round(t, 1), round(m, 1)) for t, m in samples)
    second_half = samples[len(samples) // 2 :]
    print(
        json.dumps(
            {
                "benchmark": "api_soak_memory",
                "host": args.host,
                "users": args.users,
                "seconds": args.duration,
                "requests": total.num_requests,
                "failures": total.num_failures,
                "rss_mb_start": round(samples[0][1], 1),
                "rss_mb_end": round(samples[-1][1], 1),
                "rss_mb_peak": round(max(m for _, m in samples), 1),
                "slope_mb_per_min_second_half": round(slope_mb_per_min(second_half), 2),
                "csv": str(args.csv),
            }
        )
    )


if __name__ == "__main__":
    main()
