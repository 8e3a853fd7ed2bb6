-- plants_data: one row per image source. The canonical columns of the contract
-- (docs/architecture.md); the pipeline's own columns are added by migrations.py.
-- Rows are never deleted.
CREATE TABLE IF NOT EXISTS plants_data (
    id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- http(s):// URL, or s3://bucket/key for images uploaded through the webapp.
    -- 768 characters: the longest utf8mb4 column a unique index can cover.
    url_source VARCHAR(768) NOT NULL,
    -- NULL until the image bytes are durably stored in S3.
    url_s3 VARCHAR(1024) NULL,
    label VARCHAR(64) NOT NULL,
    UNIQUE KEY uq_plants_data_url_source (url_source)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
