"""Per-partner commission rates, and the rate each ledger entry used.

Entries made before this migration were computed at the program's rate (there was no other): the
commission entries get ``COMMISSION_RATE`` as configured when the migration runs (0 for a
self-referral, which earned nothing), and each reversal its payment's commission's rate. The
constraint that requires the rate follows in 0008, once these updates are committed."""

import django.core.validators
import django.db.models.deletion
from decimal import Decimal
from django.db import migrations, models


def backfill(apps, schema_editor):
    from django.conf import settings
    from django.db.models import OuterRef, Subquery

    Entry = apps.get_model("commissions", "CommissionEntry")
    Entry.objects.filter(kind="commission", referral__is_self_referral=False).update(rate=settings.COMMISSION_RATE)
    Entry.objects.filter(kind="commission", referral__is_self_referral=True).update(rate=Decimal("0"))
    of_payment = Entry.objects.filter(payment=OuterRef("payment"), kind="commission").values("rate")[:1]
    Entry.objects.filter(kind="reversal").update(rate=Subquery(of_payment))


class Migration(migrations.Migration):

    dependencies = [
        ('commissions', '0006_awaiting_click'),
        ('partners', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='PartnerRate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rate', models.DecimalField(decimal_places=4, help_text='A fraction of each payment: 0.25 is 25 %.', max_digits=5, validators=[django.core.validators.MinValueValidator(Decimal('0')), django.core.validators.MaxValueValidator(Decimal('1'))])),
                ('valid_from', models.DateTimeField(help_text='Payments made from this moment on earn at this rate.')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
            ],
            options={
                'ordering': ['partner', '-valid_from'],
            },
        ),
        migrations.AddField(
            model_name='commissionentry',
            name='rate',
            field=models.DecimalField(blank=True, decimal_places=4, max_digits=5, null=True),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddField(
            model_name='partnerrate',
            name='partner',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='rates', to='partners.partner'),
        ),
        migrations.AddConstraint(
            model_name='partnerrate',
            constraint=models.UniqueConstraint(fields=('partner', 'valid_from'), name='partner_rate_one_per_moment'),
        ),
        migrations.AddConstraint(
            model_name='partnerrate',
            constraint=models.CheckConstraint(condition=models.Q(('rate__gte', 0), ('rate__lte', 1)), name='partner_rate_0_to_1'),
        ),
    ]
