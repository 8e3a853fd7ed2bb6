"""Send photos to a running API's POST /v1/predict, one at a time; print one line of counts.

What the monitoring figures of repos/orchestration/README.md were measured with: a
stream of photos through the real champion, then `make monitor`.

    python load/post_photos.py --api http://127.0.0.1:8000 PATH_OR_GLOB...
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import random
import uuid
from collections import Counter
from urllib.parse import urlsplit


def post(api: str, path: str) -> tuple[int, dict]:
    boundary = uuid.uuid4().hex
    with open(path, "rb") as file:
        photo = file.read()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"'
        "\r\nContent-Type: image/jpeg\r\n\r\n"
    )
    body = head.encode() + photo + f"\r\n--{boundary}--\r\n".encode()
    url = urlsplit(api)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    connection.request("POST", "/v1/predict", body, headers)
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", default="http://127.0.0.1:8000")
    parser.add_argument("--seed", type=int, default=1, help="the order the photos are sent in")
    parser.add_argument("photos", nargs="+", help="paths or glob patterns")
    args = parser.parse_args()
    paths = sorted({p for pattern in args.photos for p in glob.glob(pattern)})
    random.Random(args.seed).shuffle(paths)
    answers = [post(args.api, p) for p in paths]
    ok = [body for status, body in answers if status == 200]
    print(
        json.dumps(
            {
                "sent": len(paths),
                "ok": len(ok),
                "out_of_distribution": sum(bool(b.get("out_of_distribution")) for b in ok),
                "labels": dict(Counter(b["label"] for b in ok)),
            }
        )
    )


if __name__ == "__main__":
    main()
