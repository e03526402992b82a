"""Where a stage deploys: one App Service app and slot in one subscription."""

from __future__ import annotations

from dataclasses import dataclass

PRODUCTION_SLOT = "production"


@dataclass(frozen=True)
class Target:
    subscription_id: str
    resource_group: str
    site: str
    slot: str | None = None
    """None (or "production") means the app's production slot."""

    @property
    def is_production(self) -> bool:
        return self.slot in (None, "", PRODUCTION_SLOT)

    @property
    def resource_id(self) -> str:
        base = (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Web/sites/{self.site}"
        )
        return base if self.is_production else f"{base}/slots/{self.slot}"

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> Target:
        return cls(data["subscriptionId"], data["resourceGroup"], data["site"], data.get("slot") or None)

    def to_dict(self) -> dict[str, str]:
        out = {"subscriptionId": self.subscription_id, "resourceGroup": self.resource_group, "site": self.site}
        if not self.is_production:
            out["slot"] = self.slot or ""
        return out
