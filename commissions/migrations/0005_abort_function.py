"""PostgreSQL: ``partner_panel_abort(reason)``, which raises — how the events' one-statement path
(commissions/fastpath.py) undoes itself when it lost a race it cannot settle: the statement
fails, PostgreSQL rolls all of it back, and the event takes the general path."""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION partner_panel_abort(reason text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING MESSAGE = 'partner_panel_abort: ' || reason, ERRCODE = 'P0001';
END
$$
"""


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS partner_panel_abort(text)")


class Migration(migrations.Migration):
    dependencies = [("commissions", "0004_partner_fk_indexes_covered")]

    operations = [migrations.RunPython(create, drop)]
