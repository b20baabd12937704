"""The referrals page's link filter, written in one pass, is the markup Django's widget writes."""

from __future__ import annotations

import re

import pytest

from commissions.forms import ReferralFilterForm
from tests.factories import LinkFactory

pytestmark = pytest.mark.django_db


def _squeezed(html: str) -> str:
    return re.sub(r">\s+<", "><", str(html)).strip()


@pytest.mark.parametrize("selected", [None, 0, 2])
def test_the_link_select_is_the_widgets_markup(partner, selected):
    links = [LinkFactory(partner=partner, description=f"Campaign <{n}> & co") for n in range(3)]
    LinkFactory()  # another partner's link is not offered
    data = {} if selected is None else {"link": str(links[selected].pk)}
    form = ReferralFilterForm(data, partner=partner)
    assert _squeezed(form.link_select()) == _squeezed(form["link"])
