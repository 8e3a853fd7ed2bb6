"""`make bench-cpu-split`: where the server's core goes per prediction; one JSON line.

The gap between raw in-process throughput and what the server sustains (issue 14) is CPU
the server spends per request beyond the work of a prediction. This measures it per
thread, on one core, for one photo repeated (so the work per request is fixed):

1. the API (`plantops-inference-api serve`) pinned to --server-core, `hey` (Debian
   package) on --generator-core in a closed loop with --clients connections; the CPU time
   of each of the API's threads (`/proc/<pid>/task/*/stat`) over --seconds, divided by the
   predictions answered (with --rate R: one client at R requests a second, `hey -q`,
   so requests arrive one at a time, as in the load benchmark's search below capacity,
   instead of a closed loop that keeps the server busy). The main thread runs the event
   loop: HTTP, multipart, FastAPI, the response, the log record and the metrics. The
   others are the CPU pool (decode and inference).
2. in process, on the same core: the same photo through `preprocess_bytes` and
   `LoadedModel.predict`, each timed with the thread's own CPU clock.

    make bench-cpu-split BENCH_ARGS="--model-path DIR"
    make bench-cpu-split BENCH_ARGS="--model-path DIR --rate 30"
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

BOUNDARY = "benchcpusplit"
CLI = Path(sys.executable).with_name("plantops-inference-api")
TICKS = os.sysconf("SC_CLK_TCK")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of a process, by thread id."""
    seconds = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        seconds[int(task.name)] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def multipart(photo: bytes) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="photo.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    return head.encode() + photo + f"\r\n--{BOUNDARY}--\r\n".encode()


def hey(url: str, body_file: str, core: str, clients: int, how: list[str]) -> int:
    """Predictions answered 200 by a `hey` run (`how`: -n N or -z Ns, and -q R)."""
    command = ["taskset", "-c", core, "hey", "-c", str(clients), *how, "-m", "POST"]
    command += ["-D", body_file, "-T", f"multipart/form-data; boundary={BOUNDARY}", url]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return sum(int(n) for n in re.findall(r"\[200\]\s+(\d+) responses", out))


def wait_ready(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("bench-cpu-split: the API exited at start")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    sys.exit("bench-cpu-split: the API was not ready in 120 s")


def server_split(args: argparse.Namespace, photo: bytes) -> dict:
    # Another server on the port would answer in place of the one measured, whose threads
    # then show no CPU at all: a result of 0 ms instead of an error.
    from plantops_infra.processes import port_open

    if port_open("127.0.0.1", args.port):
        sys.exit(f"bench-cpu-split: port {args.port} is in use; pass --port")
    env = {**os.environ, "PLANTOPS_MODEL_PATH": args.model_path, "PLANTOPS_LOG_LEVEL": "WARNING"}
    env.setdefault("MALLOC_ARENA_MAX", "2")  # as `make run`
    command = ["taskset", "-c", args.server_core, str(CLI), "serve", "--port", str(args.port)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{args.port}/v1/predict"
    try:
        wait_ready(args.port, proc)
        with tempfile.NamedTemporaryFile(suffix=".multipart") as body:
            body.write(multipart(photo))
            body.flush()
            hey(url, body.name, args.generator_core, args.clients, ["-n", "300"])  # warm-up
            before = thread_cpu_s(proc.pid)
            clients, how = args.clients, ["-z", f"{args.seconds:g}s"]
            if args.rate:
                clients, how = 1, [*how, "-q", f"{args.rate:g}"]
            answered = hey(url, body.name, args.generator_core, clients, how)
            after = thread_cpu_s(proc.pid)
        if proc.poll() is not None:
            sys.exit("bench-cpu-split: the API exited during the run")
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    per_thread = {tid: after[tid] - before.get(tid, 0.0) for tid in after}
    main = per_thread.pop(proc.pid, 0.0)  # taskset execs the API: its pid is the main thread
    workers = sum(per_thread.values())
    return {
        "predictions": answered,
        "main_thread_ms": round(1000 * main / answered, 3),
        "worker_threads_ms": round(1000 * workers / answered, 3),
        "total_ms": round(1000 * (main + workers) / answered, 3),
    }


IN_PROCESS = """
import json, sys, time
from pathlib import Path
from plantops_inference_api.config import Settings
from plantops_inference_api.model import ModelSource, load_model_dir
from plantops_inference_api.preprocessing import preprocess_bytes
model = load_model_dir(Path(sys.argv[1]), ModelSource("bench", "bench", "bench"))
budget, data, n = Settings().image_budget, Path(sys.argv[2]).read_bytes(), int(sys.argv[3])
for _ in range(30):
    model.predict(preprocess_bytes(data, model.spec, budget)[None])
decode = infer = 0.0
for _ in range(n):
    t0 = time.thread_time(); x = preprocess_bytes(data, model.spec, budget)[None]
    t1 = time.thread_time(); model.predict(x); t2 = time.thread_time()
    decode, infer = decode + t1 - t0, infer + t2 - t1
print(json.dumps({"preprocess_ms": round(1000 * decode / n, 3),
                  "predict_ms": round(1000 * infer / n, 3),
                  "total_ms": round(1000 * (decode + infer) / n, 3)}))
"""


def in_process_split(args: argparse.Namespace, photo_path: Path) -> dict:
    command = ["taskset", "-c", args.server_core, sys.executable, "-c", IN_PROCESS]
    command += [args.model_path, str(photo_path), str(args.repeats)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def default_photo() -> Path:
    from plantops_infra.servers import default_images_dir

    root = default_images_dir(Path(__file__).resolve())
    if root is None:
        sys.exit("bench-cpu-split: the plant photos are missing (set PLANTOPS_IMAGES_DIR)")
    return sorted(root.glob("dandelion/*.jpg"))[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-path", required=True, help="model.onnx + preprocessing.json")
    parser.add_argument("--photo", type=Path, help="default: the first dataset dandelion")
    parser.add_argument("--server-core", default="0")
    parser.add_argument("--generator-core", default="1")
    parser.add_argument("--clients", type=int, default=8, help="closed loop (without --rate)")
    parser.add_argument("--rate", type=float, help="one client at this many requests/s")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--port", type=int, default=8391)
    args = parser.parse_args()
    photo_path = args.photo or default_photo()
    load_before = os.getloadavg()
    server = server_split(args, photo_path.read_bytes())
    in_process = in_process_split(args, photo_path)
    print(
        json.dumps(
            {
                "bench": "api_cpu_split",
                "photo": photo_path.name,
                "photo_bytes": photo_path.stat().st_size,
                "load": f"1 client at {args.rate:g}/s" if args.rate else f"{args.clients} clients",
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "server_per_prediction": server,
                "in_process_per_prediction": in_process,
                "server_over_in_process": round(server["total_ms"] / in_process["total_ms"], 3),
            }
        )
    )


if __name__ == "__main__":
    main()
