"""The benchmark's server: the real collector app plus a bare baseline endpoint, on gunicorn.

Run by bench/ingest.py as a separate process:

    python bench/bare_app.py --config DIR/config.yaml --port 8123 --workers 2 --bare-file F

It serves, on one gunicorn with exactly the options `esco-kpi serve` uses
(`esco_kpi.server.gunicorn_options`; the aggregation schedule is not started):

- everything the collector answers (`/v1/events`, `/v1/health`, ...), i.e. `create_app`;
- `POST /bare/events`: reads the body, inflates gzip, parses the JSON with orjson, appends the
  inflated body to a file, fsyncs it and answers 202. That is the floor any durable ingest
  endpoint of this server pays (HTTP, WSGI, inflate, JSON parse, one fsync per request).
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from pathlib import Path

# The project's root first: bench/dashboard.py must not hide the dashboard package from
# scripts started in this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import orjson
from werkzeug.middleware.dispatcher import DispatcherMiddleware

from esco_kpi.server import _Gunicorn, build_wsgi_app, gunicorn_options, remove_metrics_folder
from kpi.settings import Settings, load_settings


class BareEndpoint:
    """WSGI app: inflate, orjson-parse, append to a file, fsync, 202. Nothing else."""

    def __init__(self, path: Path):
        self.path = path
        self._fd: int | None = None
        self._pid: int | None = None

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():  # opened after the fork
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __call__(self, environ, start_response):
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        if environ.get("HTTP_CONTENT_ENCODING", "").lower() == "gzip":
            raw = zlib.decompress(raw, 16 + zlib.MAX_WBITS)
        doc = orjson.loads(raw)
        received = len(doc["events"])
        fd = self._file()
        os.write(fd, raw + b"\n")
        os.fsync(fd)
        body = orjson.dumps({"received": received, "accepted": received})
        start_response("202 Accepted", [("Content-Type", "application/json"),
                                        ("Content-Length", str(len(body)))])
        return [body]


def build_app(settings: Settings, bare_file: Path):
    """The real collector app with the bare endpoint mounted at /bare (POST /bare/events)."""
    return DispatcherMiddleware(build_wsgi_app(settings), {"/bare": BareEndpoint(bare_file)})


class _BenchGunicorn(_Gunicorn):
    def __init__(self, settings: Settings, options: dict, bare_file: Path):
        self.bare_file = bare_file
        super().__init__(settings, options)

    def load(self):
        return build_app(self.settings, self.bare_file)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int)
    parser.add_argument("--bare-file", required=True)
    args = parser.parse_args(argv)
    settings = load_settings(args.config)
    options = gunicorn_options(settings, "127.0.0.1", args.port, args.workers)
    sys.argv = sys.argv[:1]  # gunicorn's BaseApplication parses argv: give it none
    try:
        _BenchGunicorn(settings, options, Path(args.bare_file)).run()
    finally:
        remove_metrics_folder()  # the master's own only (named after its pid)


if __name__ == "__main__":
    main()
