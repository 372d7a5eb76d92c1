"""Configuration of the IoT Edge collector."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, SecretStr, field_validator

from collectors._common import DeviceField, SiteField


class IoTEdgeConfig(BaseModel):
    """Scrape edgeAgent, edgeHub and any module's Prometheus endpoint."""

    model_config = {"extra": "forbid"}

    urls: list[str] = Field(
        default_factory=lambda: ["http://edgeAgent:9600/metrics", "http://edgeHub:9600/metrics"],
        description="Prometheus endpoints to scrape. Port 9600 is not published to the host by "
        "default: run inside the module network or map it (e.g. 9601, 9602) in createOptions",
    )
    file: Path | None = Field(
        None, description="read one exposition from this file instead of scraping the URLs"
    )
    device: str | None = DeviceField
    site: str = SiteField
    timeout_s: float = Field(5.0, gt=0, le=120, description="HTTP timeout per scrape")
    bearer_token: SecretStr | None = Field(
        None, description="bearer token for endpoints behind an authenticating proxy"
    )
    verify_tls: bool = Field(True, description="verify TLS certificates of https:// endpoints")
    keep_raw: bool = Field(
        True, description="also keep every exposed family under its exposed name and labels"
    )

    @field_validator("urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{url!r}: must start with http:// or https://")
        return urls
