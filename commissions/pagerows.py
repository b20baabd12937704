"""The Referrals and Commissions tables' rows, each a ``<tr>`` built once in Python.

Django's template engine resolved each row's few dozen variables, filters, ``{% url %}`` tags and
the state cell's include at ~0.3 ms a row: 7-10 ms of a 25-row page, more than its queries. Plain
strings per row still cost the engine some 30 lookups a row (4 ms of a Referrals page on the
benchmark's VM); ``format_html`` writes the same markup, every value escaped, in a tenth of that.
The page's templates keep everything around the rows (head, filters, totals, pagination).
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from commissions import display
from commissions.lifecycle import PAID, PENDING, REVERSED, STATE_LABELS, EntryState
from commissions.models import CommissionEntry, Referral
from commissions.selectors import (
    COMMISSION_TYPE_LABELS,
    STATUS_LABELS,
    commission_labels,
    link_name,
    referral_labels,
)
from config import rows as table_rows
from config.reverse import url_with_id


def _iso(moment) -> str:
    """What ``{{ moment|date:'c' }}`` writes: ISO 8601 in the program's time zone."""
    return timezone.localtime(moment).isoformat() if moment is not None else ""


_SELF_REFERRAL = mark_safe(
    ' <span class="badge badge-self" title="Your own sign-up: recorded, earns no commission">Self-referral</span>'
)
_REFERRAL_ROW = (
    '<tr class="row-link" data-href="{url}">'
    '<td data-label="{l_referral}"><a href="{url}">#{pk}</a>{self_referral}</td>'
    '<td class="ref-customer" data-label="{l_customer}">{customer}</td>'
    '<td class="ref-link" data-label="{l_link}">{link}</td>'
    '<td data-label="{l_signed_up}"><time datetime="{signed_up_iso}">{signed_up}</time></td>'
    '<td data-label="{l_status}"><span class="badge badge-{status}">{status_label}</span></td>'
    '<td data-label="{l_plan}">{plan}</td>'
    '<td class="num" data-label="{l_paid}">{paid}</td>'
    '<td class="num{negative}" data-label="{l_commission}">{commission}</td>'
    "</tr>\n"
)


def referral_rows(referrals: list[Referral], *, list_query: str) -> list[SafeString]:
    """A ``<tr>`` per referral (the row opens its timeline, keeping the list's filters)."""
    detail = url_with_id("commissions:referral_detail")
    suffix = f"?{list_query}" if list_query else ""
    template = table_rows.labelled(_REFERRAL_ROW, referral_labels())
    rows = []
    for referral in referrals:
        status = referral.current_status
        plan = ""
        if referral.plan:
            plan = f"Plan {referral.plan} · {referral.seats} seat{'' if referral.seats == 1 else 's'}"
        rows.append(
            table_rows.row(
                template,
                url=f"{detail(referral.pk)}{suffix}",
                pk=referral.pk,
                self_referral=_SELF_REFERRAL if referral.is_self_referral else "",
                customer=display.mask_email(referral.email) or "—",
                link=link_name(referral.link.code, referral.link.description, referral.link.is_default),
                signed_up_iso=_iso(referral.signed_up_at),
                signed_up=display.format_day(referral.signed_up_at),
                status=status,
                status_label=STATUS_LABELS.get(status, status),
                plan=plan or "—",
                paid=display.format_money(referral.total_paid),
                commission=display.format_money(referral.total_commission),
                negative=" negative" if referral.total_commission < 0 else "",
            )
        )
    return rows


def _badge(state: str) -> str:
    return "paid" if state == PAID else "cancelled" if state == REVERSED else "pending"


def state_cell(entry: CommissionEntry, life: EntryState | None, *, statement_url) -> SafeString:
    """The state column: "Reversed" for a reversal or a void; a commission's parts (state, the
    amount when there are several, when a pending one becomes available, the payout)."""
    if life is None:
        return mark_safe("")
    if entry.kind != CommissionEntry.Kind.COMMISSION:
        return mark_safe('<span class="badge badge-cancelled state-reversed">Reversed</span>')
    several = len(life.parts) > 1
    cells = []
    for part in life.parts:
        amount = format_html(" {}", display.format_money(part.amount)) if several else ""
        available = ""
        if part.state == PENDING and life.available_from:
            available = format_html(" <small>available {}</small>", display.format_day(life.available_from))
        payout = ""
        if part.payout_id:
            payout = format_html(
                ' <small><a href="{}">payout #{}</a></small>', statement_url(part.payout_id), part.payout_id
            )
        cells.append(
            format_html(
                '<span class="state state-{}"><span class="badge badge-{}">{}</span>{}{}{}</span>',
                part.state,
                _badge(part.state),
                STATE_LABELS.get(part.state, part.state),
                amount,
                available,
                payout,
            )
        )
    return format_html_join(mark_safe("<br>"), "{}", ((cell,) for cell in cells))


_SELF_SIGN_UP = mark_safe(
    ' <span class="badge badge-self" title="Your own sign-up: earns no commission">Self-referral</span>'
)
_COMMISSION_ROW = (
    "<tr{row_class}>"
    '<td data-label="{l_date}"><time datetime="{iso}">{when}</time></td>'
    '<td data-label="{l_type}">{type}{self_referral}</td>'
    '<td data-label="{l_referral}"><a href="{referral_url}">#{referral_id}</a> {customer}</td>'
    '<td data-label="{l_plan}">Plan {plan}</td>'
    '<td class="num" data-label="{l_seats}">{seats}</td>'
    '<td class="num{amount_class}" data-label="{l_amount}">{sign}{amount}</td>'
    '<td class="num{commission_class}" data-label="{l_commission}">{commission}</td>'
    '<td class="state-cell" data-label="{l_state}">{state}</td>'
    "</tr>\n"
)


def commission_rows(entries: list[CommissionEntry], states: dict[int, EntryState]) -> list[SafeString]:
    """A ``<tr>`` per ledger entry: a reversal or a void shaded, its amount the refund's."""
    detail = url_with_id("commissions:referral_detail")
    statement = url_with_id("payouts:payout_statement")
    type_labels = COMMISSION_TYPE_LABELS
    template = table_rows.labelled(_COMMISSION_ROW, commission_labels())
    reversal_row, no_class, negative = mark_safe(' class="reversal-row"'), "", " negative"
    rows = []
    for entry in entries:
        kind = entry.kind
        if kind == CommissionEntry.Kind.REVERSAL:
            kind_html = format_html('<span class="badge badge-cancelled">{}</span>', type_labels["reversal"])
        elif kind == CommissionEntry.Kind.VOID:
            kind_html = format_html(
                '<span class="badge badge-cancelled">{}</span> <span class="void-reason">{}</span>',
                type_labels["void"],
                entry.void_record.reason,
            )
        else:
            kind_html = type_labels["commission"]
        reversal = kind == CommissionEntry.Kind.REVERSAL
        rows.append(
            table_rows.row(
                template,
                row_class=reversal_row if kind != CommissionEntry.Kind.COMMISSION else no_class,
                iso=_iso(entry.earned_at),
                when=display.format_date(entry.earned_at),
                type=kind_html,
                self_referral=_SELF_SIGN_UP if entry.referral.is_self_referral else "",
                referral_url=detail(entry.referral_id),
                referral_id=entry.referral_id,
                customer=display.mask_email(entry.referral.email),
                plan=entry.payment.plan,
                seats=entry.payment.seats,
                amount_class=negative if reversal else no_class,
                sign="-" if reversal else "",
                amount=display.format_money(entry.refund.amount if reversal else entry.payment.amount),
                commission_class=negative if entry.amount < 0 else no_class,
                commission=display.format_money(entry.amount),
                state=state_cell(entry, states.get(entry.pk), statement_url=statement),
            )
        )
    return rows
