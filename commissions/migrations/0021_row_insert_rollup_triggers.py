"""PostgreSQL: the ledger's and the referrals' INSERT rollup triggers as row-level ones (issue 20:
the events path's cost). Each event's statement inserts one entry or one referral, or none; the
statement-level triggers ran for every such statement, each with a transition table and two
GROUP BYs (commissions/ledgerdays.py and commissions/referraldays.py say what replaced them)."""

from django.db import migrations

from commissions import ledgerdays, referraldays


def forward(apps, schema_editor):
    ledgerdays.use_row_insert_trigger(schema_editor)
    referraldays.use_row_insert_trigger(schema_editor)


def backward(apps, schema_editor):
    ledgerdays.use_statement_insert_trigger(schema_editor)
    referraldays.use_statement_insert_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0020_drop_redundant_indexes"),
    ]

    operations = [migrations.RunPython(forward, backward)]
