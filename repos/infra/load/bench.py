"""`make bench-load`: the highest request rate the inference API holds with p95 < 200 ms
and no errors, as one JSON line.

Runs Locust as a library against a running API (--host). Each step holds a fixed
arrival rate of single-image POST /v1/predict requests (users with
`constant_throughput(1)`, so users = requests per second) for --step-seconds, after a
short warm-up that is not measured. Rates double until a step fails (p95 >= 200 ms, an
error, or fewer than 90% of the intended requests done), then the gap between the last
passing and the first failing rate is bisected down to --resolution.

    make bench-load API_URL=http://127.0.0.1:8000 MIRROR_URL=http://127.0.0.1:8090/
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar

import gevent
from locust import HttpUser, constant_throughput, task
from locust.env import Environment

sys.path.insert(0, str(Path(__file__).parent))  # a script beside the locustfile, not a package
import locustfile

P95_LIMIT_MS = 200.0


class PredictUser(HttpUser):
    wait_time = constant_throughput(1)
    photos: ClassVar[list[locustfile.Photo]] = []

    @task
    def predict(self) -> None:
        photo = random.choice(self.photos)
        files = {"file": (photo.name, photo.data, photo.content_type)}
        self.client.post("/v1/predict", files=files, name="/v1/predict")


@dataclass
class Step:
    rate: int
    requests: int
    failures: int
    p95_ms: float
    achieved_rps: float

    @property
    def passed(self) -> bool:
        return (
            self.failures == 0
            and self.p95_ms < P95_LIMIT_MS
            and self.achieved_rps >= 0.9 * self.rate
        )


def run_step(host: str, rate: int, seconds: float, warmup: float) -> Step:
    PredictUser.host = host
    env = Environment(user_classes=[PredictUser])
    runner = env.create_local_runner()
    runner.start(rate, spawn_rate=max(rate, 1))
    gevent.sleep(warmup)
    env.stats.reset_all()
    started = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - started
    total = env.stats.total
    step = Step(
        rate=rate,
        requests=total.num_requests,
        failures=total.num_failures,
        p95_ms=float(total.get_response_time_percentile(0.95) or 0.0),
        achieved_rps=round(total.num_requests / elapsed, 2),
    )
    runner.quit()
    runner.greenlet.join(timeout=10)
    return step


def search(host: str, start: int, ceiling: int, seconds: float, warmup: float, resolution: int):
    steps: list[Step] = []

    def measure(rate: int) -> bool:
        step = run_step(host, rate, seconds, warmup)
        steps.append(step)
        print(json.dumps({"step": asdict(step), "passed": step.passed}), file=sys.stderr)
        return step.passed

    best, worst, rate = 0, None, start
    while rate <= ceiling:
        if not measure(rate):
            worst = rate
            break
        best, rate = rate, rate * 2
    while worst is not None and worst - best > resolution:
        middle = (best + worst) // 2
        if measure(middle):
            best = middle
        else:
            worst = middle
    return best, steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="http://127.0.0.1:8000")
    parser.add_argument("--start", type=int, default=4, help="First rate (requests/s).")
    parser.add_argument("--ceiling", type=int, default=512)
    parser.add_argument("--step-seconds", type=float, default=15.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--resolution", type=int, default=2)
    parser.add_argument(
        "--mix",
        action="store_true",
        help="Send the load test's mix (PNG, WebP, small and 3x-large JPEGs) instead of the "
        "dataset's own JPEGs.",
    )
    args = parser.parse_args()
    logging.getLogger("locust").setLevel(logging.WARNING)
    locustfile.load_photos()
    originals = [p for p in locustfile.PHOTOS if re.fullmatch(r"\w+-\d{8}\.jpg", p.name)]
    PredictUser.photos = locustfile.PHOTOS if args.mix else originals
    best, steps = search(
        args.host, args.start, args.ceiling, args.step_seconds, args.warmup_seconds, args.resolution
    )
    at_best = next((s for s in steps if s.rate == best), None)
    print(
        json.dumps(
            {
                "benchmark": "api_max_rps_p95_under_200ms",
                "host": args.host,
                "max_rps": best,
                "p95_ms_at_max": at_best.p95_ms if at_best else None,
                "request": "POST /v1/predict, one photo "
                + ("(mix of JPEG/PNG/WebP, small to large)" if args.mix else "(dataset JPEGs)"),
                "step_seconds": args.step_seconds,
                "steps": [asdict(s) | {"passed": s.passed} for s in steps],
            }
        )
    )


if __name__ == "__main__":
    main()
