"""The partner's payouts page: the withdrawal button, the history and its CSV export."""

from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_GET, require_POST

from commissions.display import format_money
from commissions.forms import DateRangeForm
from commissions.lifecycle import STATEMENT_CSV_HEADER, Statement, payout_statement, statement_csv_rows
from config.exports import bad_date_range, csv_response
from config.paging import SeekPaginator
from partners.decorators import partner_required
from partners.verification import UNCONFIRMED_REASON, email_confirmed
from payouts.models import Payout
from payouts.selectors import CSV_HEADER, partner_note, payout_csv_rows, payout_list, payout_page_withdrawal
from payouts.services import PayoutError, payout_request

PAGE_SIZE = 20


class PayoutFilterForm(DateRangeForm):
    """The panel's date filter (far dates are a form error, issue 17)."""


def _range(request: HttpRequest) -> tuple[PayoutFilterForm, date | None, date | None]:
    form = PayoutFilterForm(request.GET or None)
    if form.is_bound and form.is_valid():
        return form, form.cleaned_data.get("start"), form.cleaned_data.get("end")
    return form, None, None


@partner_required
@require_GET
def payout_list_view(request: HttpRequest) -> HttpResponse:
    partner = request.partner
    form, start, end = _range(request)
    page = SeekPaginator(payout_list(partner=partner, start=start, end=end), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    rows = [(payout, partner_note(payout)) for payout in page.object_list]
    filters = {k: v for k, v in (("start", start), ("end", end)) if v}
    return render(
        request,
        "payouts/payout_list.html",
        {
            "withdrawal": payout_page_withdrawal(partner=partner),
            "form": form,
            "page_obj": page,
            "rows": rows,
            "query_string": urlencode(filters),
        },
    )


@partner_required
@require_GET
def payout_export_view(request: HttpRequest) -> HttpResponse:
    form, start, end = _range(request)
    if form.is_bound and not form.is_valid():
        return bad_date_range(form)
    return csv_response("payouts.csv", CSV_HEADER, payout_csv_rows(partner=request.partner, start=start, end=end))


@partner_required
@require_POST
def payout_request_view(request: HttpRequest) -> HttpResponse:
    try:
        # A confirmed email before the first withdrawal (issue 17): the form says why and offers
        # the link again (templates/payouts/_withdraw.html).
        if not email_confirmed(request.user):
            raise PayoutError(UNCONFIRMED_REASON.format(email=request.user.email))
        payout = payout_request(partner=request.partner)
    except PayoutError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Withdrawal of {format_money(payout.amount, currency=payout.currency)} requested. It will be sent to "
            f"{payout.paypal_email} once it is approved.",
        )
    target = request.POST.get("next", "")
    # A local path only, and redirected to as a URL: shortcuts.redirect() would try to reverse
    # any other string as a view name (NoReverseMatch → 500 for a tampered "next").
    if target.startswith("/") and url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        return HttpResponseRedirect(target)
    return redirect("payouts:payout_list")


def _statement(request: HttpRequest, payout_id: int) -> Statement:
    try:
        return payout_statement(partner=request.partner, payout_id=payout_id)
    except Payout.DoesNotExist:
        raise Http404("No such payout.") from None


@partner_required
@require_GET
def payout_statement_view(request: HttpRequest, payout_id: int) -> HttpResponse:
    """The commissions a payout covers (oldest first, to the cent), and the CSV of it."""
    statement = _statement(request, payout_id)
    return render(request, "payouts/payout_statement.html", {"statement": statement, "payout": statement.payout})


@partner_required
@require_GET
def payout_statement_export_view(request: HttpRequest, payout_id: int) -> HttpResponse:
    statement = _statement(request, payout_id)
    return csv_response(f"payout-{payout_id}-statement.csv", STATEMENT_CSV_HEADER, statement_csv_rows(statement))
