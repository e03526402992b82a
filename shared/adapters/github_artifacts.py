"""Where a GitHub build's package can be downloaded: a workflow run's uploaded artifact or a release asset.

Both answer with a short-lived pre-signed link (a 302), which Slipway's package store then downloads without the
token, digests and keeps. Same client, base URL (`SLIPWAY_GITHUB_API_URL`), headers and error mapping as the
run-pipeline step's `GitHubActions`; the token never leaves the API host and never shows in a message.
"""

from __future__ import annotations

from shared.adapters.github_actions import GitHubActions, _check_download_url, _repo
from shared.domain.build_hooks.github import choose_artifact
from shared.ports import TargetError

REDIRECTS = (301, 302, 303, 307, 308)


class GitHubArtifacts(GitHubActions):
    def run_artifact_link(self, repo: str, run_id: int, token: str) -> tuple[str, str] | None:
        """(artifact name, download link) of the run's package artifact, or None when the run uploaded none
        that qualifies (`choose_artifact`). docs.github.com/rest/actions/artifacts#list-workflow-run-artifacts
        (`{total_count, artifacts: [{id, name, expired, ...}]}`, at most 100 a page) and
        #download-an-artifact ("a redirect URL to download an archive ... expires after 1 minute")."""
        what = f"artifacts of workflow run {run_id} in {repo}"
        listed = self._json(self._call("GET", f"{_repo(repo)}/actions/runs/{int(run_id)}/artifacts", token, what,
                                      params={"per_page": 100}), what).get("artifacts")
        chosen = choose_artifact(listed if isinstance(listed, list) else [])
        if chosen is None:
            return None
        name = str(chosen.get("name"))
        link = self._link(f"{_repo(repo)}/actions/artifacts/{int(chosen['id'])}/zip", token,
                          f"download of artifact '{name}' of run {run_id} in {repo}")
        return name, link

    def asset_link(self, repo: str, asset_id: int, token: str) -> str:
        """docs.github.com/rest/releases/assets#get-a-release-asset: with `Accept: application/octet-stream`
        "the API will either redirect the client to the location, or stream it directly if possible"; only the
        redirect is taken (the package store downloads the link)."""
        return self._link(f"{_repo(repo)}/releases/assets/{int(asset_id)}", token,
                          f"download of release asset {asset_id} in {repo}", accept="application/octet-stream")

    def _link(self, path: str, token: str, what: str, accept: str | None = None) -> str:
        response = self._call("GET", path, token, what, accept=accept)
        location = response.headers.get("location")
        if response.status_code not in REDIRECTS or not location:
            raise TargetError(f"GitHub {what}: expected a redirect to the download, got {response.status_code}",
                              retryable=False)
        url = str(response.request.url.join(location))
        _check_download_url(url, what)
        return url
