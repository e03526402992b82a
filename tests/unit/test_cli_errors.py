"""The CLI's expected failures are one readable line and a non-zero exit code, never a traceback: a wrong
endpoint (the dashboard's HTML instead of the API), a host that is down or silent, an answer of another
shape, a reader that goes away (`| head -1`), a file that cannot be written. Run against a small HTTP
server started here, not a mock of our own code."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from slipway_cli.api import ApiError, Client
from slipway_cli.main import EXIT_BROKEN_PIPE, EXIT_ERROR, build_parser, main

REPO = Path(__file__).resolve().parents[2]
HTML = "text/html; charset=utf-8"
PAGE = b"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body><h1>404</h1></body></html>"
MANY = {"value": [{"id": i, "name": f"Release-{i}", "status": "active", "createdOn": "2026-11-23T10:00:00Z",
                   "stages": {"Dev": "succeeded", "Test": "inProgress"}} for i in range(5000)],
        "continuationToken": None}
ROUTES: dict[str, tuple[int, str, bytes]] = {
    # What the Functions host serves beside the API: the dashboard's pages (an HTML 404 for unknown ones).
    "/releases": (404, HTML, PAGE),
    "/releases/7": (200, HTML, b"<!doctype html><html><body>Release-7</body></html>"),
    "/releases/9": (404, "", b""),
    # The API.
    "/api/releases": (200, "application/json", json.dumps(MANY).encode()),
    "/api/releases/7": (200, "application/json", b'{"hello": "world"}'),
    "/api/releases/8": (200, "text/plain", b"ok"),
    "/api/releases/5/logs": (200, "application/zip", b"PK\x05\x06" + bytes(18)),
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
        status, kind, body = ROUTES.get(urlsplit(self.path).path, (404, HTML, PAGE))
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the standard library's name)
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The base URL of a local server answering ROUTES (the Functions host's root, without /api)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    assert "Traceback" not in err and err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("slipway: ")
    return err


@pytest.mark.parametrize("argv", [["release", "list"], ["release", "show", "7"], ["approval", "approve", "7", "Dev"],
                                  ["logs", "7", "Dev"], ["definition", "export", "Tailspin"]])
def test_an_endpoint_without_api_says_what_was_expected(server: str, capsys: pytest.CaptureFixture[str],
                                                         argv: list[str]) -> None:
    code, out, err = run(capsys, "--endpoint", server, *argv)
    assert code == EXIT_ERROR and out == ""
    assert one_line(err) == (f"slipway: {server} answered an HTML page, not Slipway's API: the endpoint should end "
                             f"in /api, e.g. {server}/api\n")


def test_the_endpoint_comes_from_the_environment_too(server: str, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLIPWAY_ENDPOINT", server + "/")
    code, _, err = run(capsys, "release", "show", "9")  # an empty 404, not a page
    assert code == EXIT_ERROR and f"the endpoint should end in /api, e.g. {server}/api" in one_line(err)


def test_html_from_an_endpoint_that_ends_in_api_is_not_taken_for_the_api(server: str,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--endpoint", f"{server}/api", "release", "show", "404")
    assert code == EXIT_ERROR
    assert one_line(err) == (f"slipway: {server}/api answered an HTML page, not Slipway's API: is {server}/api "
                             "Slipway's API address (--endpoint or SLIPWAY_ENDPOINT)?\n")


def test_an_answer_of_another_shape_or_kind_is_one_line(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--endpoint", f"{server}/api", "release", "show", "7")  # JSON, but not a release
    assert code == EXIT_ERROR and "answered in a shape this client does not know" in one_line(err)
    code, _, err = run(capsys, "--endpoint", f"{server}/api", "release", "show", "8")
    assert code == EXIT_ERROR and "answered text/plain instead of JSON, not Slipway's API" in one_line(err)


def test_a_host_that_is_down_is_one_line_naming_the_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}/api"
    code, out, err = run(capsys, "--endpoint", endpoint, "release", "list")
    assert code == EXIT_ERROR and out == ""
    assert one_line(err).startswith(f"slipway: cannot connect to {endpoint}: ")


def test_an_endpoint_that_is_not_a_url_says_what_one_looks_like(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--endpoint", "127.0.0.1:7071/api", "release", "list")
    assert code == EXIT_ERROR and "is not an http(s) URL; it looks like http://127.0.0.1:7071/api" in one_line(err)


def test_a_host_that_never_answers_is_a_timeout_naming_the_endpoint() -> None:
    with socket.socket() as silent:  # the kernel accepts the connection; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}/api"
        with pytest.raises(ApiError) as failed:
            Client(endpoint, timeout=0.2).call("GET", "/releases")
    assert str(failed.value) == f"{endpoint} did not answer within 0.2s"


def test_a_file_that_cannot_be_written_is_one_line(server: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing" / "logs.zip"
    code, _, err = run(capsys, "--endpoint", f"{server}/api", "logs", "5", "--zip", str(target))
    assert code == EXIT_ERROR and str(target) in one_line(err)


@pytest.mark.parametrize("output", ["json", "table"])
def test_a_reader_that_goes_away_ends_quietly(server: str, output: str) -> None:
    """`slipway -o json release list | head -1`: the output is far larger than a pipe holds, so the
    CLI is still writing when the reader closes its end."""
    env = {**os.environ, "SLIPWAY_ENDPOINT": f"{server}/api", "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "slipway_cli", "-o", output, "release", "list"], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=120)
    assert first.split()[:2] == ([b"{"] if output == "json" else [b"0", b"Release-0"])
    assert err == "" and code in (EXIT_BROKEN_PIPE, 0)


def _missing_help(parser: argparse.ArgumentParser, where: str) -> list[str]:
    missing = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            helped = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                if not helped.get(name):
                    missing.append(f"{where} {name}")
                missing += _missing_help(sub, f"{where} {name}")
            continue
        if not action.help or action.help == argparse.SUPPRESS:
            missing.append(f"{where} {'/'.join(action.option_strings) or action.dest}")
    return missing


def test_every_command_option_and_argument_has_help() -> None:
    assert _missing_help(build_parser(), "slipway") == []
