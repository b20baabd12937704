import django.db.models.deletion
from django.db import migrations, models

from commissions import referraldays


def install_triggers(apps, schema_editor):
    # PostgreSQL: the triggers that keep ReferralCount, and the counts of the referrals already there.
    referraldays.install_counts(schema_editor)


def uninstall_triggers(apps, schema_editor):
    referraldays.uninstall_counts(schema_editor)


class Migration(migrations.Migration):
    dependencies = [
        ("commissions", "0016_referral_days_row_update"),
        ("partners", "0005_partner_notification_choices"),
    ]

    operations = [
        migrations.CreateModel(
            name="ReferralCount",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("status", models.CharField(max_length=10)),
                ("referrals", models.IntegerField(default=0)),
                (
                    "partner",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="partners.partner",
                    ),
                ),
            ],
            options={
                "indexes": [models.Index(fields=["partner", "status"], name="referral_count_partner_status")],
            },
        ),
        migrations.RunPython(install_triggers, uninstall_triggers),
    ]
