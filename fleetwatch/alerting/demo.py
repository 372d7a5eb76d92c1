"""Alerting inside ``fleetwatch demo``: a stage that evaluates and dispatches on every tick,
and a tiny local HTTP receiver the demo's notifications go to.

Plugging it in takes two lines in the demo::

    stage = AlertingStage(settings, db_factory, store)   # db_factory: a sessionmaker
    stage.start(); ...; stage.tick(now); ...; stage.report(); stage.stop()
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import yaml
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fleetwatch.alerting import service
from fleetwatch.alerting.models import Alert, Notification
from fleetwatch.alerting.ruleset import DEFAULT_RULES, read_file
from fleetwatch.db import session_scope
from fleetwatch.plugins import PluginRegistry
from fleetwatch.settings import Settings
from fleetwatch.store.base import MetricsStore

DEMO_SECRET = "fleetwatch-demo-signing-key"  # loopback only; a real receiver gets its own


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class LocalReceiver:
    """An HTTP server on loopback (own thread) that records every request it receives.

    ``responses`` scripts the answers, in order: ``(status, headers)`` pairs; once used up it
    answers 200. Tests use it to check exact payloads and retry behaviour over real HTTP.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.received: list[ReceivedRequest] = []
        self._responses: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status, headers = receiver._record(
                    ReceivedRequest(self.path, dict(self.headers.items()), body)
                )
                payload = b'{"status":"ok"}' if status < 300 else b'{"error":"scripted"}'
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._thread: threading.Thread | None = None

    def _record(self, request: ReceivedRequest) -> tuple[int, dict[str, str]]:
        with self._lock:
            self.received.append(request)
            return self._responses.pop(0) if self._responses else (200, {})

    def script(self, *responses: tuple[int, dict[str, str]]) -> None:
        with self._lock:
            self._responses.extend(responses)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> LocalReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LocalReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def demo_rules(receiver_url: str) -> dict[str, Any]:
    """The default rule set routed to the local receiver, with timers short enough to watch."""
    raw = read_file(DEFAULT_RULES)
    raw["receivers"] = [
        {
            "name": "demo",
            "notifier": "webhook",
            "config": {"url": f"{receiver_url}/alerts", "secret": DEMO_SECRET},
        }
    ]
    raw["route"] = {
        "receiver": "demo",
        "group_by": ["alertname", "site"],
        "group_wait": "10s",
        "group_interval": "1m",
        "repeat_interval": "1h",
    }
    return raw


class AlertingStage:
    """Evaluate rules and dispatch notifications on every demo tick."""

    def __init__(
        self,
        settings: Settings,
        db_factory: Callable[[], Session],
        store: MetricsStore,
        *,
        registry: PluginRegistry | None = None,
    ) -> None:
        self.base_settings = settings
        self.settings = settings
        self.db_factory = db_factory
        self.store = store
        self.registry = registry or PluginRegistry.from_entry_points(["fleetwatch.notifiers"])
        self.receiver = LocalReceiver()
        self.fired_by_rule: Counter[str] = Counter()
        self.resolved = 0
        self.notifications = 0
        self.rule_errors: dict[str, str] = {}

    def start(self) -> None:
        self.receiver.start()
        rules = self.base_settings.data_dir / "alerting-demo.yaml"
        rules.parent.mkdir(parents=True, exist_ok=True)
        rules.write_text(yaml.safe_dump(demo_rules(self.receiver.url), sort_keys=False))
        alerting = self.base_settings.alerting.model_copy(
            update={
                "rules_file": rules,
                "allowed_http_hosts": [
                    *self.base_settings.alerting.allowed_http_hosts,
                    "127.0.0.1",
                ],
                "retry_backoff_s": 0.1,
            }
        )
        self.settings = self.base_settings.model_copy(update={"alerting": alerting})

    def tick(self, now: datetime) -> dict[str, int]:
        with session_scope(self.db_factory) as db:  # type: ignore[arg-type]
            ev = service.evaluate(db=db, store=self.store, now=now, settings=self.settings)
            db.commit()
            dp = service.dispatch(db=db, now=now, settings=self.settings, registry=self.registry)
        self.fired_by_rule.update(ev.fired_by_rule)
        self.resolved += ev.resolved
        self.notifications += dp.notifications
        self.rule_errors.update(ev.rule_errors)
        return {"fired": ev.fired, "resolved": ev.resolved, "notifications": dp.notifications}

    def stop(self) -> None:
        self.receiver.stop()

    def report(self) -> dict[str, Any]:
        with session_scope(self.db_factory) as db:  # type: ignore[arg-type]
            firing = db.scalar(
                select(func.count()).select_from(Alert).where(Alert.state == "firing")
            )
            sent = db.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.delivery_state == "sent")
            )
        return {
            "alerts_raised": sum(self.fired_by_rule.values()),
            "alerts_resolved": self.resolved,
            "alerts_firing": int(firing or 0),
            "alerts_by_rule": dict(self.fired_by_rule),
            "notifications": self.notifications,
            "notifications_delivered": int(sent or 0),
            "receiver_requests": len(self.receiver.received),
            "rule_errors": dict(self.rule_errors),
        }

    def summary_lines(self, limit: int = 5) -> list[str]:
        """The latest notification titles, for the demo's live summary."""
        lines = []
        for request in self.receiver.received[-limit:]:
            body = request.json()
            names = ", ".join(f"{k}={v}" for k, v in sorted(body["groupLabels"].items()))
            lines.append(f"{body['status']}: {names} ({len(body['alerts'])} alerts)")
        return lines
