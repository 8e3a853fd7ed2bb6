"""`make bench-api`: raw in-process speed, then the HTTP service under load; one JSON line.

Same machine, model and images for both halves:

1. raw in-process: decode + preprocess + onnxruntime through the API's own
   `LoadedModel.predict`, no HTTP: the work of a prediction, novelty score included
   where the model has one. Single-image latency (one at a time), and throughput with
   preprocessing on every core and inference in batches (the best this process can do).
2. HTTP: the API as a uvicorn process; p50 at low load (one request at a time), then
   concurrent clients: throughput, p50/p95/p99, errors, the server's peak RSS.

The model: `--model-path DIR` (model.onnx + preprocessing.json), `--registry` (the
alias PLANTOPS_MODEL_ALIAS of PLANTOPS_MODEL_NAME through PLANTOPS_MLFLOW_TRACKING_URI and
PLANTOPS_S3_*), or by default a synthetic CNN built here (random weights, about 0.19
GMAC per image at 224 px: roughly half an EfficientNet-Lite0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil

from plantops_inference_api.config import Settings
from plantops_inference_api.model import LoadedModel, ModelSource, load_model_dir
from plantops_inference_api.preprocessing import preprocess_bytes
from plantops_inference_api.registry import Registry, download_model_files

BUDGET = Settings().image_budget  # the API's default budget


def synthetic_cnn(folder: Path, labels=("dandelion", "grass")) -> Path:
    """Four stride-2 3x3 convolutions (32-64-128-256), global pool, a linear head."""
    from plantops_infra.testing import write_tiny_model

    return write_tiny_model(folder, labels, "cnn")


def load_images(count: int) -> list[bytes]:
    from plantops_infra.servers import default_images_dir

    root = default_images_dir(Path(__file__).resolve())
    if root is None:
        sys.exit("bench-api: the plant photos are missing (set PLANTOPS_IMAGES_DIR)")
    paths = sorted(root.glob("*/*.jpg"))
    step = max(1, len(paths) // count)
    return [p.read_bytes() for p in paths[::step][:count]]


def percentiles(samples_s: list[float]) -> dict[str, float]:
    ms = np.array(samples_s) * 1000
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 2) for q in (50, 95, 99)}


def bench_raw(model: LoadedModel, images: list[bytes], batch: int) -> dict:
    def one(data: bytes) -> np.ndarray:
        return preprocess_bytes(data, model.spec, BUDGET)

    for data in images[:5]:  # warm-up
        model.predict(one(data)[None])
    latencies = []
    for data in images:
        start = time.perf_counter()
        model.predict(one(data)[None])
        latencies.append(time.perf_counter() - start)
    # Pipelined: the pool preprocesses ahead while batches run, as the server overlaps them.
    work = images * 2
    with ThreadPoolExecutor(len(os.sched_getaffinity(0))) as pool:  # the cores given (taskset)
        start = time.perf_counter()
        pending = [pool.submit(one, data) for data in work]
        for i in range(0, len(work), batch):
            model.predict(np.stack([f.result() for f in pending[i : i + batch]]))
        elapsed = time.perf_counter() - start
    single = len(latencies) / sum(latencies)
    batched = len(work) / elapsed
    return {
        "single_image_latency_p50_ms": round(statistics.median(latencies) * 1000, 2),
        "single_image_throughput_per_s": round(single, 1),
        "batched_throughput_per_s": round(batched, 1),
        # The target compares HTTP with the better of the two in-process ways.
        "throughput_per_s": round(max(single, batched), 1),
    }


def multipart_request(data: bytes, port: int) -> bytes:
    """A complete keep-alive HTTP/1.1 request for POST /v1/predict, encoded once."""
    boundary = b"benchboundary7d2f"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + data + b"\r\n--" + boundary + b"--\r\n"
    )
    head = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


async def read_status(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v)
        for k, _, v in (ln.partition(":") for ln in lines[1:])
        if k.lower() == "content-length"
    )
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def http_load(port: int, images: list[bytes], concurrency: int, total: int) -> dict:
    """Closed-loop load: `concurrency` keep-alive connections, `total` requests in all.

    The client is plain asyncio sockets with pre-encoded requests, so it takes as little
    as possible of the CPU it shares with the server.
    """
    requests = [multipart_request(data, port) for data in images]
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))

    async def worker() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for i in counter:
                start = time.perf_counter()
                try:
                    writer.write(requests[i % len(requests)])
                    ok = await read_status(reader) == 200
                except (OSError, asyncio.IncompleteReadError, ValueError, StopIteration):
                    ok = False
                latencies.append(time.perf_counter() - start)
                errors += not ok
        finally:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return {
        "concurrency": concurrency,
        "requests": total,
        "errors": errors,
        "throughput_per_s": round(total / elapsed, 1),
        **percentiles(latencies),
    }


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    # As `make run` and the image start it: uvicorn with the deadlines and limits.
    command = [sys.executable, "-m", "plantops_inference_api.cli", "serve", "--port", str(port)]
    env = {"PLANTOPS_LOG_LEVEL": "WARNING", **env}
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=out)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench-api: the API exited:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    sys.exit(f"bench-api: the API was not ready in 120 s:\n{log.read_text()}")


def peak_rss_during(proc: subprocess.Popen, coro) -> tuple[dict, float]:
    process = psutil.Process(proc.pid)
    peak = 0

    async def sample(stop: asyncio.Event) -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, process.memory_info().rss)
            await asyncio.sleep(0.05)

    async def run() -> dict:
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample(stop))
        try:
            return await coro
        finally:
            stop.set()
            await sampler

    result = asyncio.run(run())
    return result, round(peak / 2**20, 1)


def resolve_model(args: argparse.Namespace, workdir: Path) -> tuple[Path, str]:
    if args.model_path:
        return Path(args.model_path), f"path:{args.model_path}"
    if args.registry:
        settings = Settings()
        source = Registry(settings).resolve()
        folder = workdir / "champion"
        folder.mkdir()
        download_model_files(settings, source.source_uri or "", folder)
        return folder, f"registry:{source.name}@{source.alias}=v{source.version}"
    return synthetic_cnn(workdir / "synthetic"), "synthetic-cnn-4conv-224px (random weights)"


def best_of(rounds: list[dict], key: str, pick=max) -> dict:
    return pick(rounds, key=lambda r: r[key])


def raw_only(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder, model_label = resolve_model(args, Path(tmp))
        images = load_images(args.images)
        model = load_model_dir(folder, ModelSource("bench", "bench", "bench"))
        raws = [bench_raw(model, images, batch=args.batch) for _ in range(args.rounds)]
    return {
        "bench": "api_raw",
        "model": model_label,
        "cores": sorted(os.sched_getaffinity(0)),
        "raw": best_of(raws, "throughput_per_s"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", help="folder with model.onnx + preprocessing.json")
    parser.add_argument("--registry", action="store_true", help="the champion via MLflow + S3")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="raw in-process batch size")
    parser.add_argument(
        "--raw-only",
        action="store_true",
        help="only the raw in-process rounds (bench-load runs them on the server's cores)",
    )
    args = parser.parse_args()
    if args.raw_only:
        print(json.dumps(raw_only(args)))
        return

    from plantops_infra.processes import free_port

    raws, lows, highs, rss = [], [], [], 0.0
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder, model_label = resolve_model(args, Path(tmp))
        images = load_images(args.images)
        model = load_model_dir(folder, ModelSource("bench", "bench", "bench"))
        port = free_port()
        env = {
            "PLANTOPS_MODEL_PATH": str(folder),
            "PLANTOPS_API_PORT": str(port),
            "MALLOC_ARENA_MAX": os.environ.get("MALLOC_ARENA_MAX", "2"),  # as `make run`
        }
        proc = start_server(env, port, Path(tmp) / "api.log")
        try:
            asyncio.run(http_load(port, images, 4, 40))  # warm-up
            # Raw and HTTP rounds alternate, and each figure is the best of its rounds:
            # on a machine shared with other work, both halves then meet the same luck.
            for _ in range(args.rounds):
                raws.append(bench_raw(model, images, batch=args.batch))
                low, peak_low = peak_rss_during(proc, http_load(port, images, 1, 100))
                high, peak_high = peak_rss_during(
                    proc, http_load(port, images, args.concurrency, args.requests)
                )
                lows.append(low)
                highs.append(high)
                rss = max(rss, peak_low, peak_high)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    raw = {
        **best_of(raws, "throughput_per_s"),
        "single_image_latency_p50_ms": min(r["single_image_latency_p50_ms"] for r in raws),
    }
    low, high = best_of(lows, "p50_ms", min), best_of(highs, "throughput_per_s")
    errors = sum(r["errors"] for r in lows + highs)
    result = {
        "bench": "api",
        "model": model_label,
        "cpus": os.cpu_count(),
        "images": len(images),
        "rounds": args.rounds,
        "raw": raw,
        "http_low_load": low,
        "http_load": high,
        "errors_all_rounds": errors,
        "server_peak_rss_mb": rss,
    }
    result["targets"] = {
        "http_throughput_ge_80pct_raw": high["throughput_per_s"] >= 0.8 * raw["throughput_per_s"],
        "low_load_p50_within_5ms_of_raw": low["p50_ms"] <= raw["single_image_latency_p50_ms"] + 5,
        "zero_errors": errors == 0,
        "rss_under_300mb": rss < 300,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
