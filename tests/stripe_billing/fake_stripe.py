"""A fake Stripe API for tests: a small threaded HTTP server (standard library only) answering the
list and retrieve calls ``manage.py stripe_sync`` makes, in Stripe's shapes, so the official
``stripe`` client is driven over HTTP exactly as against api.stripe.com.

    fake = FakeStripe(api_key="sk_test_fake")
    base = fake.start()                      # http://127.0.0.1:<port>; STRIPE_API_BASE=base
    fake.add("invoices", invoice_object)     # "checkout/sessions", "invoices", "refunds",
    ...                                      # "charges", "invoice_payments"
    fake.stop()

Lists honour ``created[gte]``, ``limit`` and ``starting_after`` (newest first, as Stripe lists),
``invoice_payments`` also ``payment[payment_intent]``, ``refunds`` also ``charge``; a wrong key answers 401 as Stripe does.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LISTS = ("checkout/sessions", "invoices", "refunds", "charges", "invoice_payments")


class FakeStripe:
    def __init__(self, *, api_key: str) -> None:
        self.api_key = api_key
        self.objects: dict[str, list[dict]] = {name: [] for name in LISTS}
        self.requests: list[str] = []
        self._server: ThreadingHTTPServer | None = None

    def add(self, kind: str, obj: dict) -> None:
        # Kinds beyond the lists (e.g. "promotion_codes") are answered by retrieve only.
        self.objects.setdefault(kind, []).append(obj)

    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                fake.requests.append(self.path)
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(
                        401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided."}}
                    )
                    return
                url = urlsplit(self.path)
                path = url.path.removeprefix("/v1/")
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                if path in fake.objects:
                    self._send(200, fake.page(path, query))
                    return
                kind, _, object_id = path.rpartition("/")
                found = [o for o in fake.objects.get(kind, []) if o["id"] == object_id]
                if found:
                    self._send(200, found[0])
                else:
                    self._send(
                        404, {"error": {"type": "invalid_request_error", "message": f"No such object: '{object_id}'"}}
                    )

            def _send(self, status: int, body: dict) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", "req_fake")
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def page(self, kind: str, query: dict[str, str]) -> dict:
        items = sorted(self.objects[kind], key=lambda o: (o.get("created") or 0, o["id"]), reverse=True)
        if "created[gte]" in query:
            items = [o for o in items if (o.get("created") or 0) >= int(query["created[gte]"])]
        if "payment[payment_intent]" in query:
            items = [o for o in items if o.get("payment", {}).get("payment_intent") == query["payment[payment_intent]"]]
        if "charge" in query:  # refunds of one charge (its charge may be expanded)
            charge = query["charge"]
            items = [
                o for o in items if (o["charge"] if isinstance(o["charge"], str) else o["charge"].get("id")) == charge
            ]
        if "starting_after" in query:
            ids = [o["id"] for o in items]
            items = items[ids.index(query["starting_after"]) + 1 :]
        limit = int(query.get("limit", 10))
        return {"object": "list", "data": items[:limit], "has_more": len(items) > limit, "url": f"/v1/{kind}"}
