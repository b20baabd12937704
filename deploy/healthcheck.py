"""Probe /healthz of the local web process: for the container's HEALTHCHECK and systemd's timer.

Exit 0 when the web process answers 200 (it serves and reaches the database); with --strict,
only when every part is ok (beat, workers, the click backlog, Redis). Standard library only, so
it runs with any Python 3. The request names the first host of ALLOWED_HOSTS, as a proxy would.

    python3 deploy/healthcheck.py [--strict] [--url http://127.0.0.1:8000/healthz]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strict", action="store_true", help="fail unless every part is ok")
    parser.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8000')}/healthz")
    args = parser.parse_args()
    host = os.environ.get("ALLOWED_HOSTS", "localhost").split(",")[0].strip().lstrip(".")
    if not args.url.startswith(("http://", "https://")):
        parser.error("--url must be an http(s) URL")
    request = urllib.request.Request(args.url, headers={"Host": "localhost" if host in ("", "*") else host})  # noqa: S310 - checked above
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - a fixed local URL
            body = json.loads(response.read())
    except (OSError, ValueError) as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(body))
    if args.strict and body.get("status") != "ok":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
