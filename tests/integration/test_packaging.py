"""What Azure will run: requirements.txt alone installs and imports the app on Python 3.11, and the
real Python worker (azure-functions-runtime, Python 3.13) indexes every function.

The virtual environments are cached in .slipway/venvs, keyed by the requirements they hold."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)


def venv(python: str, requirements: list[str], name: str) -> Path:
    pinned = (REPO / "requirements.txt").read_text()  # a changed file means a new venv
    key = hashlib.sha256("\n".join([python, *requirements, pinned]).encode()).hexdigest()[:12]
    path = REPO / ".slipway" / "venvs" / f"{name}-{key}"
    ready = path / ".ready"
    if not ready.exists():
        shutil.rmtree(path, ignore_errors=True)
        subprocess.run([python, "-m", "venv", str(path)], check=True)
        subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements], check=True)
        ready.touch()
    return path / "bin" / "python"


def interpreter(version: str) -> str:
    """A real interpreter of that version (pyenv's shims answer only for the selected versions)."""
    found = next((str(p) for p in sorted(Path.home().glob(f".pyenv/versions/{version}.*/bin/python{version}"))),
                 None) or shutil.which(f"python{version}")
    if found is None:
        pytest.fail(f"python{version} is needed for this check (.ci/run installs it)")
    return found


def runtime_requirements() -> list[str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_requirements_alone_install_and_import_the_app_on_python_311() -> None:
    python = venv(interpreter("3.11"), ["-r", str(REPO / "requirements.txt")], "runtime311")
    subprocess.run([str(python), "-m", "pip", "check"], check=True, capture_output=True)
    code = "import function_app; print(len(function_app.app.get_functions()))"
    out = subprocess.run([str(python), "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) >= 17


def test_the_real_worker_indexes_every_function() -> None:
    # azure-functions 1.x stops at Python 3.12; the 3.13 worker brings azure-functions 2.x (same API)
    requirements = ["azure-functions-runtime",
                    *[r for r in runtime_requirements() if not r.startswith("azure-functions")]]
    python = venv(interpreter("3.13"), requirements, "worker313")
    out = subprocess.run([str(python), str(REPO / "local" / "worker_index.py"), str(REPO)], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    import function_app

    function_app.app.functions_bindings = {}
    names = {f.get_function_name() for f in function_app.app.get_functions()}
    indexed = {line.split()[0] for line in out.stdout.splitlines() if line.strip()}
    assert indexed == names


