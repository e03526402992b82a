"""What an App Service slot serves: its run-from-package content on its own loopback port.

When the slot's `WEBSITE_RUN_FROM_PACKAGE` changes, the package is downloaded from its URL (an
Azurite SAS URL locally), unzipped, and served: a WSGI `app` from `app.py` when the package has
one, otherwise its files. Before any package the slot shows a default page; a package that cannot
be fetched makes the slot answer 503 with the reason, as a broken run-from-package app would.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import mimetypes
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import httpx

logger = logging.getLogger(__name__)
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _text(status: str, body: str) -> Wsgi:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        data = body.encode()
        start_response(status, [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(data)))])
        return [data]
    return app


DEFAULT_PAGE = _text("200 OK", "<h1>Your app is running, waiting for content</h1>")


def _static(root: Path) -> Wsgi:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        rel = environ.get("PATH_INFO", "/").lstrip("/") or "index.html"
        path = (root / rel).resolve()
        if root.resolve() not in path.parents and path != root.resolve() or not path.is_file():
            return _text("404 Not Found", "not found")(environ, start_response)
        data = path.read_bytes()
        kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(data)))])
        return [data]
    return app


def load_package(url: str) -> tuple[Wsgi, Path | None]:
    """Download and open a package; never raises (a failure becomes a 503 app)."""
    try:
        response = httpx.get(url, timeout=30)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        logger.warning("slot could not load its package: %s", exc)
        return _text("503 Service Unavailable", f"run-from-package failed: {exc}"), None
    return open_package(response.content)


def open_package(data: bytes) -> tuple[Wsgi, Path | None]:
    """Unzip a package and start its app; never raises (a failure becomes a 503 app)."""
    try:
        root = Path(tempfile.mkdtemp(prefix="slipway-slot-"))
        zipfile.ZipFile(io.BytesIO(data)).extractall(root)
    except (zipfile.BadZipFile, OSError) as exc:
        logger.warning("slot could not open its package: %s", exc)
        return _text("503 Service Unavailable", f"run-from-package failed: {exc}"), None
    script = root / "app.py"
    if not script.exists():
        return _static(root), root
    try:
        spec = importlib.util.spec_from_file_location(f"slot_app_{uuid.uuid4().hex}", script)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module.app, root
    except Exception as exc:  # the app's own code failed to start, as on App Service
        return _text("503 Service Unavailable", f"application failed to start: {exc}"), root


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(target=self._serve_one, args=(request, client_address), daemon=True).start()

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


class SlotServer:
    """One slot's web server. The app it runs can be replaced at any time (deploy, swap)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app: Wsgi = DEFAULT_PAGE
        self.env: dict[str, str] = {}
        """App settings as App Service shows them to the app (`APPSETTING_<name>`)."""
        self.package_url: str | None = None
        self.observer: Callable[[int, float], None] | None = None
        """Told of each request served: (status, milliseconds)."""
        self._root: Path | None = None
        self._server = make_server(host, port, self._dispatch, server_class=_ThreadingWSGIServer,
                                   handler_class=_QuietHandler)
        self.host_name = f"{host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def _dispatch(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started, seen = time.perf_counter(), []

        def observed(status: str, headers: Any, *args: Any) -> Any:
            seen.append(int(status.split()[0]))
            return start_response(status, headers, *args)

        body = list(self.app({**environ, **self.env}, observed))
        if self.observer is not None and seen:
            self.observer(seen[0], (time.perf_counter() - started) * 1000)
        return body

    def show_settings(self, settings: dict[str, str]) -> None:
        self.env = {f"APPSETTING_{k}": v for k, v in settings.items()}

    def run_package(self, url: str | None) -> None:
        if url == self.package_url:
            return
        old = self._root
        if url:
            self.app, self._root = load_package(url)
        else:
            self.app, self._root = DEFAULT_PAGE, None
        self.package_url = url
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def serve_zip(self, data: bytes, source: str) -> None:
        """Start the app from a package's bytes (what a restart does with the site's content)."""
        old = self._root
        self.app, self._root = open_package(data)
        self.package_url = source
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def fail(self, reason: str) -> None:
        """The app does not start: every request answers 503 with the reason."""
        old = self._root
        self.app, self._root, self.package_url = _text("503 Service Unavailable", reason), None, None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def default(self) -> None:
        old = self._root
        self.app, self._root, self.package_url = DEFAULT_PAGE, None, None
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def take(self, other: SlotServer) -> None:
        """Swap what this slot and `other` serve (their ports stay: host names follow the slot)."""
        self.app, other.app = other.app, self.app
        self.package_url, other.package_url = other.package_url, self.package_url
        self._root, other._root = other._root, self._root

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
