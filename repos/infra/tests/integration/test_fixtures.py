"""The real-server fixtures every component's tests rely on."""

import io
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def test_s3_bucket_stores_and_returns_an_object(s3_bucket):
    client = s3_bucket.server.client()
    client.put_object(s3_bucket.name, "hello.txt", io.BytesIO(b"plantops"), 8)
    assert client.get_object(s3_bucket.name, "hello.txt").read() == b"plantops"


def test_s3_refuses_wrong_credentials(s3_server):
    from minio import Minio
    from minio.error import S3Error

    intruder = Minio(s3_server.endpoint, "nobody", "wrong-secret", secure=False)
    with pytest.raises(S3Error):
        intruder.list_buckets()


def test_mysql_database_is_private_and_writable(mysql_database):
    conn = mysql_database.connect()
    cursor = conn.cursor()
    cursor.execute("CREATE TABLE t (id INT PRIMARY KEY)")
    cursor.execute("INSERT INTO t VALUES (1), (2)")
    conn.commit()
    cursor.execute("SELECT COUNT(*) FROM t")
    assert cursor.fetchone() == (2,)
    conn.close()


def test_mlflow_server_records_a_run_with_an_s3_artifact(mlflow_server, tmp_path, monkeypatch):
    import mlflow

    for key, value in mlflow_server.env().items():
        monkeypatch.setenv(key, value)
    mlflow.set_tracking_uri(mlflow_server.url)
    (tmp_path / "note.txt").write_text("hello")
    with mlflow.start_run() as run:
        mlflow.log_metric("accuracy", 0.5)
        mlflow.log_artifact(str(tmp_path / "note.txt"))
    assert run.info.artifact_uri.startswith(f"s3://{mlflow_server.artifact_bucket}/")
    keys = [
        o.object_name
        for o in mlflow_server.s3.client().list_objects(
            mlflow_server.artifact_bucket, recursive=True
        )
    ]
    assert any(key.endswith("/artifacts/note.txt") for key in keys)


def test_image_mirror_serves_the_plant_photos(image_mirror):
    with urllib.request.urlopen(f"{image_mirror}dandelion/00000000.jpg") as response:
        assert response.read(3) == b"\xff\xd8\xff"  # a JPEG
