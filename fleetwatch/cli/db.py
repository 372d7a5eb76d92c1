"""``fleetwatch db``: apply or roll back state DB migrations."""

from __future__ import annotations

import typer

from fleetwatch.cli.common import settings

app = typer.Typer(help="State database migrations (a step of their own, never run on boot).")


@app.command()
def upgrade(revision: str = typer.Argument("heads", help="target revision")) -> None:
    """Apply migrations up to REVISION (default: all heads)."""
    from fleetwatch.db import migrations

    url = settings().database_url
    migrations.upgrade(url, revision)
    typer.echo(f"state DB at revision {', '.join(sorted(migrations.current_heads(url)))}")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="target revision, or 'base'")) -> None:
    """Roll migrations back to REVISION ('base' removes every table)."""
    from fleetwatch.db import migrations

    url = settings().database_url
    migrations.downgrade(url, revision)
    heads = migrations.current_heads(url)
    typer.echo(f"state DB at revision {', '.join(sorted(heads)) or 'base'}")


@app.command()
def current() -> None:
    """Print the applied revision(s) and whether they are the newest."""
    from fleetwatch.db import migrations

    url = settings().database_url
    heads = migrations.current_heads(url)
    state = "up to date" if migrations.is_current(url) else "behind: run `fleetwatch db upgrade`"
    typer.echo(f"{', '.join(sorted(heads)) or 'base'} ({state})")


@app.command()
def revision(
    message: str = typer.Option(..., "-m", "--message", help="what the migration does"),
    branch: str = typer.Option(..., help="domain branch label, e.g. alerting"),
    rev_id: str = typer.Option(..., help="date-prefixed id, e.g. 20261204_0004"),
) -> None:
    """Autogenerate a migration for a domain's models (developers; review the file after)."""
    import tempfile

    from alembic import command

    from fleetwatch.db import migrations

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/scratch.sqlite3"
        migrations.upgrade(url)
        cfg = migrations.alembic_config(url)
        if branch in _branch_labels(cfg):
            head, label = f"{branch}@head", None
        else:  # a new domain branches off the fleet inventory
            head, label = "20261204_0001", branch
        script = command.revision(
            cfg,
            message=message,
            autogenerate=True,
            rev_id=rev_id,
            head=head,
            branch_label=label,
            splice=label is not None,
        )
    path = getattr(script, "path", None)
    if path:
        _tidy(path)
        typer.echo(f"wrote {path}")


def _branch_labels(cfg: object) -> set[str]:
    from alembic.script import ScriptDirectory

    labels: set[str] = set()
    for rev in ScriptDirectory.from_config(cfg).walk_revisions():  # type: ignore[arg-type]
        labels.update(rev.branch_labels)
    return labels


def _tidy(path: str) -> None:
    """Autogenerate renders fleetwatch's UTCDateTime by import path; migrations use plain types."""
    from pathlib import Path

    text = Path(path).read_text()
    text = text.replace("fleetwatch.db.UTCDateTime(timezone=True)", "sa.DateTime(timezone=True)")
    lines = [ln for ln in text.splitlines() if "### commands auto generated" not in ln]
    lines = [ln for ln in lines if "### end Alembic commands" not in ln]
    Path(path).write_text("\n".join(lines) + "\n")
