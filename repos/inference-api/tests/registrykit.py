"""Registering model versions on the real MLflow test server, as training does.

The producer side follows docs/architecture.md: the model files are logged under the
run's artifact path `model/`, the registered version's source is that S3 folder, and
the alias `champion` points at the served version. (Tests only: the API itself never
imports mlflow.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from conftest import TEST_API_KEY

from plantops_inference_api.config import Settings


def register_version(
    tracking_uri: str,
    name: str,
    model_dir: Path,
    alias: str | None = "champion",
    tags: dict[str, str] | None = None,
    metrics: dict[str, float] | None = None,
) -> str:
    """Log `model_dir` as a run's `model/` artifacts, register it, point `alias` at it."""
    import mlflow
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        mlflow.set_tags(tags or {})
        mlflow.log_metrics(metrics or {})
    with contextlib.suppress(MlflowException):  # already registered by an earlier version
        client.create_registered_model(name)
    version = client.create_model_version(
        name, source=f"{run.info.artifact_uri}/model", run_id=run.info.run_id
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return str(version.version)


def api_env(mlflow_server, model_name: str, **overrides: str) -> dict[str, str]:
    """The API's settings for serving `model_name`'s champion from the test servers."""
    s3 = mlflow_server.s3
    return {
        "PLANTOPS_MODEL_PATH": "",
        "PLANTOPS_MODEL_NAME": model_name,
        "PLANTOPS_MLFLOW_TRACKING_URI": mlflow_server.url,
        "PLANTOPS_S3_ENDPOINT": s3.endpoint,
        "PLANTOPS_S3_ACCESS_KEY": s3.access_key,
        "PLANTOPS_S3_SECRET_KEY": s3.secret_key,
        "PLANTOPS_S3_SECURE": "false",
        "PLANTOPS_API_KEY": TEST_API_KEY,
        "PLANTOPS_MODEL_POLL_INTERVAL_S": "0.3",
        "PLANTOPS_MODEL_RETRY_INTERVAL_S": "0.3",
        **overrides,
    }


def settings_from(env: dict[str, str]) -> Settings:
    return Settings(**{k.removeprefix("PLANTOPS_").lower(): v for k, v in env.items()})


def move_alias(tracking_uri: str, name: str, version: str, alias: str = "champion") -> None:
    from mlflow import MlflowClient

    MlflowClient(tracking_uri).set_registered_model_alias(name, alias, version)


class TcpProxy:
    """A loopback TCP forwarder that can be switched on later: a server that is down, then up.

    `stop()` also cuts the connections already open (a client's kept-alive pool would
    otherwise still reach the server): the server is down for everyone at once.
    """

    def __init__(self, target_host: str, target_port: int, listen_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = listen_port
        self._server: socket.socket | None = None
        self._open: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            # shutdown() first: close() alone does not wake the thread blocked in accept(),
            # which would go on accepting connections on the closed socket.
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
        for s in self._open:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                s.close()
        self._open.clear()

    def _accept(self) -> None:
        assert self._server is not None
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection(self.target, timeout=10)
            except OSError:
                client.close()
                continue
            self._open += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
