"""config.reverse.url_with_id: a row's URL from a pattern reversed once, the same as reverse()."""

from __future__ import annotations

import pytest
from django.urls import reverse

from config.reverse import url_with_id


@pytest.mark.parametrize("name", ["commissions:referral_detail", "payouts:payout_statement", "tracking:link_sub_ids"])
def test_it_gives_what_reverse_gives_for_every_id(name):
    url = url_with_id(name)
    for pk in (1, 7, 98765, 987654321, 2**40):
        assert url(pk) == reverse(name, args=[pk])
