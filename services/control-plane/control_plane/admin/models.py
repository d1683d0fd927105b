"""Request and response bodies of the admin API (/v1/admin/*): what an admin console sends and reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, model_validator

from moe_core.access.keystore import ApiKey, Tenant
from moe_core.access.limits import Limits

TENANT_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
MAX_EXPIRY_DAYS = 3660


class TenantCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=TENANT_ID, description="Stable id, e.g. team-a (letters, digits, . _ -)")
    name: str = Field(default="", max_length=200)
    limits: Limits = Field(default_factory=Limits, description="Limits shared by all the tenant's keys")


class TenantUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    limits: Limits | None = Field(default=None, description="Replaces the tenant's limits")
    disabled: StrictBool | None = Field(default=None, description="A disabled tenant's keys are refused (403)")


class TenantOut(BaseModel):
    object: Literal["tenant"] = "tenant"
    id: str
    name: str
    limits: Limits
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, tenant: Tenant) -> TenantOut:
        return cls(id=tenant.id, name=tenant.name, limits=tenant.limits, disabled=tenant.disabled,
                   created_at=tenant.created_at)


class _KeySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    expires_at: datetime | None = Field(default=None, description="When the key stops working (UTC)")
    expires_in_days: float | None = Field(default=None, gt=0, le=MAX_EXPIRY_DAYS,
                                          description="Alternative to expires_at")
    allowed_models: list[str] | None = Field(default=None, min_length=1, max_length=100,
                                             description="Model ids (modes or mapped client ids); unset: all")
    default_template: str | None = Field(default=None, min_length=1, max_length=64,
                                         description="The expert template (moe_core.llm.templates) the key's requests "
                                                     "use unless they name one; unset: the global models")
    data_class: str | None = Field(default=None, min_length=1, max_length=64,
                                   description="Raises the class of the key's requests (policy/data-classes.yaml; "
                                               "never below its tenant's); only the operator lowers or clears it")

    @model_validator(mode="after")
    def _one_expiry(self) -> _KeySettings:
        if self.expires_at is not None and self.expires_in_days is not None:
            raise ValueError("give expires_at or expires_in_days, not both")
        if self.expires_at is not None and self.expires_at.tzinfo is None:
            raise ValueError("expires_at needs a time zone (e.g. 2027-01-01T00:00:00Z)")
        if self.expires_at is not None and self.expires_at > datetime.now(UTC) + timedelta(days=MAX_EXPIRY_DAYS):
            raise ValueError(f"expires_at is more than {MAX_EXPIRY_DAYS} days away (as expires_in_days may be)")
        if any(not m.strip() or len(m) > 200 for m in self.allowed_models or []):
            raise ValueError("allowed_models must be non-empty model ids")
        return self


class KeyCreate(_KeySettings):
    name: str = Field(min_length=1, max_length=200)
    tenant_ids: list[str] = Field(min_length=1, max_length=32,
                                  description="Tenants the key acts for (existing ones); the first is its default")
    role: Literal["admin", "user", "operator"] = Field(default="user", description="user; admin: a tenant admin "
                                                      "of its tenants; operator: the fleet operator")
    limits: Limits = Field(default_factory=Limits)
    principal_id: str | None = Field(default=None, min_length=1, max_length=64,
                                     description="The principal (person or service account) the key belongs to; "
                                                 "unset: a new service account of its own")


class KeyUpdate(_KeySettings):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    limits: Limits | None = Field(default=None, description="Replaces the key's limits")
    clear_expiry: StrictBool = Field(default=False, description="Remove the expiry")
    clear_allowed_models: StrictBool = Field(default=False, description="Allow every model again")
    clear_default_template: StrictBool = Field(default=False, description="Back to the global models")
    clear_data_class: StrictBool = Field(default=False, description="Its requests take their tenant's class again")

    @model_validator(mode="after")
    def _set_or_clear(self) -> KeyUpdate:
        for field, clear in (("allowed_models", "clear_allowed_models"), ("default_template", "clear_default_template"),
                             ("expires_at", "clear_expiry"), ("expires_in_days", "clear_expiry"),
                             ("data_class", "clear_data_class")):
            if getattr(self, clear) and getattr(self, field) is not None:
                raise ValueError(f"give {field} or {clear}, not both")
        return self


class KeyOut(BaseModel):
    """A key as listed: never its secret."""

    object: Literal["api_key"] = "api_key"
    id: str
    name: str
    role: str
    tenant_ids: list[str]
    status: Literal["active", "expired", "revoked"]
    created_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None
    rotated_at: datetime | None
    allowed_models: list[str] | None
    limits: Limits
    default_template: str | None = None
    data_class: str | None = None
    principal_id: str = ""

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        status: Literal["active", "expired", "revoked"] = (
            "revoked" if key.revoked_at else "expired" if key.expired() else "active")
        return cls(id=key.id, name=key.name, role=key.role, tenant_ids=list(key.tenant_ids), status=status,
                   created_at=key.created_at, expires_at=key.expires_at, revoked_at=key.revoked_at,
                   rotated_at=key.rotated_at,
                   allowed_models=list(key.allowed_models) if key.allowed_models is not None else None,
                   limits=key.limits, default_template=key.default_template, principal_id=key.principal_id,
                   data_class=key.data_class)


class KeySecret(KeyOut):
    """Returned by create and rotate only: the secret is shown this once and never stored."""

    secret: str


class TenantList(BaseModel):
    object: Literal["list"] = "list"
    data: list[TenantOut]


class KeyList(BaseModel):
    object: Literal["list"] = "list"
    data: list[KeyOut]
