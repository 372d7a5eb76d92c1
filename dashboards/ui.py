"""Small shared pieces of page layout: banners, tables, tiles, badges and URL query state."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from dash import dcc, html

from dashboards.client import ApiError, NotAvailable

Column = tuple[str, str | Callable[[Mapping[str, Any]], Any]]
Call = tuple[Callable[[], Any], Any, str]  # fetch, default, what it is (for the banner)

# Independent API calls of one page go out together: a page waits for its slowest call, not
# for their sum. Shared by every page and session, so the API sees a bounded concurrency.
_POOL = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashboard-fetch")


def banner(errors: Sequence[str]) -> list[Any]:
    """The page's error banner: one line per failed call, never a traceback."""
    return [html.Div(message, className="banner-line") for message in dict.fromkeys(errors)]


class Errors(list[str]):
    """Collects what failed while a page was built, so the rest of the page still shows."""

    def call(self, fetch: Callable[[], Any], default: Any, what: str = "") -> Any:
        try:
            return fetch()
        except NotAvailable:
            self.append(f"{what or 'this part'}: not available from this API")
            return default
        except ApiError as exc:
            self.append(f"{what}: {exc}" if what else str(exc))
            return default

    def gather(self, calls: Mapping[str, Call]) -> dict[str, Any]:
        """Run independent calls at once; each name maps to its answer or its default."""
        futures = {
            name: _POOL.submit(self.call, fetch, default, what)
            for name, (fetch, default, what) in calls.items()
        }
        return {name: future.result() for name, future in futures.items()}


def table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[Column],
    *,
    empty: str = "nothing here",
    id: str | None = None,
    row_class: Callable[[Mapping[str, Any]], str] | None = None,
) -> html.Div:
    """A plain HTML table; a column is (heading, key or function of the row)."""
    if not rows:
        return html.Div(empty, className="empty", id=id or "")
    head = html.Thead(html.Tr([html.Th(name) for name, _ in columns]))
    body = html.Tbody(
        [
            html.Tr(
                [html.Td(_cell(row, get)) for _, get in columns],
                className=row_class(row) if row_class else "",
            )
            for row in rows
        ]
    )
    return html.Div(
        html.Table([head, body], className="table"), className="table-wrap", id=id or ""
    )


def _cell(row: Mapping[str, Any], get: str | Callable[[Mapping[str, Any]], Any]) -> Any:
    value = get(row) if callable(get) else row.get(get)
    if value is None or value == "":
        return "–"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return "; ".join(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return value


def badge(state: str) -> html.Span:
    return html.Span(state, className=f"badge badge-{state.lower().replace(' ', '-')}")


def tile(label: str, count: int, state: str) -> html.Div:
    return html.Div(
        [html.Div(str(count), className="tile-count"), html.Div(label, className="tile-label")],
        className=f"tile tile-{state}",
        id=f"tile-{state}",
    )


def device_link(device_id: Any) -> Any:
    if not device_id:
        return "–"
    return dcc.Link(str(device_id), href=f"/device/{quote(str(device_id), safe='')}")


def section(title: str, *children: Any, id: str | None = None) -> html.Section:
    kwargs = {"id": id} if id else {}
    return html.Section([html.H2(title), *children], className="card", **kwargs)


def options(values: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"label": str(v), "value": v} for v in values if v]


# --- URL query state ---------------------------------------------------------------------------
def parse_query(search: str | None) -> dict[str, list[str]]:
    """``?site=a&state=critical,warning`` -> ``{"site": ["a"], "state": ["critical",
    "warning"]}``."""
    parsed = parse_qs((search or "").lstrip("?"), keep_blank_values=False)
    return {k: [p for v in vals for p in v.split(",") if p] for k, vals in parsed.items()}


def first(query: Mapping[str, list[str]], key: str, default: str | None = None) -> str | None:
    values = query.get(key) or []
    return values[0] if values else default


def to_search(values: Mapping[str, Any]) -> str:
    """The query string for a page's state; empty values are left out so URLs stay short."""
    pairs = []
    for key, val in values.items():
        if isinstance(val, list | tuple):
            val = ",".join(str(v) for v in val if v)
        if val not in (None, ""):
            pairs.append((key, val))
    return "?" + urlencode(pairs) if pairs else ""
