"""``fleetwatch api`` (serve the REST API) and ``fleetwatch token`` (manage its bearer tokens)."""

from __future__ import annotations

from datetime import timedelta

import typer

from fleetwatch.cli.common import settings

token_app = typer.Typer(help="API bearer tokens: create (shown once), list, revoke.")


def serve(
    host: str | None = typer.Option(None, help="bind address (default: api.host)"),
    port: int | None = typer.Option(None, help="port (default: api.port)"),
    insecure_local: bool = typer.Option(
        False,
        "--insecure-local",
        help="DEMO ONLY: every request gets every scope without a token; loopback hosts only",
    ),
) -> None:
    """Serve the REST API with uvicorn (run `fleetwatch db upgrade` first)."""
    import uvicorn

    from fleetwatch.api.app import InsecureLocalRefused, check_insecure_local, create_app

    config = settings()
    bind_host = host or config.api.host
    bind_port = port or config.api.port
    if insecure_local:
        try:
            check_insecure_local(bind_host)
        except InsecureLocalRefused as exc:
            typer.echo(f"fleetwatch: {exc}", err=True)
            raise typer.Exit(2) from None
        typer.echo(
            "WARNING: --insecure-local: the API accepts every request without a token, "
            f"with every scope, on {bind_host}:{bind_port}. Never use this beyond a demo.",
            err=True,
        )
    app = create_app(config, insecure_local=insecure_local)
    uvicorn.run(app, host=bind_host, port=bind_port, log_level=config.api.log_level)


@token_app.command("create")
def create(
    name: str = typer.Option(..., help="who or what holds the token, e.g. gateway-plant-a"),
    scope: list[str] = typer.Option(
        ..., "--scope", "-s", help="read, ingest, alerts, actions or admin; repeat for several"
    ),
    site: str | None = typer.Option(
        None, help="bind an ingest token to one site: it can write only that site's samples"
    ),
    expires_in_days: float | None = typer.Option(None, min=0.001, help="expiry; default never"),
) -> None:
    """Create a token and print it once; only its hash is stored."""
    from fleetwatch.api import service
    from fleetwatch.db import load_models, make_engine, session_factory, session_scope, utcnow

    config = settings()
    load_models()
    expires_at = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    engine = make_engine(config.database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            row, clear = service.create_token(
                db=db, name=name, scopes=scope, site=site, expires_at=expires_at
            )
            token_id, scopes = row.id, row.scopes
    except service.TokenError as exc:
        typer.echo(f"fleetwatch: {exc}", err=True)
        raise typer.Exit(2) from None
    finally:
        engine.dispose()
    typer.echo(f"token id: {token_id}  scopes: {','.join(scopes)}  site: {site or '-'}", err=True)
    typer.echo("store it now, it is not shown again:", err=True)
    typer.echo(clear)


@token_app.command("revoke")
def revoke(token_id: str = typer.Argument(..., help="the token id shown by `token list`")) -> None:
    """Revoke a token; requests with it fail from now on."""
    from fleetwatch.api import service
    from fleetwatch.db import load_models, make_engine, session_factory, session_scope

    load_models()
    engine = make_engine(settings().database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            row = service.revoke_token(db=db, token_id=token_id)
    finally:
        engine.dispose()
    if row is None:
        typer.echo(f"fleetwatch: no token with id {token_id!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {token_id} ({row.name})")


@token_app.command("list")
def list_tokens(
    all_tokens: bool = typer.Option(False, "--all", help="include revoked tokens"),
) -> None:
    """List tokens (ids, names, scopes, sites; never the tokens themselves)."""
    from fleetwatch.api import service
    from fleetwatch.db import load_models, make_engine, session_factory, session_scope

    load_models()
    engine = make_engine(settings().database_url)
    try:
        with session_scope(session_factory(engine)) as db:
            rows = service.list_tokens(db=db, include_revoked=all_tokens)
            lines = [
                f"{r.id}  {r.name:<24} {','.join(r.scopes):<28} site={r.site or '-'}  "
                f"created={r.created_at:%Y-%m-%dT%H:%M:%SZ}"
                + (f"  revoked={r.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if r.revoked_at else "")
                + (f"  expires={r.expires_at:%Y-%m-%dT%H:%M:%SZ}" if r.expires_at else "")
                for r in rows
            ]
    finally:
        engine.dispose()
    typer.echo("\n".join(lines) if lines else "no tokens")
