"""The triggers that copy a referral's click's sub-IDs (sub1, sub2, sub3) onto the referral, and
their recomputation (PostgreSQL and SQLite).

A link's sub-ID report groups the link's referrals by the sub-ID of their click. Read through a
join, that is one probe of the click table per referral (half of the report's time on a link
with a few thousand referrals). A click never changes once written, so the referral keeps a copy
of its three values. The database writes the copy whatever wrote the referral (both event paths,
the Stripe connector, staff edits, tests' factories). The app never sets those columns itself: an
update that writes them (a whole-row ``save()``) or that changes the click gets them from the
click again. A referral without a click (a promo code's) has none ("").
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import connection, transaction

_REFERRALS = "commissions_referral"
_CLICKS = "tracking_click"
SUBS = ("sub1", "sub2", "sub3")

_COPY = ", ".join(SUBS)
_CHANGED = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in ("click_id", *SUBS))

POSTGRES_FORWARD = [
    f"""CREATE FUNCTION commissions_referral_subs() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  c record;
BEGIN
  SELECT {_COPY} INTO c FROM {_CLICKS} WHERE id = NEW.click_id;
  IF FOUND THEN
    {" ".join(f"NEW.{s} := c.{s};" for s in SUBS)}
  ELSE
    {" ".join(f"NEW.{s} := '';" for s in SUBS)}
  END IF;
  RETURN NEW;
END $$""",
    # Before the row is written, so the copy costs no second write; only when something to copy
    # is there (an insert with a click) or changed (the WHEN clause is checked without a call).
    f"CREATE TRIGGER commissions_referral_subs_insert BEFORE INSERT ON {_REFERRALS} FOR EACH ROW "
    "WHEN (NEW.click_id IS NOT NULL) EXECUTE FUNCTION commissions_referral_subs()",
    f"CREATE TRIGGER commissions_referral_subs_update BEFORE UPDATE OF click_id, {_COPY} ON {_REFERRALS} "
    f"FOR EACH ROW WHEN ({_CHANGED}) EXECUTE FUNCTION commissions_referral_subs()",
]
POSTGRES_REVERSE = [
    f"DROP TRIGGER IF EXISTS commissions_referral_subs_insert ON {_REFERRALS}",
    f"DROP TRIGGER IF EXISTS commissions_referral_subs_update ON {_REFERRALS}",
    "DROP FUNCTION IF EXISTS commissions_referral_subs()",
]

# SQLite cannot assign NEW: the row is updated right after it is written (recursive triggers are
# off, so that update does not run the update trigger again).
_SQLITE_SET = ", ".join(f"{s} = COALESCE((SELECT {s} FROM {_CLICKS} WHERE id = NEW.click_id), '')" for s in SUBS)
SQLITE_FORWARD = [
    f"CREATE TRIGGER commissions_referral_subs_insert AFTER INSERT ON {_REFERRALS} "
    f"WHEN NEW.click_id IS NOT NULL BEGIN UPDATE {_REFERRALS} SET {_SQLITE_SET} WHERE id = NEW.id; END",
    f"CREATE TRIGGER commissions_referral_subs_update AFTER UPDATE OF click_id, {_COPY} ON {_REFERRALS} "
    f"WHEN {_CHANGED.replace(' IS DISTINCT FROM ', ' IS NOT ')} "
    f"BEGIN UPDATE {_REFERRALS} SET {_SQLITE_SET} WHERE id = NEW.id; END",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS commissions_referral_subs_insert",
    "DROP TRIGGER IF EXISTS commissions_referral_subs_update",
]


def recompute_sql(vendor: str, *, partner_filter: bool) -> str:
    """One statement copying every referral's sub-IDs from its click (on PostgreSQL, of some
    partners with one parameter, their ids; SQLite copies every referral's)."""
    if vendor == "postgresql":
        where = "AND r.partner_id = ANY(%s)" if partner_filter else ""
        return (
            f"UPDATE {_REFERRALS} AS r SET {', '.join(f'{s} = c.{s}' for s in SUBS)} FROM {_CLICKS} AS c "
            f"WHERE c.id = r.click_id AND ({' OR '.join(f'r.{s} <> c.{s}' for s in SUBS)}) {where}"
        )
    return f"UPDATE {_REFERRALS} SET {_SQLITE_SET.replace('NEW.', f'{_REFERRALS}.')} WHERE click_id IS NOT NULL"


def recompute(*, partner_ids: Iterable[int] | None = None) -> None:
    """Copy the sub-IDs again (``loadbench`` writes referrals with the triggers off)."""
    vendor = connection.vendor
    ids = None if partner_ids is None or vendor != "postgresql" else list(partner_ids)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(recompute_sql(vendor, partner_filter=ids is not None), None if ids is None else [ids])


def install(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for sql in {"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}[vendor]:
        schema_editor.execute(sql, params=None)
    schema_editor.execute(recompute_sql(vendor, partner_filter=False), params=None)


def reinstall_after_rebuild(schema_editor) -> None:
    """SQLite alters a table (a constraint, a column type) by copying it into a new one, and the
    old table's triggers go with it: a migration that does so to the referrals table runs this
    after (PostgreSQL keeps its triggers)."""
    if schema_editor.connection.vendor != "sqlite":
        return
    for sql in SQLITE_REVERSE + SQLITE_FORWARD:
        schema_editor.execute(sql, params=None)
    schema_editor.execute(recompute_sql("sqlite", partner_filter=False), params=None)


def uninstall(schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    for sql in {"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}[vendor]:
        schema_editor.execute(sql, params=None)
