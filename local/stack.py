"""The whole local stack in one object: Azurite, the App Service emulator, the Functions host,
and the sample pipeline. `python -m local` runs it for people; tests and benchmarks use it too."""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

import httpx

from local.app_service_emulator import AppServiceEmulator
from local.arm_deployments_emulator import ArmDeploymentsEmulator
from local.azure_devops_emulator import AzureDevOpsEmulator
from local.azurite import REPO, Azurite
from local.change_board import ChangeBoard
from local.container_apps_emulator import ContainerAppsEmulator
from local.easy_auth import LocalEntra
from local.functions_host import FunctionsHost
from local.github_emulator import GitHubEmulator
from local.host_process import HostProcess
from local.key_vault_emulator import KeyVaultEmulator
from local.mail_sink import MailSink
from local.monitor_emulator import MonitorEmulator

logger = logging.getLogger(__name__)
STOP_SECONDS = 30.0
"""How long one part may take to stop before the stack gives up on it (and says where it hung), so a
stuck server or handler never holds a test run's teardown."""


def _stop_within(part: Any, seconds: float) -> None:
    def stop() -> None:
        try:
            part.stop()
        except Exception:  # stop the rest whatever happens to one
            logger.exception("could not stop %s", part)

    stopper = threading.Thread(target=stop, name=f"stop:{type(part).__name__}", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        frame = sys._current_frames().get(stopper.ident or 0)
        where = "".join(traceback.format_stack(frame)) if frame is not None else "(no stack)"
        logger.error("%s did not stop within %.0f s; left running, stopped at:\n%s", type(part).__name__, seconds,
                     where)


GITHUB_WEBHOOK_SECRET = "local-github-webhook-secret"
"""What the local stack's GitHub webhooks are signed with (`POST /api/hooks/github`)."""
SAMPLE = json.loads((REPO / "examples" / "sample-pipeline.json").read_text())
FULL_STAGE = json.loads((REPO / "examples" / "full-stage-pipeline.json").read_text())
"""The six-kind sample: infrastructure, a migration script, the app, smoke-test workflow, a check by hand, a
change board with a callback, each on its engine's local emulator."""
SAMPLE_TARGET = SAMPLE["stages"][0]["target"]
TAILSPIN_TARGET = json.loads((REPO / "examples" / "tailspin-pipeline.json").read_text())["stages"][0]["target"]
STACK_FILE = REPO / ".slipway" / "stack.json"
"""Where a running `make run` says how to reach it (read by `examples/build.py`)."""
SAMPLE_SLOTS = [s["target"].get("slot") for s in (*SAMPLE["stages"], *FULL_STAGE["stages"])
                if s["target"].get("slot")]
MIGRATE_JOB = FULL_STAGE["stages"][0]["steps"][1]["job"]
MIGRATE_ENV = (f"/subscriptions/{SAMPLE_TARGET['subscriptionId']}/resourceGroups/{SAMPLE_TARGET['resourceGroup']}"
               f"/providers/Microsoft.App/managedEnvironments/cae-sample")
GITHUB_TOKEN_SECRET = FULL_STAGE["stages"][0]["steps"][3]["tokenSecret"]
SELF = {"subscriptionId": SAMPLE_TARGET["subscriptionId"], "resourceGroup": "rg-slipway-local",
        "site": "func-slipway-local"}
"""Slipway's own function app, as the App Service emulator knows it: its host keys are the function keys."""
SELF_ID = (f"/subscriptions/{SELF['subscriptionId']}/resourceGroups/{SELF['resourceGroup']}"
           f"/providers/Microsoft.Web/sites/{SELF['site']}")


def _port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


class LocalStack:
    """Starts every part; `stop()` (or leaving the `with` block) stops every process it started.

    `persistent` keeps Azurite's data in `.slipway/azurite`; `fixed_ports` uses the ports
    people expect (Azurite's 10000-10002, the API on 7071, the ARM emulator on 7073); tests use
    neither, so parallel runs never collide. `auth="appservice"` runs Slipway as in Azure: App
    Service authentication in front (`local/easy_auth.py`, tokens from `entra`), no development
    identity; the default `development` lets anyone act as anyone, visibly.
    """

    def __init__(self, *, persistent: bool = True, fixed_ports: bool = True, seed: bool = True,
                 max_polling_interval: float | None = None, workdir: Path = REPO / ".slipway",
                 extra_settings: dict[str, str] | None = None, auth: str = "development",
                 host_process: bool = False) -> None:
        self.auth = auth
        self.entra = LocalEntra()
        self.function_key = secrets.token_urlsafe(30)
        """The function app's default host key: what automation without Entra calls with."""
        self.persistent, self.fixed_ports, self.seed_sample = persistent, fixed_ports, seed
        self.max_polling_interval = max_polling_interval
        self.workdir = workdir
        self.extra_settings = extra_settings or {}
        self.host_process = host_process
        """Run the Functions host in a process of its own (`self.host` is then a `HostProcess` that a
        crash test kills by pid and starts again); development sign-in and the real clock only."""
        self.azurite: Azurite | None = None
        self.emulator: AppServiceEmulator | None = None
        self.host: FunctionsHost | HostProcess | None = None
        self.mail: MailSink | None = None
        self.monitor: MonitorEmulator | None = None
        self.deployments: ArmDeploymentsEmulator | None = None
        self.container_apps: ContainerAppsEmulator | None = None
        self.github: GitHubEmulator | None = None
        self.github_token = ""
        """The GitHub token Slipway's settings hold here (run-pipeline steps, build webhooks' downloads)."""
        self.azure_devops: AzureDevOpsEmulator | None = None
        self.key_vault: KeyVaultEmulator | None = None
        self.change_board: ChangeBoard | None = None
        self.definition_id: int | None = None
        self.full_stage_id: int | None = None

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        location = self.workdir / "azurite" if self.persistent else None
        ports = {"blob_port": 10000, "queue_port": 10001, "table_port": 10002}
        if not self.fixed_ports or not all(_free(p) for p in ports.values()):
            if self.fixed_ports:
                logger.warning("Azurite's usual ports 10000-10002 are taken: using free ports")
            ports = {}
        # One clock for the whole stack: the app, the host's timers and the Azure Monitor emulator.
        from local.host_settings import load_local_settings
        from shared.adapters.clock import clock_for
        from shared.config import Settings

        chosen = {**load_local_settings(REPO), **self.extra_settings}
        self.clock = clock_for(Settings.from_env({k: v for k, v in chosen.items() if k.startswith("SLIPWAY_CLOCK_")}))
        speed = getattr(self.clock, "speed", 1)
        if speed > 1 and "SLIPWAY_STEP_LEASE_SECONDS" not in self.extra_settings:
            # How long real work may take is real time: on an accelerated clock the step lease scales with
            # it, or a step that runs half a real second would look stuck for hours and be redelivered.
            lease = int(chosen.get("SLIPWAY_STEP_LEASE_SECONDS") or 30)
            self.extra_settings = {**self.extra_settings, "SLIPWAY_STEP_LEASE_SECONDS": str(lease * speed)}
        self.azurite = Azurite(location=location, **ports).start()
        self.azurite.provision()  # what the deployment creates (infra/app/storage.bicep) is there from the start
        self.mail = MailSink(page_port=7074 if self.fixed_ports and _free(7074) else 0).start()
        self.emulator = AppServiceEmulator(**({"port": 7073} if self.fixed_ports else {}))
        self.emulator.start()
        self.monitor = MonitorEmulator(port=7075 if self.fixed_ports and _free(7075) else 0).start()
        self.monitor.now = self.clock.now
        self.emulator.now = self.clock.now  # SAS expiries are judged on the stack's clock
        self.emulator.speed = float(getattr(self.clock, "speed", 1))
        self.emulator.read_blob = self._read_blob
        self.emulator.on_request = lambda resource, status, ms: self.monitor.record(  # type: ignore[union-attr]
            resource, None, status, ms)
        # Monitoring Reader on the apps' resource groups, as infra/ grants it (monitoredResourceGroupNames).
        self.monitor.readable_scopes = [f"/subscriptions/{t['subscriptionId']}/resourceGroups/{t['resourceGroup']}"
                                        for t in (SAMPLE_TARGET, TAILSPIN_TARGET)]
        self.emulator.add_site(SAMPLE_TARGET["subscriptionId"], SAMPLE_TARGET["resourceGroup"], SAMPLE_TARGET["site"],
                               slots=SAMPLE_SLOTS)
        self.emulator.add_site(TAILSPIN_TARGET["subscriptionId"], TAILSPIN_TARGET["resourceGroup"],
                               TAILSPIN_TARGET["site"], slots=["dev", "test", "preprod", "staging"])
        self.emulator.add_function_app(SELF["subscriptionId"], SELF["resourceGroup"], SELF["site"],
                                       {"default": self.function_key, "_master": secrets.token_urlsafe(30)})
        self.emulator.add_function_app(SAMPLE_TARGET["subscriptionId"], SAMPLE_TARGET["resourceGroup"], "sample-func",
                                       flex=True)  # a Flex Consumption target: One Deploy into deployment storage
        self._start_engines()
        auth = ({"SLIPWAY_AUTH_MODE": "appservice", "WEBSITE_AUTH_ENABLED": "true"} if self.auth == "appservice"
                else {"SLIPWAY_AUTH_MODE": "development", "WEBSITE_AUTH_ENABLED": ""})
        settings = {"AzureWebJobsStorage": self.azurite.connection_string,
                    "SLIPWAY_ARM_ENDPOINT": self.emulator.url, "SLIPWAY_ARM_AUTH": "local-emulator",
                    "SLIPWAY_SLOT_URL_SCHEME": "http", **auth, "SLIPWAY_FUNCTION_APP_ID": SELF_ID,
                    "SLIPWAY_SMTP_HOST": "127.0.0.1", "SLIPWAY_SMTP_PORT": str(self.mail.smtp_port),
                    "SLIPWAY_MONITOR_ENDPOINT": self.monitor.url, "SLIPWAY_LOGS_ENDPOINT": self.monitor.url,
                    "SLIPWAY_GATE_MIN_INTERVAL_SECONDS": "1", **self._engine_settings(),
                    **self.extra_settings}
        if self.host_process:
            assert self.auth == "development" and speed == 1, "a host process runs development sign-in, real time"
            os.environ["SLIPWAY_PUBLIC_URL"] = settings["SLIPWAY_PUBLIC_URL"] = f"http://127.0.0.1:{(port := _port())}"
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.host = HostProcess(settings, http_port=port, max_polling_interval=self.max_polling_interval,
                                    log=self.workdir / f"host-{port}.log").start()
        else:
            if speed > 1:
                # The functions load their services on first use (functions/lazy.py), which on an accelerated clock
                # would take hours of the pipeline's time: load them before the host's timers start.
                import function_app  # noqa: F401
                from functions.lazy import load_all

                load_all()
            self.host = FunctionsHost(REPO, http_port=7071 if self.fixed_ports else 0, settings_overrides=settings,
                                      max_polling_interval=self.max_polling_interval, entra=self.entra,
                                      clock=self.clock).start()
        os.environ["SLIPWAY_PUBLIC_URL"] = self.host.base_url  # the links in mails point at this host
        from local.storage_policies import TableLimitsPolicy
        from shared import bootstrap

        # The app builds its adapters again from this stack's settings, with Table Storage's limits
        # enforced on Azurite (which does not enforce them) so that the stack fails where Azure would.
        bootstrap.use(bootstrap.build(storage_policies=[TableLimitsPolicy()]))
        if self.seed_sample:
            self.definition_id = self.seed()
        if self.persistent:
            self.workdir.mkdir(parents=True, exist_ok=True)
            (self.workdir / STACK_FILE.name).write_text(json.dumps({"api": self.api, "key": self.function_key,
                                                                   "storage": self.azurite.connection_string}))

    def _fixed(self, port: int) -> dict[str, int]:
        return {"port": port} if self.fixed_ports and _free(port) else {}

    def _start_engines(self) -> None:
        """The engines stage tasks run on, each an emulator of its REST API, seeded for the six-kind sample:
        ARM deployments (the sample's resource group), a Container Apps job that runs the sample migration
        (its console lines go to the Azure Monitor emulator's Log Analytics tables), a GitHub repository
        with a smoke-test workflow, a Key Vault holding that workflow's token, a change board, and an Azure DevOps
        organization `contoso` whose project `web` has a smoke-test pipeline (for `run-pipeline` steps with
        `provider: azure-pipelines`; the app calls it with the fixed token of `SLIPWAY_ARM_AUTH=local-emulator`)."""
        assert self.monitor is not None
        sub, group = SAMPLE_TARGET["subscriptionId"], SAMPLE_TARGET["resourceGroup"]
        self.deployments = ArmDeploymentsEmulator(**self._fixed(7076)).start()
        self.deployments.add_resource_group(sub, group)
        self.container_apps = ContainerAppsEmulator(**self._fixed(7077)).start()
        self.container_apps.feed(self.monitor)
        self.container_apps.now = self.clock.now
        self.container_apps.add_job(sub, group, MIGRATE_JOB.rsplit("/", 1)[1], MIGRATE_ENV,
                                    secrets={"db-password": secrets.token_urlsafe(18)},
                                    log_workspace_id="5a3c0e7e-0000-4000-8000-00000000c0de")
        token = self.github_token = "ghs_" + secrets.token_hex(18)
        self.github = GitHubEmulator(**self._fixed(7078)).start()
        self.github.now = self.clock.now
        self.github.add_repo("contoso/sample-webapp")
        self.github.add_token(token, repos=["contoso/sample-webapp"])
        self.github.add_workflow(
            "contoso/sample-webapp", "smoke.yml", name="Smoke tests",
            inputs={"version": {"type": "string", "required": True}, "slipway_run": {"type": "string"}},
            run_name_template="Smoke tests of ${{ inputs.version }} (${{ inputs.slipway_run }})",
            steps=["Run pytest tests/smoke", "tests/smoke/test_home.py::test_home_answers PASSED",
                   "tests/smoke/test_health.py::test_health PASSED", "2 passed in 1.12s"],
            seconds=3.0, queue_seconds=1.0)
        self.key_vault = KeyVaultEmulator(**self._fixed(7079)).start()
        vault, name = GITHUB_TOKEN_SECRET.split("//", 1)[1].split(".", 1)[0], GITHUB_TOKEN_SECRET.rsplit("/", 1)[1]
        self.key_vault.set_secret(vault, name, token)
        self.change_board = ChangeBoard(**self._fixed(7080)).start()
        self.azure_devops = AzureDevOpsEmulator(**self._fixed(7081)).start()
        self.azure_devops.now = self.clock.now
        self.azure_devops.add_token("local-emulator", name="Slipway (managed identity)", orgs=["contoso"])
        self.azure_devops.add_pipeline(
            "contoso", "web", "smoke-tests",
            parameters={"slipway_run": {"type": "string", "default": " "},
                        "version": {"type": "string", "default": " "}},
            variables={"verbosity": {"value": "normal", "settable": True}},
            steps=["pytest tests/smoke", "tests/smoke/test_home.py::test_home_answers PASSED",
                   "tests/smoke/test_health.py::test_health PASSED", "2 passed in 1.05s"],
            seconds=3.0, queue_seconds=1.0)

    def _engine_settings(self) -> dict[str, str]:
        assert self.deployments and self.container_apps and self.github and self.key_vault and self.azure_devops
        return {"SLIPWAY_DEPLOYMENTS_ENDPOINT": self.deployments.url,
                "SLIPWAY_CONTAINERAPPS_ENDPOINT": self.container_apps.url,
                "SLIPWAY_GITHUB_API_URL": self.github.url, "SLIPWAY_KEYVAULT_ENDPOINT": self.key_vault.url,
                "SLIPWAY_AZURE_DEVOPS_URL": self.azure_devops.url,
                "SLIPWAY_KEYVAULT_CA_FILE": str(self.key_vault.ca_file),
                "SLIPWAY_HTTP_LOCAL_HOSTS": "127.0.0.1,localhost", "SLIPWAY_LOG_QUIET_SECONDS": "3",
                "SLIPWAY_GITHUB_WEBHOOK_SECRET": GITHUB_WEBHOOK_SECRET, "SLIPWAY_GITHUB_TOKEN": self.github_token}

    def _read_blob(self, url: str) -> bytes:
        """How an app's managed identity reads a package blob here: Azurite, with its key."""
        from azure.storage.blob import BlobClient

        assert self.azurite is not None
        return bytes(BlobClient.from_blob_url(url, credential=self.azurite.credential).download_blob().readall())

    @property
    def api(self) -> str:
        assert self.host is not None
        return f"{self.host.base_url}/api"

    def seed(self) -> int:
        """Create the sample pipelines unless definitions of their names exist (as an admin); the id of the
        first (the six-kind one's is `full_stage_id`)."""
        assert self.change_board is not None
        first = self._seed(SAMPLE)
        full = json.loads(json.dumps(FULL_STAGE).replace("http://127.0.0.1:7080", self.change_board.url))
        self.full_stage_id = self._seed(full)
        return first

    def _seed(self, definition: dict[str, Any]) -> int:
        admin = self.bearer("admin@localhost", ["Slipway.Admin"])
        listed = httpx.get(f"{self.api}/definitions", params={"top": "200"}, headers=admin, timeout=30).json()
        for item in listed["value"]:
            if item["name"] == definition["name"]:
                return int(item["id"])
        created = httpx.post(f"{self.api}/definitions", json=definition, headers=admin, timeout=30)
        created.raise_for_status()
        return int(created.json()["id"])

    def slot_urls(self) -> dict[str, str]:
        """Public URL of each slot of the sample app, production included."""
        assert self.emulator is not None
        return self.emulator.slot_urls(SAMPLE_TARGET["subscriptionId"], SAMPLE_TARGET["resourceGroup"],
                                       SAMPLE_TARGET["site"])

    def bearer(self, name: str, roles: list[str] | None = None) -> dict[str, str]:
        """Headers that sign in as `name` with a token of the local Entra (used in `appservice` mode;
        development mode ignores them)."""
        return {"Authorization": f"Bearer {self.entra.token(name=name, roles=roles)}"}

    def wait_for(self, release_id: int, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
        """Poll a release until `predicate(release_json)` holds."""
        deadline = time.monotonic() + timeout
        while True:
            release = httpx.get(f"{self.api}/releases/{release_id}", headers=self.bearer("watcher@localhost"),
                                timeout=30).json()
            if predicate(release):
                return release  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                stages = [{k: s.get(k) for k in ("name", "status", "waitingFor")} | {"last": (s.get("deployments") or [
                    {}])[-1]} for s in release.get("stages", [])]
                raise TimeoutError(f"release {release_id} did not get there: {json.dumps(stages)[:4000]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.persistent:
            (self.workdir / STACK_FILE.name).unlink(missing_ok=True)
        for part in (self.host, self.azure_devops, self.change_board, self.key_vault, self.github, self.container_apps,
                     self.deployments, self.emulator, self.monitor, self.mail, self.azurite):
            if part is not None:
                _stop_within(part, STOP_SECONDS)

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
