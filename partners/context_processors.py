from django.conf import settings
from django.http import HttpRequest
from django.urls import reverse

_NAV = (
    ("Dashboard", "partners:dashboard"),
    ("Resources", "tracking:resources"),
    ("Referrals", "commissions:referral_list"),
    ("Commissions", "commissions:commission_list"),
    ("Performance", "tracking:performance"),
    ("Payouts", "payouts:payout_list"),
    ("Settings", "partners:settings"),
)


def panel(request: HttpRequest) -> dict:
    context = {"merchant_name": settings.MERCHANT_NAME, "program_currency": settings.PROGRAM_CURRENCY}
    user = getattr(request, "user", None)
    # No panel navigation for a partner whose application is pending or declined.
    if user is not None and user.is_authenticated and hasattr(user, "partner") and user.partner.is_approved:
        nav = []
        for label, name in _NAV:
            url = reverse(name)
            nav.append({"label": label, "url": url, "active": request.path.startswith(url)})
        context["panel_nav"] = nav
    return context
