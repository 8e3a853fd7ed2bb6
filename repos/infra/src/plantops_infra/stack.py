"""The local stack behind `make up`, `make status` and `make down`.

Each server runs detached, with its pid in `<state>/pids/` and its log in
`<state>/logs/`. `up` starts only what is not already healthy, so running it
twice is harmless; `down` stops exactly the processes whose pid files `up` wrote
(never the machine's own MariaDB, which `up` merely uses when it answers).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path

from plantops_infra.config import LOOPBACK, StackSettings
from plantops_infra.processes import http_ok, pid_alive, spawn, stop_pid, wait_until
from plantops_infra.servers import (
    MySQLEndpoint,
    S3Endpoint,
    default_images_dir,
    start_mariadb,
    start_mirror,
    start_mlflow,
    start_seaweedfs,
)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    healthy: bool
    detail: str = ""


class LocalStack:
    """The servers of one local stack, described by its settings and state folder."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.state_dir = settings.state_dir.resolve()

    # ---- endpoints

    @property
    def s3(self) -> S3Endpoint:
        s = self.settings
        return S3Endpoint(LOOPBACK, s.s3_port, s.s3_access_key, s.s3_secret_key)

    @property
    def mysql_admin(self) -> MySQLEndpoint:
        s = self.settings
        return MySQLEndpoint(LOOPBACK, s.mysql_port, s.mysql_admin_user, s.mysql_admin_password)

    @property
    def mlflow_url(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.mlflow_port}"

    @property
    def mirror_url(self) -> str:
        return f"http://{LOOPBACK}:{self.settings.mirror_port}/"

    @property
    def images_dir(self) -> Path | None:
        configured = self.settings.images_dir
        if configured and str(configured) not in ("", "."):
            return configured
        return default_images_dir()

    # ---- state files

    def _pid_file(self, name: str) -> Path:
        return self.state_dir / "pids" / f"{name}.pid"

    def _log(self, name: str) -> Path:
        return self.state_dir / "logs" / f"{name}.log"

    def _running_pid(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def _record(self, name: str, pid: int) -> None:
        self._pid_file(name).parent.mkdir(parents=True, exist_ok=True)
        self._pid_file(name).write_text(str(pid))

    # ---- lifecycle

    def up(self, log=print) -> None:
        """Start every server that is not already healthy, then write `<state>/env`."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._up_mysql(log)
        self._up_s3(log)
        self._up_mlflow(log)
        self._up_mirror(log)
        self.write_env_file()
        log(f"environment for the other components: {self.state_dir / 'env'}")

    def _up_mysql(self, log) -> None:
        s = self.settings
        if self.mysql_admin.healthy():
            owner = "ours" if self._running_pid("mysql") else "the machine's"
            log(f"mysql   : {owner} server answers on {LOOPBACK}:{s.mysql_port}")
        else:
            log(f"mysql   : starting a private mariadbd on {LOOPBACK}:{s.mysql_port}")
            data_dir = self.state_dir / "data" / "mysql"
            proc, _ = start_mariadb(data_dir, s.mysql_port, self._log("mysql"))
            self._record("mysql", proc.pid)
        admin = self.mysql_admin
        admin.ensure_database(s.mysql_database, s.mysql_user, s.mysql_password)
        admin.ensure_database(s.mlflow_database, s.mysql_user, s.mysql_password)

    def _up_s3(self, log) -> None:
        if self._running_pid("s3") and self.s3.healthy():
            log(f"s3      : already running on {self.s3.url}")
        else:
            log(f"s3      : starting SeaweedFS on {self.s3.url}")
            proc = start_seaweedfs(self.state_dir / "data" / "s3", self.s3, self._log("s3"))
            self._record("s3", proc.pid)
        self.s3.ensure_buckets(self.settings.s3_bucket, self.settings.mlflow_bucket)

    def _up_mlflow(self, log) -> None:
        if self._running_pid("mlflow") and http_ok(f"{self.mlflow_url}/health"):
            log(f"mlflow  : already running on {self.mlflow_url}")
            return
        s = self.settings
        backend = (
            f"mysql+pymysql://{s.mysql_user}:{s.mysql_password}"
            f"@{LOOPBACK}:{s.mysql_port}/{s.mlflow_database}"
        )
        log(f"mlflow  : starting on {self.mlflow_url} (first start migrates its database)")
        proc = start_mlflow(
            s.mlflow_port, backend, f"s3://{s.mlflow_bucket}/", self.s3, self._log("mlflow"), 180
        )
        self._record("mlflow", proc.pid)

    def _up_mirror(self, log) -> None:
        images = self.images_dir
        if images is None:
            log("mirror  : no local copy of the images found; the canonical URLs are used")
            return
        if self._running_pid("mirror") and http_ok(self.mirror_url):
            log(f"mirror  : already serving {images} on {self.mirror_url}")
            return
        log(f"mirror  : serving {images} on {self.mirror_url}")
        proc = start_mirror(images, self.settings.mirror_port, self._log("mirror"))
        self._record("mirror", proc.pid)

    def start_app(self, name: str, argv: list[str], health_url: str, timeout: float, log=print):
        """Run one of our services (API, webapp) in the background, like the servers."""
        if self._running_pid(name) and http_ok(health_url):
            log(f"{name:8}: already running, {health_url} answers")
            return
        log(f"{name:8}: starting, log in {self._log(name)}")
        proc = spawn(name, argv, self._log(name))
        self._record(name, proc.pid)
        wait_until(lambda: http_ok(health_url), f"{name} ({health_url})", timeout, proc)

    def down(self, log=print) -> None:
        """Stop the processes `up` and `start_app` started, apps first, and forget their pids."""
        pid_dir = self.state_dir / "pids"
        servers = ("mirror", "mlflow", "s3", "mysql")
        apps = sorted(p.stem for p in pid_dir.glob("*.pid") if p.stem not in servers)
        for name in (*apps, *servers):
            pid = self._running_pid(name)
            if pid is not None:
                log(f"{name:8}: stopping pid {pid}")
                stop_pid(pid, timeout=30)
            self._pid_file(name).unlink(missing_ok=True)

    def status(self) -> list[ServiceStatus]:
        s = self.settings
        mirror_running = self._running_pid("mirror") is not None
        return [
            ServiceStatus(
                "s3", self.s3.url, self.s3.healthy(), f"buckets {s.s3_bucket}, {s.mlflow_bucket}"
            ),
            ServiceStatus(
                "mysql",
                f"mysql://{LOOPBACK}:{s.mysql_port}/{s.mysql_database}",
                self.mysql_admin.healthy(),
                "private mariadbd" if self._running_pid("mysql") else "machine's server",
            ),
            ServiceStatus("mlflow", self.mlflow_url, http_ok(f"{self.mlflow_url}/health")),
            ServiceStatus(
                "mirror",
                self.mirror_url if mirror_running else s.mirror_prefix,
                http_ok(self.mirror_url) if mirror_running else True,
                str(self.images_dir) if mirror_running else "not running: canonical URLs",
            ),
        ]

    # ---- what the other components read

    def component_env(self) -> dict[str, str]:
        """The variables the other components' settings read, for this stack."""
        s = self.settings
        env = {
            "PLANTOPS_S3_ENDPOINT": self.s3.endpoint,
            "PLANTOPS_S3_ACCESS_KEY": s.s3_access_key,
            "PLANTOPS_S3_SECRET_KEY": s.s3_secret_key,
            "PLANTOPS_S3_SECURE": "false",
            "PLANTOPS_S3_BUCKET": s.s3_bucket,
            "PLANTOPS_MLFLOW_BUCKET": s.mlflow_bucket,
            "PLANTOPS_MYSQL_HOST": LOOPBACK,
            "PLANTOPS_MYSQL_PORT": str(s.mysql_port),
            "PLANTOPS_MYSQL_USER": s.mysql_user,
            "PLANTOPS_MYSQL_PASSWORD": s.mysql_password,
            "PLANTOPS_MYSQL_DATABASE": s.mysql_database,
            "PLANTOPS_MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_TRACKING_URI": self.mlflow_url,
            "MLFLOW_S3_ENDPOINT_URL": self.s3.url,
            "AWS_ACCESS_KEY_ID": s.s3_access_key,
            "AWS_SECRET_ACCESS_KEY": s.s3_secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "PLANTOPS_MIRROR_PREFIX": s.mirror_prefix,
            "PLANTOPS_MIRROR_BASE_URL": self.mirror_url if self._running_pid("mirror") else "",
        }
        return env

    def write_env_file(self) -> Path:
        path = self.state_dir / "env"
        lines = ["# Written by `plantops-infra stack up`: the running stack, for the components."]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in self.component_env().items()]
        path.write_text("\n".join(lines) + "\n")
        return path
