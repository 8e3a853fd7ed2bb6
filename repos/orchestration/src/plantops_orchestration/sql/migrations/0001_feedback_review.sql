-- Feedback from the web app waits for a reviewer before anything trains on it (issue 15).
-- Plain MySQL 8 / MariaDB statements, `;` only between statements: `db.apply_sql_migrations`
-- runs each file once (the table plants_migrations remembers which) and, when a file is run
-- again after a crash halfway, skips a column or index that already exists.

-- pending (a visitor's feedback, not reviewed), accepted (may train), rejected (never trains).
-- Rows already in the table when the column arrives are accepted: the canonical rows and the
-- sources an operator added. The default then becomes pending, so a row whose writer forgot
-- the column cannot train unreviewed.
ALTER TABLE plants_data ADD COLUMN review_status VARCHAR(16) NOT NULL DEFAULT 'accepted';
ALTER TABLE plants_data ALTER COLUMN review_status SET DEFAULT 'pending';
-- What the visitor saw and said. `label` is the label the row trains with (the proposed one
-- until a reviewer relabels it); `proposed_label` keeps what the visitor sent.
ALTER TABLE plants_data ADD COLUMN proposed_label VARCHAR(64) NULL;
ALTER TABLE plants_data ADD COLUMN model_label VARCHAR(64) NULL;
ALTER TABLE plants_data ADD COLUMN model_confidence DOUBLE NULL;
ALTER TABLE plants_data ADD COLUMN model_version VARCHAR(64) NULL;
-- HMAC-SHA256 (hex) of the visitor's cookie and address with the web app's secret key:
-- counts a visitor's pending items without storing who they are or their IP address.
ALTER TABLE plants_data ADD COLUMN submitter_id CHAR(64) NULL;
ALTER TABLE plants_data ADD COLUMN submitted_at TIMESTAMP NULL;
-- Who decided, what, and when: accepted, relabelled (accepted with another label), rejected.
ALTER TABLE plants_data ADD COLUMN reviewed_by VARCHAR(64) NULL;
ALTER TABLE plants_data ADD COLUMN review_action VARCHAR(16) NULL;
ALTER TABLE plants_data ADD COLUMN reviewed_at TIMESTAMP NULL;
CREATE INDEX ix_plants_data_review ON plants_data (review_status, submitter_id);
-- Feedback the web app wrote before this migration was never reviewed: back to the queue.
UPDATE plants_data SET review_status = 'pending'
    WHERE url_source LIKE 's3://%/feedback/%' AND reviewed_at IS NULL;
