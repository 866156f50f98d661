"""The receipt's lines a plan amounts to: per table deleted, anonymised or kept (and
on what basis, until when), per reference nulled or kept (counts only)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from ..catalog import qualified_name
from ..config import Config, EraseAction
from ..periods import add_period, local_date
from ..rowkeys import count_rows
from .planner import Planner, TablePlan, pk_columns
from .receipts import LEGAL_HOLD_BASIS, SHARED_BASIS, ReferenceOutcome, TableOutcome
from .references import ReferenceEffect


def table_outcomes(
    connection: sa.Connection, database: str, planner: Planner, plan: TablePlan
) -> list[TableOutcome]:
    name = qualified_name(plan.table)
    outcomes = []
    if plan.action.action == "keep":
        where = planner.rows.of(plan.table)
        rows = (
            len(plan.keep) if pk_columns(plan.table) else count_rows(connection, plan.table, where)
        )
        if rows:
            basis, until = _kept_until(connection, planner.config, plan.action, plan.table, where)
            outcomes.append(
                TableOutcome(database, name, "kept", rows, basis, until, plan.action.rule)
            )
        return outcomes
    if plan.held:
        outcomes.append(
            TableOutcome(database, name, "kept", len(plan.held), basis=LEGAL_HOLD_BASIS)
        )
    if plan.shared:
        outcomes.append(TableOutcome(database, name, "kept", len(plan.shared), basis=SHARED_BASIS))
    if plan.anonymise:
        outcomes.append(
            TableOutcome(
                database, name, "anonymised", len(plan.anonymise), note=plan.anonymise_note
            )
        )
    if plan.delete:
        outcomes.append(TableOutcome(database, name, "deleted", len(plan.delete)))
    return outcomes


def reference_outcome(database: str, effect: ReferenceEffect) -> ReferenceOutcome:
    reference = effect.reference
    nulled = reference.action == "null"
    return ReferenceOutcome(
        database,
        qualified_name(reference.child),
        list(reference.nulled if nulled else reference.columns),
        qualified_name(reference.parent),
        "nulled" if nulled else "kept",
        effect.rows,
    )


def _kept_until(
    connection: sa.Connection,
    config: Config,
    action: EraseAction,
    table: sa.Table,
    where: ColumnElement[bool],
) -> tuple[str | None, str | None]:
    """Return (basis, last day kept) for a keep table, from the rule that ends it."""
    rule = next((r for r in config.rules if r.id == action.rule), None)
    basis = action.basis or (rule.basis if rule else None)
    if rule is None or rule.since is None or rule.since not in table.columns:
        return basis, None
    latest = connection.execute(
        sa.select(sa.func.max(table.columns[rule.since])).where(where)
    ).scalar()
    if latest is None:
        return basis, None
    if isinstance(latest, str):  # SQLite keeps dates as text
        latest = dt.datetime.fromisoformat(latest.replace(" ", "T"))
    if isinstance(latest, dt.datetime):
        tz = config.sweep.tz
        latest = local_date(latest if latest.tzinfo else latest.replace(tzinfo=tz), tz)
    if rule.from_fiscal_year_end:
        latest = config.sweep.fiscal_year_end.end_of_year_holding(latest)
    return basis, add_period(latest, rule.after).isoformat()
