"""The sample web app that the sample pipeline deploys: it shows its version and has /health.

Plain WSGI, standard library only. The build writes `version.txt` next to this file.
"""

import json
from pathlib import Path

VERSION = (Path(__file__).with_name("version.txt").read_text().strip()
           if Path(__file__).with_name("version.txt").exists() else "dev")
DEFECT = (Path(__file__).with_name("defect.txt").read_text().strip()
          if Path(__file__).with_name("defect.txt").exists() else None)
"""A deliberately broken build names the environment it fails in (for rollback demos and tests)."""
ERRORS = (Path(__file__).with_name("errors.txt").read_text().strip()
          if Path(__file__).with_name("errors.txt").exists() else None)
"""A flaky build: `<environment> <one in N>` answers 500 to one page request in N there (for gates)."""
SERVED = [0]
PAGE = """<!doctype html>
<html><head><title>Sample web app {version}</title></head>
<body><h1>Sample web app</h1><p>Version <strong id="version">{version}</strong></p></body></html>"""


def app(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    environment = environ.get("APPSETTING_ENVIRONMENT", "")
    if path == "/health" and DEFECT and DEFECT == environment:
        data = json.dumps({"status": "failing", "version": VERSION, "environment": environment}).encode()
        start_response("503 Service Unavailable", [("Content-Type", "application/json")])
        return [data]
    if path == "/health":
        body, kind = json.dumps({"status": "ok", "version": VERSION}), "application/json"
    elif path == "/":
        SERVED[0] += 1
        where, _, every = (ERRORS or "").partition(" ")
        if ERRORS and where == environment and SERVED[0] % max(1, int(every or 1)) == 0:
            start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
            return [b"internal error"]
        body, kind = PAGE.format(version=VERSION), "text/html; charset=utf-8"
    else:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]
    data = body.encode()
    start_response("200 OK", [("Content-Type", kind), ("Content-Length", str(len(data)))])
    return [data]
