"""Build the sample web app as a version and tell Slipway about it, as a CI pipeline would.

    python examples/build.py --version 1.0.1 [--branch main] [--commit abc1234]

Zips `examples/webapp` with `version.txt` (deterministic: the same version gives the same bytes
and sha256), uploads it to the `packages` container as `<source>/<version>.zip` (a version is
immutable: other bytes under the same name are refused), then POSTs the artifact webhook, which
creates the releases that continuous deployment asks for.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import sys
import zipfile
from pathlib import Path

import httpx
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

APP = Path(__file__).resolve().parent / "webapp"
FIXED_TIME = (2020, 1, 1, 0, 0, 0)


def build_package(version: str, defect_in: str | None = None, errors_in: str | None = None,
                  one_in: int = 2) -> bytes:
    """The app with its version; `defect_in` builds one whose /health fails in that environment
    (its ENVIRONMENT app setting), to show an automatic swap-back; `errors_in` one that answers 500
    to one page request in `one_in` there, which only a health gate on its 5xx metric notices."""
    buffer = io.BytesIO()
    files = {p.relative_to(APP).as_posix(): p.read_bytes() for p in sorted(APP.rglob("*"))
             if p.is_file() and "__pycache__" not in p.parts}
    files["version.txt"] = f"{version}\n".encode()
    if defect_in:
        files["defect.txt"] = f"{defect_in}\n".encode()
    if errors_in:
        files["errors.txt"] = f"{errors_in} {one_in}\n".encode()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, FIXED_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, files[name], zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def upload(data: bytes, blob_name: str, storage_connection: str, container: str = "packages") -> None:
    client = BlobServiceClient.from_connection_string(storage_connection).get_container_client(container)
    try:
        client.create_container()
    except ResourceExistsError:
        pass
    blob = client.get_blob_client(blob_name)
    try:
        blob.upload_blob(data, overwrite=False)
    except ResourceExistsError:
        if blob.download_blob().readall() != data:
            raise SystemExit(f"{blob_name} already exists with other content: a version is immutable, "
                             f"build a new version") from None


def publish(*, version: str, branch: str = "main", commit: str | None = None, source: str = "sample-webapp",
            storage_connection: str, api: str, defect_in: str | None = None,
            errors_in: str | None = None, key: str | None = None) -> httpx.Response:
    """Upload the package, then call the webhook as automation does: with a function key."""
    data = build_package(version, defect_in, errors_in)
    blob_name = f"{source}/{version}.zip"
    upload(data, blob_name, storage_connection)
    hook = {"source": source, "version": version, "buildId": version, "branch": f"refs/heads/{branch}",
            "package": blob_name, "sha256": hashlib.sha256(data).hexdigest()}
    if commit:
        hook["commit"] = commit
    headers = {"x-functions-key": key} if key else {}
    return httpx.post(f"{api.rstrip('/')}/artifacts", json=hook, headers=headers, timeout=60)


def running_stack() -> dict[str, str]:
    """What `make run` wrote about itself, if it is running."""
    path = APP.parent.parent / ".slipway" / "stack.json"
    return json.loads(path.read_text()) if path.exists() else {}  # type: ignore[no-any-return]


def main() -> int:
    stack = running_stack()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", required=True)
    parser.add_argument("--branch", default="main")
    parser.add_argument("--commit", default=None)
    parser.add_argument("--source", default="sample-webapp")
    parser.add_argument("--defect-in", default=None, metavar="ENVIRONMENT",
                        help="build a version whose /health fails where ENVIRONMENT has this value")
    parser.add_argument("--errors-in", default=None, metavar="ENVIRONMENT",
                        help="build a version that answers 500 to every other page request there")
    parser.add_argument("--storage-connection", default=os.environ.get(
        "AzureWebJobsStorage", stack.get("storage", "UseDevelopmentStorage=true")))
    parser.add_argument("--api", default=os.environ.get("SLIPWAY_API", stack.get("api", "http://localhost:7071/api")))
    parser.add_argument("--key", default=os.environ.get("SLIPWAY_KEY", stack.get("key")),
                        help="function key of the Slipway app (the local stack's, when it runs)")
    args = parser.parse_args()
    response = publish(version=args.version, branch=args.branch, commit=args.commit, source=args.source,
                       storage_connection=args.storage_connection, api=args.api, defect_in=args.defect_in,
                       errors_in=args.errors_in, key=args.key)
    try:
        print(json.dumps(response.json(), indent=2))
    except ValueError:
        print(response.text)
    return 0 if response.status_code < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
