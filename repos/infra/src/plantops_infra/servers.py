"""The servers PlantOps needs, started for real: S3 (SeaweedFS), MariaDB, MLflow, image mirror."""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import mysql.connector
from minio import Minio

from plantops_infra.processes import (
    ManagedProcess,
    ServiceError,
    free_port,
    http_ok,
    port_open,
    spawn,
    tool_path,
    wait_until,
)

LOOPBACK = "127.0.0.1"


# --------------------------------------------------------------------------- S3


@dataclass(frozen=True)
class S3Endpoint:
    host: str
    port: int
    access_key: str
    secret_key: str

    @property
    def endpoint(self) -> str:
        """`host:port`, the form the `minio` client takes."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def client(self) -> Minio:
        return Minio(self.endpoint, self.access_key, self.secret_key, secure=False)

    def healthy(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        try:
            self.client().list_buckets()
        except Exception:  # any S3 or connection error means "not yet"
            return False
        return True

    def ensure_buckets(self, *names: str) -> None:
        client = self.client()
        for name in names:
            if not client.bucket_exists(name):
                client.make_bucket(name)


def seaweedfs_ports(s3_port: int) -> dict[str, int]:
    """Every port `weed mini` opens, pinned, so two instances never collide.

    Left to itself SeaweedFS takes fixed ports (9333, 8888, 23646, ...) whatever
    the S3 port is; a test server would then fight with the `make up` one.
    """
    ports = {"s3.port": s3_port}
    for name in (
        "master.port",
        "master.port.grpc",
        "volume.port",
        "volume.port.grpc",
        "filer.port",
        "filer.port.grpc",
        "s3.port.grpc",
        "admin.port",
        "admin.port.grpc",
    ):
        ports[name] = free_port()
    return ports


def start_seaweedfs(
    data_dir: Path, s3: S3Endpoint, log_path: Path, timeout: float = 60.0
) -> ManagedProcess:
    """Run SeaweedFS (`weed mini`) as an S3 server with static credentials."""
    data_dir.mkdir(parents=True, exist_ok=True)
    flags = [f"-{name}={port}" for name, port in seaweedfs_ports(s3.port).items()]
    argv = [
        tool_path("weed"),
        "mini",
        f"-dir={data_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        *flags,
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
    ]
    env = {"AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key}
    proc = spawn("s3", argv, log_path, env)
    wait_until(s3.healthy, f"S3 (SeaweedFS) on {s3.endpoint}", timeout, proc)
    return proc


# ------------------------------------------------------------------------ MySQL


@dataclass(frozen=True)
class MySQLEndpoint:
    host: str
    port: int
    user: str
    password: str

    def connect(self, database: str | None = None):  # -> MySQLConnection
        return mysql.connector.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            database=database,
            connection_timeout=5,
        )

    def healthy(self) -> bool:
        if not port_open(self.host, self.port):
            return False
        try:
            self.connect().close()
        except mysql.connector.Error:
            return False
        return True

    def ensure_database(self, database: str, user: str | None = None, password: str = "") -> None:
        """Create `database` (utf8mb4) and, if given, an account with all rights on it."""
        conn = self.connect()
        try:
            cursor = conn.cursor()
            cursor.execute(
                f"CREATE DATABASE IF NOT EXISTS `{database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            if user:
                for host in ("localhost", "127.0.0.1", "%"):
                    cursor.execute(
                        "CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (user, host, password)
                    )
                    cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (user, host, password))
                    cursor.execute(f"GRANT ALL ON `{database}`.* TO %s@%s", (user, host))
            conn.commit()
        finally:
            conn.close()

    def drop_database(self, database: str) -> None:
        conn = self.connect()
        try:
            conn.cursor().execute(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            conn.close()


def mariadbd_path() -> str:
    for candidate in ("/usr/sbin/mariadbd", "/usr/sbin/mysqld"):
        if Path(candidate).exists():
            return candidate
    found = shutil.which("mariadbd")
    if not found:
        raise ServiceError("mariadbd not found: install the Debian package mariadb-server.")
    return found


def start_mariadb(data_dir: Path, port: int, log_path: Path, timeout: float = 60.0):
    """A private MariaDB server in `data_dir`, root without password, on loopback only."""
    user = getpass.getuser()
    if not (data_dir / "mysql").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        installer = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
        # --no-defaults: the machine's my.cnf belongs to its own server, not ours.
        result = subprocess.run(
            [
                installer,
                "--no-defaults",
                f"--datadir={data_dir}",
                f"--user={user}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise ServiceError(f"mariadb-install-db failed:\n{result.stdout}\n{result.stderr}")
    argv = [
        mariadbd_path(),
        "--no-defaults",
        f"--datadir={data_dir}",
        f"--socket={data_dir / 'mysqld.sock'}",
        f"--pid-file={data_dir / 'mysqld.pid'}",
        f"--port={port}",
        f"--bind-address={LOOPBACK}",
        f"--user={user}",
        "--skip-name-resolve=0",
    ]
    proc = spawn("mysql", argv, log_path)
    endpoint = MySQLEndpoint(LOOPBACK, port, "root", "")
    wait_until(endpoint.healthy, f"MariaDB on {LOOPBACK}:{port}", timeout, proc)
    return proc, endpoint


# ----------------------------------------------------------------------- MLflow


def start_mlflow(
    port: int,
    backend_store_uri: str,
    artifact_root: str,
    s3: S3Endpoint,
    log_path: Path,
    timeout: float = 90.0,
) -> ManagedProcess:
    """An MLflow tracking server whose artifacts go straight to S3.

    `--no-serve-artifacts`: clients read and write `s3://` artifact URIs themselves,
    so the inference API can fetch a registered model from S3 without MLflow's proxy.
    """
    argv = [
        tool_path("mlflow"),
        "server",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--backend-store-uri",
        backend_store_uri,
        "--default-artifact-root",
        artifact_root,
        "--no-serve-artifacts",
        "--workers",
        "1",
    ]
    env = {
        "MLFLOW_S3_ENDPOINT_URL": s3.url,
        "AWS_ACCESS_KEY_ID": s3.access_key,
        "AWS_SECRET_ACCESS_KEY": s3.secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    proc = spawn("mlflow", argv, log_path, env)
    url = f"http://{LOOPBACK}:{port}"
    wait_until(lambda: http_ok(f"{url}/health"), f"MLflow on {url}", timeout, proc)
    return proc


# ----------------------------------------------------------------------- mirror


def start_mirror(directory: Path, port: int, log_path: Path, timeout: float = 20.0):
    """A static HTTP server over a local copy of the plant images, on loopback."""
    if not directory.is_dir():
        raise ServiceError(f"image folder {directory} does not exist")
    argv = [
        sys.executable,
        "-m",
        "http.server",
        "--bind",
        LOOPBACK,
        "--directory",
        str(directory),
        str(port),
    ]
    proc = spawn("mirror", argv, log_path)
    url = f"http://{LOOPBACK}:{port}/"
    wait_until(lambda: http_ok(url), f"image mirror on {url}", timeout, proc)
    return proc


def default_images_dir(start: Path | None = None) -> Path | None:
    """`shared/datasets/greenr-airflow/data` beside (or above) the checkout, if present."""
    env = os.environ.get("PLANTOPS_IMAGES_DIR")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "shared" / "datasets" / "greenr-airflow" / "data"
        if candidate.is_dir():
            return candidate
    return None
