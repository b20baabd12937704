"""Commission and reversal entries must record their rate (0007 filled in the older ones)."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("commissions", "0007_partner_rates_and_entry_rate")]

    operations = [
        migrations.AddConstraint(
            model_name="commissionentry",
            constraint=models.CheckConstraint(condition=models.Q(models.Q(("rate__gte", 0), ("rate__lte", 1)), models.Q(("rate__isnull", True), models.Q(("kind__in", ["commission", "reversal"]), _negated=True)), _connector="OR"), name="commission_entry_rate_recorded"),
        ),
    ]
