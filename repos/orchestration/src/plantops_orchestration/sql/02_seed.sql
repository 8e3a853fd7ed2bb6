-- The 400 canonical rows: indices 0-199 of dandelion and grass in btphan95/greenr-airflow.
-- Idempotent: a URL already present is left as it is (url_s3 and status included),
-- so applying the seed twice still leaves 400 rows. They are accepted by definition (run after
-- the migrations, which make `pending` the default review state).
INSERT INTO plants_data (url_source, label, review_status)
SELECT
    CONCAT(
        'https://raw.githubusercontent.com/btphan95/greenr-airflow/refs/heads/master/data/',
        labels.label, '/', LPAD(n.i, 8, '0'), '.jpg'
    ),
    labels.label,
    'accepted'
FROM (SELECT 'dandelion' AS label UNION ALL SELECT 'grass') AS labels
CROSS JOIN (
    SELECT hundreds.d * 100 + tens.d * 10 + ones.d AS i
    FROM (SELECT 0 AS d UNION ALL SELECT 1) AS hundreds
    CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
                UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7
                UNION ALL SELECT 8 UNION ALL SELECT 9) AS tens
    CROSS JOIN (SELECT 0 AS d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3
                UNION ALL SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7
                UNION ALL SELECT 8 UNION ALL SELECT 9) AS ones
) AS n
ORDER BY labels.label, n.i
ON DUPLICATE KEY UPDATE url_source = plants_data.url_source;
