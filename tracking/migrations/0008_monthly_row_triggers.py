from django.db import migrations

from tracking import monthly


def forward(apps, schema_editor):
    # PostgreSQL: LinkMonthlyStats kept by row-level INSERT and UPDATE triggers (tracking/monthly.py).
    monthly.use_row_triggers(schema_editor)


def backward(apps, schema_editor):
    monthly.use_statement_triggers(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("tracking", "0007_partner_dimension_rollups"),
    ]

    operations = [migrations.RunPython(forward, backward)]
