"""All step logs of a release in one zip: `<stage>/attempt-<n>/<step>-<name>.log`."""

from __future__ import annotations

import io
import re
import zipfile

from shared.domain.release import Release
from shared.services import step_logs
from shared.services.deps import Deps


def zip_of(deps: Deps, release: Release) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        logs = step_logs.read_all(deps, release)
        for name, run in release.stages.items():
            for dep in run.deployments:
                for step in dep.steps:
                    text = logs.get((name, dep.attempt, step.index))
                    if text is not None:
                        archive.writestr(f"{_segment(name)}/attempt-{dep.attempt}/"
                                         f"{step.index:02d}-{_segment(step.name)}.log", text)
    return buffer.getvalue()


def file_name(release: Release) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", release.name) + "-logs.zip"


def _segment(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._ -]+", "_", text).strip(" .") or "_"
