"""Benchmark of the ingestion: 400 images from the local mirror into raw/, fmt/, agg/.

Starts its own servers (SeaweedFS on a free port, a fresh database on the
test MySQL server, the image mirror) so it never touches the demo's data, then:
1. the pipeline's first run (select, fetch, validate, store, agg, publish), in-process;
2. a rerun (must download and write nothing);
3. one `airflow dags test plants_ingest` of that rerun, to report Airflow's own
   start-up apart from the pipeline's work.
Prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from plantops_infra.processes import free_port
from plantops_infra.servers import (
    MySQLEndpoint,
    S3Endpoint,
    default_images_dir,
    start_mariadb,
    start_mirror,
    start_seaweedfs,
)

from plantops_orchestration import db, ingest
from plantops_orchestration.config import get_settings

COMPONENT = Path(__file__).resolve().parents[1]
BENCH_KEY, BENCH_SECRET = "plantops-bench", "plantops-bench-secret"  # throwaway, loopback only


def mysql_server(folder: Path):
    """The machine's MariaDB when it answers (as the test fixtures do), else a private one."""
    machine = MySQLEndpoint(
        os.environ.get("PLANTOPS_TEST_MYSQL_HOST", "127.0.0.1"),
        int(os.environ.get("PLANTOPS_TEST_MYSQL_PORT", "3306")),
        os.environ.get("PLANTOPS_TEST_MYSQL_USER", "root"),
        os.environ.get("PLANTOPS_TEST_MYSQL_PASSWORD", ""),
    )
    if machine.healthy():
        return None, machine
    return start_mariadb(folder / "mysql", free_port(), folder / "mariadb.log")


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, round(time.perf_counter() - started, 2)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="plantops-bench-ingest-"))
    images = default_images_dir(COMPONENT)
    if images is None:
        sys.exit("the plant images are missing: set PLANTOPS_IMAGES_DIR")
    s3 = S3Endpoint("127.0.0.1", free_port(), BENCH_KEY, BENCH_SECRET)
    processes = [start_seaweedfs(folder / "s3", s3, folder / "weed.log")]
    mirror_port = free_port()
    processes.append(start_mirror(images, mirror_port, folder / "mirror.log"))
    mysql_proc, mysql = mysql_server(folder)
    if mysql_proc is not None:
        processes.append(mysql_proc)
    database = f"plantops_bench_{uuid.uuid4().hex[:8]}"
    mysql.ensure_database(database)
    s3.ensure_buckets("plantops-data")
    env = {
        "PLANTOPS_MYSQL_HOST": mysql.host,
        "PLANTOPS_MYSQL_PORT": str(mysql.port),
        "PLANTOPS_MYSQL_USER": mysql.user,
        "PLANTOPS_MYSQL_PASSWORD": mysql.password,
        "PLANTOPS_MYSQL_DATABASE": database,
        "PLANTOPS_S3_ENDPOINT": s3.endpoint,
        "PLANTOPS_S3_ACCESS_KEY": BENCH_KEY,
        "PLANTOPS_S3_SECRET_KEY": BENCH_SECRET,
        "PLANTOPS_S3_BUCKET": "plantops-data",
        "PLANTOPS_MIRROR_BASE_URL": f"http://127.0.0.1:{mirror_port}/",
    }
    os.environ.update(env)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        with db.connection(settings) as conn:
            db.init_db(conn)
        first, first_s = timed(ingest.run_all, settings)
        rerun, rerun_s = timed(ingest.run_all, settings)
        migrate_s, dags_test_s = airflow_rerun(folder / "airflow", env)
        figures = {
            "benchmark": "ingest",
            "images": first["stored"] + len(first["duplicates"]),
            "failed": len(first["failed"]),
            "first_run_s": first_s,
            "images_per_s": round(first["stored"] / first_s, 1),
            "rerun_s": rerun_s,
            "rerun_rows": rerun["rows"],
            "same_version": rerun["dataset_version"] == first["dataset_version"],
            "airflow_db_migrate_s": migrate_s,
            "airflow_dags_test_rerun_s": dags_test_s,
            "airflow_overhead_s": round(dags_test_s - rerun_s, 2),
            "concurrency": settings.download_concurrency,
            "cpus": os.cpu_count(),
        }
        print(json.dumps(figures))
    finally:
        mysql.drop_database(database)
        for process in reversed(processes):
            process.stop()


def airflow_rerun(home: Path, env: dict[str, str]) -> tuple[float, float]:
    airflow = str(Path(sys.executable).parent / "airflow")
    full_env = {
        **os.environ,
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(COMPONENT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    _, migrate_s = timed(
        subprocess.run, [airflow, "db", "migrate"], check=True, capture_output=True, env=full_env
    )
    run = [airflow, "dags", "test", "plants_ingest"]
    _, dags_test_s = timed(subprocess.run, run, check=True, capture_output=True, env=full_env)
    return migrate_s, dags_test_s


if __name__ == "__main__":
    main()
