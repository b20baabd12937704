from django.db import migrations, models

from commissions import referralsubs


def install_triggers(apps, schema_editor):
    # The triggers that copy each referral's click's sub-IDs, and the copies of the referrals already there.
    referralsubs.install(schema_editor)


def uninstall_triggers(apps, schema_editor):
    referralsubs.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0017_referral_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="referral",
            name=name,
            field=models.CharField(blank=True, db_default="", default="", editable=False, max_length=100),
        )
        for name in referralsubs.SUBS
    ] + [migrations.RunPython(install_triggers, uninstall_triggers)]
