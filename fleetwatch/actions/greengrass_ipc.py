"""Agent side of a Greengrass upgrade hold: defer component updates while fleetwatch holds us.

The gateway agent runs on a Greengrass core device as a component. Greengrass tells components
about a coming deployment with a ``PreComponentUpdateEvent`` (for deployments whose
``componentUpdatePolicy`` is ``NOTIFY_COMPONENTS``); a component may answer
``DeferComponentUpdate`` with ``recheck_after_ms`` to push the update back, and Greengrass asks
again after that delay. :class:`UpdateDeferrer` does exactly that while ``is_held()`` says the
device is held (the agent reads ``GET /api/v1/actions/agent/{device}/hold``), and answers with
``recheck_after_ms=0`` (go ahead) otherwise.

The client follows the AWS IoT Device SDK v2 interface
``awsiot.greengrasscoreipc.clientv2.GreengrassCoreIPCClientV2``::

    subscribe_to_component_updates(on_stream_event=..., on_stream_error=..., on_stream_closed=...)
    defer_component_update(deployment_id=..., message=..., recheck_after_ms=...)

The component needs the ``aws.greengrass.ipc.lifecycle`` authorisation, which Greengrass grants
to every component for its own updates (no access-control policy needed).

Fallback when IPC is unavailable (the SDK is not installed, the agent does not run as a
Greengrass component, or the nucleus refuses the connection): :func:`connect` returns None with
the reason; the agent reports "cannot hold" and the hold shows up as not effective in the audit
log. Deployments with ``SKIP_NOTIFY_COMPONENTS`` never send the event either; for those the
operator must redeploy with ``NOTIFY_COMPONENTS`` or cancel the rollout (with approval).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger(__name__)
DEFAULT_RECHECK_MS = 5 * 60 * 1000


class ComponentUpdateClient(Protocol):
    """The two calls of ``GreengrassCoreIPCClientV2`` a deferrer needs."""

    def subscribe_to_component_updates(
        self,
        *,
        stream_handler: Any = None,
        on_stream_event: Callable[[Any], None] | None = None,
        on_stream_error: Callable[[Exception], bool] | None = None,
        on_stream_closed: Callable[[], None] | None = None,
    ) -> Any: ...

    def defer_component_update(
        self,
        *,
        deployment_id: str | None = None,
        message: str | None = None,
        recheck_after_ms: int | None = None,
    ) -> Any: ...


@dataclass(frozen=True, slots=True)
class Answer:
    deployment_id: str
    deferred: bool
    recheck_after_ms: int


class UpdateDeferrer:
    """Answer every pre-update event: defer while held, let it proceed otherwise."""

    def __init__(
        self,
        client: ComponentUpdateClient,
        is_held: Callable[[], bool],
        *,
        recheck_after_ms: int = DEFAULT_RECHECK_MS,
        message: str = "fleetwatch holds upgrades on this device (predicted trouble)",
    ) -> None:
        self.client = client
        self.is_held = is_held
        self.recheck_after_ms = recheck_after_ms
        self.message = message
        self.answers: list[Answer] = []
        self.stream_error: Exception | None = None
        self._lock = threading.Lock()
        self._operation: Any = None

    def start(self) -> None:
        """Subscribe to component update events (once)."""
        if self._operation is not None:
            return
        result = self.client.subscribe_to_component_updates(
            on_stream_event=self.on_event,
            on_stream_error=self.on_error,
            on_stream_closed=self.on_closed,
        )
        # clientv2 returns (response, operation); keep the operation to close it later.
        self._operation = result[1] if isinstance(result, tuple) else result

    def stop(self) -> None:
        operation, self._operation = self._operation, None
        if operation is not None and hasattr(operation, "close"):
            operation.close()

    def on_event(self, event: Any) -> None:
        """A ``ComponentUpdatePolicyEvents``: only pre-update events are answered."""
        pre = getattr(event, "pre_update_event", None)
        if pre is None:
            return
        deployment_id = str(pre.deployment_id)
        try:
            held = bool(self.is_held())
        except Exception:  # cannot tell: holding is the safe side, the rollout retries later
            log.exception("hold state unknown; deferring deployment %s", deployment_id)
            held = True
        recheck = self.recheck_after_ms if held else 0
        self.client.defer_component_update(
            deployment_id=deployment_id,
            message=self.message if held else "fleetwatch: proceed",
            recheck_after_ms=recheck,
        )
        with self._lock:
            self.answers.append(Answer(deployment_id, held, recheck))

    def on_error(self, error: Exception) -> bool:
        self.stream_error = error
        log.warning("component update stream error: %s", error)
        return False  # keep the stream open

    def on_closed(self) -> None:
        self._operation = None


def connect() -> tuple[ComponentUpdateClient | None, str]:
    """The SDK's IPC client, or None and why (the documented fallback applies then)."""
    try:
        from awsiot.greengrasscoreipc.clientv2 import (
            GreengrassCoreIPCClientV2,
        )
    except ImportError:
        return None, "cannot hold: awsiotsdk is not installed (pip install awsiotsdk)"
    try:
        return GreengrassCoreIPCClientV2(), ""
    except Exception as exc:  # not running as a component: no IPC socket or auth token
        return None, f"cannot hold: Greengrass IPC unavailable: {type(exc).__name__}: {exc}"
