"""S3 stops in the middle of a run: nothing may point at a missing object, and a later run finishes.

This test starts its own SeaweedFS (not the shared session server) so it can stop it.
"""

from __future__ import annotations

import pytest
from plantops_infra.processes import free_port
from plantops_infra.servers import S3Endpoint, start_seaweedfs
from plantops_infra.testing import TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY

from plantops_orchestration import db, ingest, storage
from plantops_orchestration.config import get_settings
from plantops_orchestration.layout import parse_s3_uri

from .conftest import add_rows

pytestmark = pytest.mark.integration

ROWS = 12


def stored_urls(conn) -> list[str]:
    conn.commit()
    cursor = conn.cursor()
    cursor.execute("SELECT url_s3 FROM plants_data WHERE url_s3 IS NOT NULL")
    return [url for (url,) in cursor.fetchall()]


def test_s3_outage_mid_run_leaves_no_dangling_url_and_a_later_run_completes(
    tmp_path, mysql_database, fault_server, monkeypatch
):
    endpoint = S3Endpoint("127.0.0.1", free_port(), TEST_S3_ACCESS_KEY, TEST_S3_SECRET_KEY)
    data_dir = tmp_path / "s3"
    server = start_seaweedfs(data_dir, endpoint, tmp_path / "weed.log")
    endpoint.ensure_buckets("outage")
    env = {
        **mysql_database.env(),
        "PLANTOPS_S3_ENDPOINT": endpoint.endpoint,
        "PLANTOPS_S3_ACCESS_KEY": endpoint.access_key,
        "PLANTOPS_S3_SECRET_KEY": endpoint.secret_key,
        "PLANTOPS_S3_BUCKET": "outage",
        # One download at a time, so chunks are 4 rows and the outage lands mid-run.
        "PLANTOPS_DOWNLOAD_CONCURRENCY": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    settings = get_settings()
    try:
        with db.connection(settings) as conn:
            db.init_db(conn, seed=False)
            add_rows(conn, [(f"{fault_server.url}/img/{i}.jpg", "grass") for i in range(ROWS)])

            def stop_s3_at_the_sixth_download(path: str) -> None:
                if path == "/img/5.jpg":
                    server.stop()

            fault_server.on_request.append(stop_s3_at_the_sixth_download)
            with pytest.raises(storage.StorageError):
                ingest.run_all(settings)
            fault_server.on_request.clear()

            # S3 comes back with its data; every url_s3 written must name a real object.
            server = start_seaweedfs(data_dir, endpoint, tmp_path / "weed2.log")
            urls = stored_urls(conn)
            assert 0 < len(urls) < ROWS
            client = endpoint.client()
            for url in urls:
                bucket, key = parse_s3_uri(url)
                client.stat_object(bucket, key)  # raises if missing

            result = ingest.run_all(settings)
            assert result["rows"] == ROWS - len(urls)
            assert len(stored_urls(conn)) == ROWS
            assert db.status_counts(conn) == {"stored": ROWS}
            assert result["dataset_version"] is not None and result["published"]
    finally:
        server.stop()
        get_settings.cache_clear()
