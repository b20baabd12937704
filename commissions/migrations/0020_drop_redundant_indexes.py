"""Indexes the events API wrote on every event and nothing read (issue 20: the events path's cost).

- The ledger's plain ``referral_id`` index: ``commission_referral_earned`` (referral, earned_at)
  starts with the same column and answers every lookup by referral.
- On PostgreSQL, the ``varchar_pattern_ops`` ("_like") copies Django adds beside a unique
  CharField's index, for ``LIKE 'prefix%'``: the event id, the payment id and the customer id are
  only ever looked up whole (the unique indexes answer that), and the admin searches them with
  ``=field``. Each was one more index entry written per event, payment or sign-up.
"""

import django.db.models.deletion
from django.db import migrations, models

# (table, column) of the unique CharFields whose "_like" index goes.
_LIKE = [
    ("commissions_merchantevent", "event_id"),
    ("commissions_payment", "payment_id"),
    ("commissions_referral", "customer_id"),
]


def _like_name(schema_editor, table: str, column: str) -> str:
    return schema_editor._create_index_name(table, [column], suffix="_like")


def drop_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in _LIKE:
        schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(_like_name(schema_editor, table, column))}")


def create_like_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column in _LIKE:
        name = schema_editor.quote_name(_like_name(schema_editor, table, column))
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {schema_editor.quote_name(table)} "
            f"({schema_editor.quote_name(column)} varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0019_referral_totals_not_negative"),
    ]

    operations = [
        migrations.AlterField(
            model_name="commissionentry",
            name="referral",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="commission_entries",
                to="commissions.referral",
            ),
        ),
        migrations.RunPython(drop_like_indexes, create_like_indexes),
    ]
