"""OpenID Connect sign-in for the console (prefix MOE_OIDC_): off unless an issuer is set. See docs/identity.md."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _csv(value: str) -> frozenset[str]:
    return frozenset(v.strip() for v in value.split(",") if v.strip())


class OidcSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MOE_OIDC_", extra="ignore")

    issuer: str = Field(default="", description="The provider's issuer URL (discovery at <issuer>/.well-known/"
                                                "openid-configuration); empty: OIDC sign-in is off")
    client_id: str = Field(default="", description="The console's client id at the provider")
    client_secret: SecretStr = Field(default=SecretStr(""), description="The console's client secret (confidential "
                                                                        "client; PKCE is used as well)")
    redirect_uri: str = Field(default="", description="The callback registered at the provider: "
                                                      "https://<control plane>/console/oidc/callback")
    audience: str = Field(default="", description="The audience an ID token must carry (empty: the client id)")
    scopes: str = Field(default="openid email profile", description="Scopes asked for (openid is required)")
    provider_name: str = Field(default="single sign-on", description="The sign-in button's label")
    allowed_emails: str = Field(
        default="", description="Comma-separated verified e-mail addresses that may sign in without being "
                                          "provisioned first (a person principal is created at first sign-in)")
    allowed_groups: str = Field(
        default="", description="Comma-separated groups (the groups claim) whose members may sign in "
                                          "without being provisioned first")
    groups_claim: str = Field(default="groups", description="The ID token claim that lists a person's groups")
    admin_groups: str = Field(
        default="", description="Comma-separated groups (the groups claim) whose members get the console's admin "
                                "role on their tenant; a sign-in in none of them is refused. Roles come from the "
                                "identity provider: empty, OIDC sign-in is not configured (nobody is an admin by "
                                "merely signing in)")
    default_tenant: str = Field(default="default", description="The tenant of a person created at first sign-in")
    leeway_s: int = Field(default=60, ge=0, le=600, description="Clock skew allowed on exp and iat")
    http_timeout_s: float = Field(default=10.0, gt=0, le=60, description="Discovery, keys and token calls")

    def emails(self) -> frozenset[str]:
        return frozenset(e.lower() for e in _csv(self.allowed_emails))

    def groups(self) -> frozenset[str]:
        return _csv(self.allowed_groups)

    def admins(self) -> frozenset[str]:
        return _csv(self.admin_groups)

    @property
    def enabled(self) -> bool:
        return bool(self.issuer)

    def expected_audience(self) -> str:
        return self.audience or self.client_id

    def problems(self) -> list[str]:
        """What is missing for OIDC sign-in to work (empty when it is off or complete)."""
        if not self.enabled:
            return []
        missing = [f"MOE_OIDC_{n.upper()}" for n in ("client_id", "redirect_uri") if not getattr(self, n)]
        if "openid" not in self.scopes.split():
            missing.append("MOE_OIDC_SCOPES (must include openid)")
        if not self.admins():
            missing.append("MOE_OIDC_ADMIN_GROUPS (the provider's groups whose members administer their tenant)")
        return missing
