-- plants_data as the migrations leave it: sql/01_schema.sql, the pipeline columns of
-- db.PIPELINE_COLUMNS and sql/migrations/*.sql, in that order. The contract with the web app
-- (which inserts feedback rows and reviews them) and anyone else reading the table.
-- Not run by the pipeline: tests/integration/test_schema_contract.py migrates a real
-- database and checks it has exactly this table; consumers' tests create it from here.
-- Changed a migration? Update this file (the test says what differs), then `make contracts`.
CREATE TABLE plants_data (
    id BIGINT NOT NULL AUTO_INCREMENT,
    url_source VARCHAR(768) NOT NULL,
    url_s3 VARCHAR(1024) NULL DEFAULT NULL,
    label VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL DEFAULT 'new',
    attempts INT NOT NULL DEFAULT 0,
    retryable TINYINT(1) NOT NULL DEFAULT 1,
    last_error VARCHAR(1024) NULL DEFAULT NULL,
    sha256 CHAR(64) NULL DEFAULT NULL,
    content_type VARCHAR(128) NULL DEFAULT NULL,
    size_bytes INT NULL DEFAULT NULL,
    width INT NULL DEFAULT NULL,
    height INT NULL DEFAULT NULL,
    duplicate_of BIGINT NULL DEFAULT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at TIMESTAMP NULL DEFAULT NULL,
    stored_at TIMESTAMP NULL DEFAULT NULL,
    review_status VARCHAR(16) NOT NULL DEFAULT 'pending',
    proposed_label VARCHAR(64) NULL DEFAULT NULL,
    model_label VARCHAR(64) NULL DEFAULT NULL,
    model_confidence DOUBLE NULL DEFAULT NULL,
    model_version VARCHAR(64) NULL DEFAULT NULL,
    submitter_id CHAR(64) NULL DEFAULT NULL,
    submitted_at TIMESTAMP NULL DEFAULT NULL,
    reviewed_by VARCHAR(64) NULL DEFAULT NULL,
    review_action VARCHAR(16) NULL DEFAULT NULL,
    reviewed_at TIMESTAMP NULL DEFAULT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uq_plants_data_url_source (url_source),
    KEY ix_plants_data_status (status),
    KEY ix_plants_data_sha256 (sha256),
    KEY ix_plants_data_review (review_status, submitter_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;
