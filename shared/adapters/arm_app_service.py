"""App Service slots through ARM with `azure-mgmt-web`.

One management client per subscription, built on first use (the SDK is heavy: importing it at
module load would slow every cold start). The SDK's own retries are off: a throttled or failing
call becomes a `TargetError` and the step decides when to try again, without holding an
invocation. `arm_auth = local-emulator` sends a fixed token over http, and is only for the local
App Service emulator.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC
from typing import Any

from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError

from shared.adapters import tls
from shared.adapters.azure_auth import (
    CALL_ERRORS,
    EMULATOR_TOKEN,
    managed_identity,
    mgmt_client_args,
    reason,
    target_error,
)
from shared.config import Settings
from shared.domain.target import Target
from shared.ports import LastSwap, SlotInfo, SwapProgress, TargetError


class ArmAppService:
    wait_seconds = 5.0
    """How long one invocation waits for a swap before it stores the continuation token instead."""

    def __init__(self, settings: Settings, credential: Any = None) -> None:
        self.settings = settings
        self._credential = credential
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def _client(self, subscription_id: str) -> Any:
        with self._lock:
            if subscription_id not in self._clients:
                from azure.mgmt.web import WebSiteManagementClient

                credential, options = mgmt_client_args(self.settings, self.settings.arm_url, [self.settings.arm_scope],
                                                       self._credential)
                self._clients[subscription_id] = WebSiteManagementClient(credential, subscription_id, **options)
            return self._clients[subscription_id]

    def read_slot(self, target: Target) -> SlotInfo:
        web = self._client(target.subscription_id).web_apps
        with _errors(target):
            site = _on(web, target, "get")
            settings = _on(web, target, "list_application_settings")
        return SlotInfo(url=f"{self.settings.slot_url_scheme}://{site.default_host_name}",
                        app_settings=dict(settings.properties or {}), state=site.state or "",
                        last_swap=_last_swap(site.slot_swap_status, target.site))

    def write_app_settings(self, target: Target, settings: dict[str, str]) -> None:
        from azure.mgmt.web.models import StringDictionary

        web = self._client(target.subscription_id).web_apps
        body = StringDictionary(properties=dict(settings))
        with _errors(target):
            _on(web, target, "update_application_settings", body)


    def slots(self, site: Target) -> list[str]:
        web = self._client(site.subscription_id).web_apps
        with _errors(site):
            names = [str(s.name).rsplit("/", 1)[-1].lower() for s in web.list_slots(site.resource_group, site.site)]
        return ["production", *names]

    def swap(self, site: Target, source: str, target: str, *, preserve_vnet: bool = True,
             token: str | None = None) -> SwapProgress:
        from azure.mgmt.web.models import CsmSlotEntity

        web = self._client(site.subscription_id).web_apps
        if source == "production":  # a swap is symmetric: always start it from the deployment slot
            source, target = target, source
        entity = CsmSlotEntity(target_slot=target, preserve_vnet=preserve_vnet)
        where = Target(site.subscription_id, site.resource_group, site.site, source)
        polling = _PollFor(self.wait_seconds)
        with _errors(where, during="swap"):
            if token:
                poller = web.begin_swap_slot(site.resource_group, site.site, source, entity, continuation_token=token,
                                             polling=polling)
            else:
                poller = web.begin_swap_slot(site.resource_group, site.site, source, entity, polling=polling)
        with _errors(where, during="swap", operation=True):
            poller.wait()  # the polling method gives up after wait_seconds: no poller outlives this call
            if polling.finished():
                poller.result()
                return SwapProgress(done=True)
        return SwapProgress(done=False, token=poller.continuation_token())

    def restart(self, target: Target) -> None:
        web = self._client(target.subscription_id).web_apps
        with _errors(target):
            _on(web, target, "restart")

    def sticky_names(self, site: Target) -> list[str]:
        web = self._client(site.subscription_id).web_apps
        with _errors(site):
            names = web.list_slot_configuration_names(site.resource_group, site.site)
        return list(names.app_setting_names or [])

    def set_sticky_names(self, site: Target, names: list[str]) -> None:
        """Read-modify-write: the PUT replaces the whole `slotConfigNames` (sticky connection strings
        and storage mounts too), so what this does not change is sent back as it was."""
        from azure.mgmt.web.models import SlotConfigNames, SlotConfigNamesResource

        web = self._client(site.subscription_id).web_apps
        with _errors(site):
            current = web.list_slot_configuration_names(site.resource_group, site.site)
            web.update_slot_configuration_names(site.resource_group, site.site, SlotConfigNamesResource(
                properties=SlotConfigNames(app_setting_names=names,
                                           connection_string_names=list(current.connection_string_names or []),
                                           azure_storage_config_names=list(current.azure_storage_config_names or []))))

    def apply_slot_config(self, site: Target, source: str, target: str = "production") -> None:
        """Swap with preview, phase 1: `source` takes `target`'s slot-specific settings. The API applies
        "the configuration settings from the target slot onto the current slot", so it is called on the
        source slot with targetSlot=<target>, as Az PowerShell and the Azure Pipelines task do."""
        from azure.mgmt.web.models import CsmSlotEntity

        web = self._client(site.subscription_id).web_apps
        entity = CsmSlotEntity(target_slot=target, preserve_vnet=True)
        # A 409 here does not pass: swap with preview is refused while site authentication is on in
        # either slot (learn.microsoft.com, deploy-staging-slots, "Swap with preview").
        with _errors(Target(site.subscription_id, site.resource_group, site.site, source), conflict_is_final=True):
            if source == "production":
                web.apply_slot_config_to_production(site.resource_group, site.site, entity)
            else:
                web.apply_slot_configuration_slot(site.resource_group, site.site, source, entity)

    def reset_slot_config(self, site: Target, source: str) -> None:
        """Cancel a preview: the source slot gets its own settings back."""
        web = self._client(site.subscription_id).web_apps
        with _errors(Target(site.subscription_id, site.resource_group, site.site, source)):
            if source == "production":
                web.reset_production_slot_config(site.resource_group, site.site)
            else:
                web.reset_slot_configuration_slot(site.resource_group, site.site, source)

    def stack(self, target: Target) -> str:
        """The slot's `linuxFxVersion` (e.g. `PYTHON|3.11`), or its site kind when it has none
        (`functionapp`, Windows apps): what decides how a package is deployed."""
        web = self._client(target.subscription_id).web_apps
        with _errors(target):
            config = _on(web, target, "get_configuration")
            site = _on(web, target, "get")
        return str(config.linux_fx_version or site.kind or "")

    def hosting(self, site: Target) -> dict[str, str]:
        """The site's `kind`, the plan SKU it reports (`properties.sku`, read-only in Microsoft.Web's Site model:
        "Current SKU of application based on associated App Service Plan", e.g. FlexConsumption, Dynamic,
        ElasticPremium) and a Flex app's deployment storage (`functionAppConfig.deployment.storage.value`, a
        blob container URL). One GET of the site (a slot shares its site's plan): what `az functionapp`
        reads to tell a Flex Consumption app (azure-cli appservice `is_flex_functionapp`)."""
        web = self._client(site.subscription_id).web_apps
        where = Target(site.subscription_id, site.resource_group, site.site)
        with _errors(where):
            found = web.get(site.resource_group, site.site)
        out = {"kind": str(found.kind or ""), "sku": str(found.sku or "")}
        config = found.function_app_config
        storage = config.deployment.storage if config is not None and config.deployment is not None else None
        if storage is not None and storage.value:
            out["deploymentStorage"] = str(storage.value)
        return out

    def set_container(self, target: Target, image: str) -> None:
        """Point the slot at a container image: `siteConfig.linuxFxVersion = "DOCKER|{image}"` through the
        `config/web` resource (WebApps_UpdateConfiguration[Slot], a PATCH: only linuxFxVersion is sent, so
        the rest of the site config, e.g. `acrUseManagedIdentityCreds`, stays). The same call serves web
        apps and function apps on Linux: it is what `az webapp config container set` and `az functionapp
        config container set` do (azure-cli appservice `_add_fx_version`). App Service restarts the slot,
        which pulls the image; the old container answers until the new one is up."""
        from azure.mgmt.web.models import SiteConfig, SiteConfigResource

        body = SiteConfigResource(properties=SiteConfig(linux_fx_version=f"DOCKER|{image}"))
        web = self._client(target.subscription_id).web_apps
        with _errors(target):
            _on(web, target, "update_configuration", body)

    def container(self, target: Target) -> str | None:
        """The image in the slot's `linuxFxVersion` (`DOCKER|{image}`), or None (a built-in stack, or none)."""
        web = self._client(target.subscription_id).web_apps
        with _errors(target):
            config = _on(web, target, "get_configuration")
        fx = str(config.linux_fx_version or "")
        return fx[len("DOCKER|"):] if fx[:len("DOCKER|")].upper() == "DOCKER|" else None

    def zip_deploy(self, target: Target, package: str) -> str | None:
        """Push a package file to the slot's deployment endpoint (Kudu OneDeploy, `POST
        https://<scm host>/api/publish?type=zip&async=true`) with an Entra token for ARM, as
        azure-notes section 4 says. Returns the URL to follow the deployment at, or None when it
        finished already. A deployment in progress is a retryable TargetError.

        The same call deploys to a Flex Consumption app, whose One Deploy endpoint stores the package in
        the app's deployment storage; it answers 202 with the deployment's id as its JSON body and no
        `Location` (Azure/azure-dev `funcapp_host_client.go`), so the id names the deployment to follow."""
        import httpx

        base = self._scm_base(target)
        headers = {**self._scm_headers(), "Content-Type": "application/zip"}
        try:
            with open(package, "rb") as body:
                response = httpx.post(f"{base}/api/publish", params={"type": "zip", "async": "true"},
                                      content=body, headers=headers, timeout=600, verify=tls.context())
        except httpx.HTTPError as exc:
            raise TargetError(f"{_where(target)} deployment endpoint unreachable ({exc})", retryable=True) from exc
        if response.status_code == 202:
            location = response.headers.get("Location") or _deployment_path(response)
            return str(httpx.URL(base).join(location))
        if response.status_code == 200:
            return None
        raise _scm_error(target, response)

    def deployment_status(self, target: Target, url: str) -> tuple[bool, bool, str]:
        """(finished, succeeded, what Kudu says) of a zip deployment. Kudu's DeployStatus: -1 Cancelled,
        0-2 running, 3 Failed, 4 Success, and on Flex Consumption 5 Conflict (cancelled for another
        deployment) and 6 PartialSuccess (azure-dev `PublishStatus`). A Flex deployment's status answers
        200 while it runs, and 404 until the deployment "comes alive": not finished yet."""
        import httpx

        try:
            response = httpx.get(url, headers=self._scm_headers(), timeout=30, verify=tls.context())
        except httpx.HTTPError as exc:
            raise TargetError(f"{_where(target)} deployment endpoint unreachable ({exc})", retryable=True) from exc
        if response.status_code == 404:
            return False, False, "the deployment endpoint does not list the deployment (yet)"
        if response.status_code != 200:
            raise _scm_error(target, response)
        body = response.json()
        status = int(body.get("status", 0))
        finished = bool(body.get("complete")) or status in (-1, 3, 4, 5, 6)
        text = str(body.get("status_text") or "")
        if status in (-1, 5) and not text:
            text = "cancelled" if status == -1 else "cancelled: another deployment was in progress"
        return finished, status == 4, text

    def _scm_base(self, target: Target) -> str:
        web = self._client(target.subscription_id).web_apps
        with _errors(target):
            site = _on(web, target, "get")
        hosts = [h.name for h in site.host_name_ssl_states or []
                 if str(getattr(h.host_type, "value", h.host_type)).lower() == "repository"]
        if not hosts:
            raise TargetError(f"{_where(target)} has no deployment (SCM) host name", retryable=False)
        return f"{self.settings.slot_url_scheme}://{hosts[0]}"

    def _scm_headers(self) -> dict[str, str]:
        if self.settings.arm_auth == "local-emulator":
            return {"Authorization": f"Bearer {EMULATOR_TOKEN}"}
        credential = self._credential or managed_identity(self.settings)
        self._credential = credential
        return {"Authorization": f"Bearer {credential.get_token(self.settings.arm_scope).token}"}

    def host_keys(self, site: Target) -> dict[str, str]:
        """The function app's host keys by name (`_master` for the master key); system keys are left
        out: the host accepts them only for extension endpoints (`POST …/host/default/listkeys`)."""
        web = self._client(site.subscription_id).web_apps
        with _errors(site):
            keys = web.list_host_keys(site.resource_group, site.site)
        out = dict(keys.function_keys or {})
        if keys.master_key:
            out["_master"] = keys.master_key
        return out


def _PollFor(seconds: float) -> Any:
    """A polling method (the `polling=` the management SDK takes for a custom strategy) that looks at
    the operation until it finishes or `seconds` pass, then stops: the step's delayed message is the
    next look, so no poller thread keeps running after the invocation (one per retry, otherwise)."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.polling.base_polling import BadResponse, BadStatus
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    class PollFor(ARMPolling):
        def run(self) -> None:
            deadline = time.monotonic() + seconds
            while True:
                try:
                    if not self.finished():
                        self.update_status()
                except (BadStatus, BadResponse) as err:  # the operation's own failure, with ARM's error body
                    raise HttpResponseError(response=self._pipeline_response.http_response, error=err) from err
                if self.finished():
                    if self.status().lower() in ("failed", "canceled", "cancelled"):
                        raise HttpResponseError(response=self._pipeline_response.http_response,
                                                message=f"the operation ended {self.status()}")
                    return
                if time.monotonic() >= deadline:
                    return
                time.sleep(min(self.next_look(), max(0.0, deadline - time.monotonic())))

        def next_look(self) -> float:
            """ARM's `Retry-After` on the operation's answer says when to look again (at most a second
            here: the call gives up after `seconds` and the step looks again later by itself)."""
            value = self._pipeline_response.http_response.headers.get("Retry-After", "")
            try:
                return min(1.0, max(0.0, float(value)))
            except ValueError:
                return 1.0

    return PollFor(timeout=1)


def _on(web: Any, target: Target, operation: str, *args: Any) -> Any:
    """Call `operation` of `web_apps` on the target: the site's own form for production, the
    `<operation>_slot` form (the slot's name after the site's) for a deployment slot."""
    if target.is_production:
        return getattr(web, operation)(target.resource_group, target.site, *args)
    return getattr(web, f"{operation}_slot")(target.resource_group, target.site, target.slot, *args)


def _last_swap(status: Any, site: str) -> LastSwap | None:
    """The site's `slotSwapStatus` (read-only in Microsoft.Web's Site model: "the status of the last
    successful slot swap operation"), if it names one. A slot may be named `site/slot`, and the
    production slot by the site's name."""
    if status is None or status.timestamp_utc is None:
        return None
    at = status.timestamp_utc if status.timestamp_utc.tzinfo else status.timestamp_utc.replace(tzinfo=UTC)
    names = {str(n).rsplit("/", 1)[-1].lower() for n in (status.source_slot_name, status.destination_slot_name) if n}
    return LastSwap(at, frozenset("production" if n == site.lower() else n for n in names))


def _deployment_path(response: Any) -> str:
    """Where to follow a deployment a 202 named only by its id (a JSON string body), else the latest."""
    try:
        found = response.json()
    except ValueError:
        found = None
    if isinstance(found, str) and found and all(c.isalnum() or c in "-_" for c in found):
        return f"/api/deployments/{found}"
    return "/api/deployments/latest"


def _where(target: Target) -> str:
    return f"{target.site}/{target.slot or 'production'}"


def _scm_error(target: Target, response: Any) -> TargetError:
    status = response.status_code
    text = response.text.strip().splitlines()[0][:300] if response.text.strip() else ""
    if status == 409 and "in progress" in text:
        return TargetError(f"{_where(target)}: a deployment is in progress ({text})", retryable=True, retry_after=10)
    retryable = status in (408, 429) or status >= 500
    hint = "; Slipway's identity needs Website Contributor on the app" if status in (401, 403) else ""
    return TargetError(f"{_where(target)} deployment endpoint answered {status} ({text}){hint}", retryable=retryable)


class _errors:
    """Turn SDK errors into TargetError: retryable for throttling, 5xx and network trouble."""

    def __init__(self, target: Target, *, during: str = "", operation: bool = False,
                 conflict_is_final: bool = False) -> None:
        self.where = f"{target.site}/{target.slot or 'production'}" + (f" {during}" if during else "")
        self.operation = operation
        """True while polling a long-running operation: its failure is the operation's own verdict."""
        self.conflict_is_final = conflict_is_final

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is None:
            return
        if isinstance(exc, ResourceNotFoundError):
            raise TargetError(f"{self.where}: not found ({reason(exc)})", retryable=False) from exc
        if isinstance(exc, ClientAuthenticationError):
            raise TargetError(f"{self.where}: not authorised ({reason(exc)}); Slipway's identity needs "
                              f"Website Contributor on the app", retryable=False) from exc
        if isinstance(exc, HttpResponseError) and self.operation:
            status = exc.status_code or 0
            if status < 500 and status != 429:
                raise TargetError(f"{self.where} failed: {reason(exc)}", retryable=False) from exc
        if isinstance(exc, CALL_ERRORS):
            raise target_error(exc, self.where, retryable=self._retryable) from exc

    def _retryable(self, status: int) -> bool:
        return status == 429 or status >= 500 or (status == 409 and not self.conflict_is_final)
