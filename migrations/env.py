"""Alembic environment for the gdpr-sweep state database.

The tool upgrades from code (`gdpr_sweep.state.migrate`), passing its connection in
`config.attributes["connection"]`; `alembic -x url=...` works for maintenance too.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from gdpr_sweep.faults import failpoint
from gdpr_sweep.state.models import metadata

config = context.config


def run_with(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
        failpoint("during-migration")  # fault-injection tests only (gdpr_sweep.faults)


connection = config.attributes.get("connection")
if connection is not None:
    run_with(connection)
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        run_with(conn)
    engine.dispose()
