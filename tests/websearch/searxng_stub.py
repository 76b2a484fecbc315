"""A SearXNG-compatible search server on 127.0.0.1 for tests: canned JSON results, or a failing or hanging service.

Run it by hand with `python -m tests.websearch.searxng_stub --port 8888` and serve with
`--web-search searxng=http://127.0.0.1:8888`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal
from urllib.parse import parse_qs, urlsplit

Mode = Literal["ok", "error", "hang", "malformed"]


def canned_results(query: str) -> list[dict[str, object]]:
    """Three deterministic hits that mention the query, in SearXNG's result shape."""
    slug = "-".join(query.lower().split())[:60] or "empty"
    return [
        {
            "url": f"https://example.org/{slug}/{n}",
            "title": f"Result {n} about {query}",
            "content": f"Page {n} says that {query} is documented here, with details number {n}.",
            "engine": "stub",
            "engines": ["stub"],
            "parsed_url": ["https", "example.org", f"/{slug}/{n}", "", "", ""],
            "template": "default.html",
            "positions": [n],
            "score": 1.0 / n,
            "category": "general",
            "publishedDate": None,
        }
        for n in (1, 2, 3)
    ]


class SearxngStub:
    """A threaded HTTP server answering `GET /search?q=...&format=json` the way SearXNG does, in one of four modes.

    ok: canned results (`results[query]`, else `canned_results(query)`); error: HTTP 500; hang: no answer until
    `stop()`; malformed: HTTP 200 with a body that is not JSON. `queries` records every query received.
    """

    def __init__(
        self, results: Mapping[str, Sequence[Mapping[str, object]]] | None = None, *, mode: Mode = "ok", port: int = 0
    ) -> None:
        self.results = dict(results or {})
        self.mode: Mode = mode
        self.queries: list[str] = []
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        # A short poll interval makes stop() quick; serve_forever checks for shutdown between polls.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="searxng-stub", daemon=True
        )

    @property
    def url(self) -> str:
        """The base URL to configure, `http://127.0.0.1:PORT`."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> SearxngStub:
        """Serve on a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release any hanging request, stop serving and close the socket."""
        self._release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SearxngStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = parse_qs(parts.query)
        if parts.path not in ("/", "/search"):
            return self._send(handler, 404, b"not found", "text/plain")
        if params.get("format") != ["json"]:
            # SearXNG refuses formats its settings.yml does not enable; html is not served here.
            return self._send(handler, 403, b"Forbidden", "text/plain")
        query = params.get("q", [""])[0]
        self.queries.append(query)
        if self.mode == "hang":
            self._release.wait()
            return None
        if self.mode == "error":
            return self._send(handler, 500, b"Internal Server Error", "text/plain")
        if self.mode == "malformed":
            return self._send(handler, 200, b'{"results": [{"url": ', "application/json")
        hits = self.results.get(query, canned_results(query))
        body = {
            "query": query,
            "number_of_results": len(hits),
            "results": list(hits),
            "answers": [],
            "corrections": [],
            "infoboxes": [],
            "suggestions": [],
            "unresponsive_engines": [],
        }
        return self._send(handler, 200, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, status: int, body: bytes, content_type: str) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                # A client that gave up (a timeout test) has nothing left to be answered.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    stub._answer(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8888)
    parser.add_argument("--mode", choices=["ok", "error", "hang", "malformed"], default="ok")
    args = parser.parse_args()
    with SearxngStub(mode=args.mode, port=args.port) as stub:
        print(f"SearXNG stub on {stub.url} ({args.mode}); Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
