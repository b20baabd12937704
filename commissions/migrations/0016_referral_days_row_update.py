from django.db import migrations

from commissions import referraldays


def forward(apps, schema_editor):
    # PostgreSQL: ReferralDay's UPDATE trigger fires only when a counted column changes.
    referraldays.use_row_update_trigger(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0015_commission_referral_earned"),
    ]

    # Backwards: the row-level trigger keeps the counts exact as well; nothing to undo.
    operations = [migrations.RunPython(forward, migrations.RunPython.noop)]
