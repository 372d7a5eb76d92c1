"""A fake of ``awsiot.greengrasscoreipc.clientv2.GreengrassCoreIPCClientV2`` for the two
component-update operations, with the SDK's model shapes (the SDK is not installed here).

Shapes follow ``awsiot/greengrasscoreipc/model.py``: ``ComponentUpdatePolicyEvents`` carries
either ``pre_update_event`` (``PreComponentUpdateEvent``: ``deployment_id``,
``is_ggc_restarting``) or ``post_update_event`` (``PostComponentUpdateEvent``: ``deployment_id``);
``subscribe_to_component_updates`` returns ``(SubscribeToComponentUpdatesResponse, operation)``;
``defer_component_update`` returns ``DeferComponentUpdateResponse``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass
class PreComponentUpdateEvent:
    deployment_id: str | None = None
    is_ggc_restarting: bool | None = None


@dataclass
class PostComponentUpdateEvent:
    deployment_id: str | None = None


@dataclass
class ComponentUpdatePolicyEvents:
    pre_update_event: PreComponentUpdateEvent | None = None
    post_update_event: PostComponentUpdateEvent | None = None


@dataclass
class SubscribeToComponentUpdatesResponse:
    pass


@dataclass
class DeferComponentUpdateResponse:
    pass


@dataclass(frozen=True)
class DeferCall:
    deployment_id: str | None
    message: str | None
    recheck_after_ms: int | None


class FakeOperation:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakeGreengrassCoreIPCClientV2:
    """Records subscriptions and deferrals; ``emit_*`` plays the nucleus' side."""

    def __init__(self) -> None:
        self.on_stream_event: Callable[[Any], None] | None = None
        self.on_stream_error: Callable[[Exception], bool] | None = None
        self.on_stream_closed: Callable[[], None] | None = None
        self.subscriptions = 0
        self.deferrals: list[DeferCall] = []
        self.operation = FakeOperation()

    def subscribe_to_component_updates(
        self,
        *,
        stream_handler: Any = None,
        on_stream_event: Callable[[Any], None] | None = None,
        on_stream_error: Callable[[Exception], bool] | None = None,
        on_stream_closed: Callable[[], None] | None = None,
    ) -> tuple[SubscribeToComponentUpdatesResponse, FakeOperation]:
        if stream_handler is not None and on_stream_event is not None:
            raise ValueError("give stream_handler or the on_stream_* callbacks, not both")
        self.subscriptions += 1
        self.on_stream_event = on_stream_event
        self.on_stream_error = on_stream_error
        self.on_stream_closed = on_stream_closed
        return SubscribeToComponentUpdatesResponse(), self.operation

    def defer_component_update(
        self,
        *,
        deployment_id: str | None = None,
        message: str | None = None,
        recheck_after_ms: int | None = None,
    ) -> DeferComponentUpdateResponse:
        self.deferrals.append(DeferCall(deployment_id, message, recheck_after_ms))
        return DeferComponentUpdateResponse()

    def emit_pre_update(self, deployment_id: str, *, restarting: bool = False) -> None:
        assert self.on_stream_event is not None, "nobody subscribed"
        event = PreComponentUpdateEvent(deployment_id=deployment_id, is_ggc_restarting=restarting)
        self.on_stream_event(ComponentUpdatePolicyEvents(pre_update_event=event))

    def emit_post_update(self, deployment_id: str) -> None:
        assert self.on_stream_event is not None, "nobody subscribed"
        event = PostComponentUpdateEvent(deployment_id=deployment_id)
        self.on_stream_event(ComponentUpdatePolicyEvents(post_update_event=event))
