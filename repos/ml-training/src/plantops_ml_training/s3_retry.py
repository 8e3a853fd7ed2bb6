"""The S3 retry policy, the same in every PlantOps component (README, "S3 retries").

Components share no code, so each has this module with the same values; the umbrella's
tests/test_contracts.py checks that they agree. Retried: connection errors, read errors
and the statuses S3 answers when it is briefly unable (500 internal error, 502/503/504
from a proxy or a busy server; 503 SlowDown). 501 and 4xx are answers, never retried.
Sleeps between tries: 0.2 s, 0.4 s, 0.8 s (urllib3's exponential backoff); a
`Retry-After` header from the server is honoured.
"""

from __future__ import annotations

import urllib3

S3_RETRY_TOTAL = 3
S3_RETRY_BACKOFF_S = 0.2
S3_RETRY_STATUSES = (500, 502, 503, 504)


def s3_retry() -> urllib3.Retry:
    """The urllib3 Retry every S3 client of this component is built with."""
    return urllib3.Retry(
        total=S3_RETRY_TOTAL,
        backoff_factor=S3_RETRY_BACKOFF_S,
        status_forcelist=S3_RETRY_STATUSES,
    )
