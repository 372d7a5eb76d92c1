"""Configuration of the Greengrass collectors (gateway MQTT and central cloud API)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

from collectors._common import DeviceField, SiteField

FSS_TOPIC = "$aws/things/+/greengrassv2/health/json"


class GreengrassMqttConfig(BaseModel):
    """Subscribe to fleet status and nucleus emitter messages on an MQTT broker."""

    model_config = {"extra": "forbid"}

    host: str = Field("127.0.0.1", description="MQTT broker host")
    port: int = Field(1883, ge=1, le=65535, description="MQTT broker port")
    client_id: str | None = Field(None, description="MQTT client id; default: a random one")
    username: str | None = Field(None, description="MQTT user name")
    password: SecretStr | None = Field(None, description="MQTT password")
    tls: bool = Field(False, description="connect with TLS")
    ca_file: Path | None = Field(None, description="CA bundle for TLS")
    cert_file: Path | None = Field(None, description="client certificate for mutual TLS")
    key_file: Path | None = Field(None, description="client private key for mutual TLS")
    fleet_status_topic: str | None = Field(
        FSS_TOPIC,
        description="fleet status topic: $aws/things/<thing>/greengrassv2/health/json, or with "
        "+ for every thing; empty/null = do not subscribe",
    )
    emitter_topic: str | None = Field(
        None,
        description="MQTT topic the NucleusEmitter publishes to (its mqttTopic setting); a + in "
        "it matches the device name; null = do not subscribe",
    )
    qos: Literal[0, 1] = Field(1, description="subscription QoS (FSS publishes with QoS 1)")
    max_buffered: int = Field(
        10_000, ge=1, description="messages kept between collections; the oldest go first"
    )
    chunk_timeout_s: float = Field(
        60.0, gt=0, description="how long to wait for the missing chunks of a split message"
    )
    connect_timeout_s: float = Field(5.0, gt=0, description="wait for CONNACK and SUBACK")
    file: Path | None = Field(
        None,
        description="read messages from this file instead of MQTT: one JSON document, or one "
        "message per line (FSS objects and emitter arrays)",
    )
    device: str | None = DeviceField
    site: str = SiteField


class GreengrassCloudConfig(BaseModel):
    """Poll the greengrassv2 API: core devices, installed components, effective deployments."""

    model_config = {"extra": "forbid"}

    region: str | None = Field(None, description="AWS region; default: the boto3 default chain")
    profile: str | None = Field(None, description="AWS shared-config profile")
    aws_access_key_id: str | None = Field(None, description="access key id (prefer a profile)")
    aws_secret_access_key: SecretStr | None = Field(None, description="secret access key")
    aws_session_token: SecretStr | None = Field(None, description="session token")
    endpoint_url: str | None = Field(None, description="API endpoint override")
    thing_group_arn: str | None = Field(None, description="only core devices of this thing group")
    topology: Literal["ROOT", "ALL"] = Field(
        "ROOT", description="ListInstalledComponents topologyFilter (the API default is ROOT)"
    )
    max_attempts: int = Field(
        5, ge=1, le=20, description="tries of one call when throttled (ThrottlingException/429)"
    )
    backoff_s: float = Field(0.5, ge=0, description="first back-off delay; doubles per try")
    max_backoff_s: float = Field(20.0, ge=0, description="longest back-off delay")
    file: Path | None = Field(
        None,
        description="read saved responses instead of calling AWS: a JSON object or list of "
        "GetCoreDevice / ListInstalledComponents / ListEffectiveDeployments responses",
    )
    device: str | None = DeviceField
    site: str = SiteField
