from __future__ import annotations

import random
import re

import pytest
from crawleruseragents import CRAWLER_USER_AGENTS_DATA

from tracking.bots import crawler_matcher, crawler_regex, is_bot

BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80",
]


def test_every_example_in_the_crawler_list_is_a_bot():
    examples = [instance for item in CRAWLER_USER_AGENTS_DATA for instance in item["instances"]]
    assert len(examples) > 1000
    missed = [ua for ua in examples if not is_bot(ua)]
    assert missed == []


def test_the_compiled_regex_agrees_with_the_lists_own_patterns():
    naive = re.compile("|".join(f"(?:{item['pattern']})" for item in CRAWLER_USER_AGENTS_DATA))
    samples = [instance for item in CRAWLER_USER_AGENTS_DATA for instance in item["instances"]] + BROWSERS
    samples += [ua[:n] for ua in BROWSERS for n in (10, 40, 80)]
    assert [bool(crawler_regex().search(s)) for s in samples] == [bool(naive.search(s)) for s in samples]


@pytest.mark.parametrize("user_agent", BROWSERS)
def test_real_browsers_are_not_bots(user_agent):
    assert is_bot(user_agent) is False


@pytest.mark.parametrize("user_agent", ["", " ", "\t"])
def test_an_empty_user_agent_is_a_bot(user_agent):
    assert is_bot(user_agent) is True


def test_the_regex_is_compiled_once():
    assert crawler_regex() is crawler_regex()


def test_the_fast_matcher_agrees_with_the_lists_own_patterns_on_examples_browsers_and_mutations():
    naive = re.compile("|".join(f"(?:{item['pattern']})" for item in CRAWLER_USER_AGENTS_DATA))
    samples = [instance for item in CRAWLER_USER_AGENTS_DATA for instance in item["instances"]] + BROWSERS
    rng = random.Random(9)
    mutated = []
    for ua in samples:
        cut = rng.randrange(len(ua) + 1)
        mutated += [ua.lower(), ua.upper(), ua.swapcase(), ua[:cut] + rng.choice(["", "x", " ", "/"]) + ua[cut + 1 :]]
    samples += mutated + [ua[:n] for ua in BROWSERS for n in (2, 3, 10, 40, 80)]
    matcher = crawler_matcher()
    assert [matcher.search(s) for s in samples] == [bool(naive.search(s)) for s in samples]
