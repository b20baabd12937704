"""Crawler detection for the click redirect, from the maintained ``crawler-user-agents`` list.

The list holds ~1,500 patterns. Joined naively into one alternation, Python's ``re`` tries
each of them at every position of the user agent (~0.6 ms for a browser UA). Almost all
patterns are plain literals, so they are folded into a prefix trie (``Googlebot/``,
``Googlebot-Image``… share their prefix) and only the few real regexes stay as alternatives:
the same matches (checked against the list's own examples in the tests) at ~1/12 of the cost.
The regex is compiled once, at first use; answers for recently seen user agents are memoised,
since real traffic repeats a small set of browser strings.

Even so, that regex costs ~40 µs on a short Firefox user agent and ~160 µs on a current Chrome
one (Python's ``re`` tries the whole alternation at every position), paid by every user agent
not seen recently — on the click path, that is most first visits. ``CrawlerMatcher`` answers the
same question in a few µs without trying every pattern everywhere: each literal pattern is
filed under one of its three-character slices, so only patterns sharing a slice with the user
agent are tested (``in``, C speed); each of the few real regexes is tried only when a literal it
cannot match without (e.g. ``wget`` for ``[wW]get``) occurs in the lower-cased user agent. Both
filters only skip patterns that cannot match, so the answers are the regex's (the tests compare
them on the list's own examples and on browser strings).
"""

from __future__ import annotations

import re
from functools import cache, lru_cache

_META = set(".^$*+?{}[]|()")


def _as_literal(pattern: str) -> str | None:
    """The literal text a pattern matches, or None when it uses regex syntax."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            # ``\/`` or ``\.`` are escaped punctuation; ``\d``, ``\s``… are classes.
            if i + 1 < len(pattern) and not pattern[i + 1].isalnum():
                out.append(pattern[i + 1])
                i += 2
                continue
            return None
        if ch in _META:
            return None
        out.append(ch)
        i += 1
    return "".join(out)


def _trie_regex(words: list[str]) -> str:
    """A regex matching any of ``words`` anywhere, written as a trie of their prefixes."""
    trie: dict = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def build(node: dict) -> str:
        if "" in node:
            # A whole word ends here; for a search, longer words sharing it add nothing.
            return ""
        singles: list[str] = []
        branches: list[str] = []
        for ch in sorted(node):
            rest = build(node[ch])
            if rest:
                branches.append(re.escape(ch) + rest)
            else:
                singles.append(re.escape(ch))
        if singles:
            branches.append(singles[0] if len(singles) == 1 else "[" + "".join(singles) + "]")
        return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"

    return build(trie) if words else ""


def crawler_patterns() -> list[str]:
    from crawleruseragents import CRAWLER_USER_AGENTS_DATA

    return [item["pattern"] for item in CRAWLER_USER_AGENTS_DATA]


@cache
def crawler_regex() -> re.Pattern[str]:
    """One compiled regex matching every pattern of the list (case-sensitive, as the list is
    written)."""
    literals: list[str] = []
    others: list[str] = []
    for pattern in crawler_patterns():
        literal = _as_literal(pattern)
        if literal:
            literals.append(literal)
        else:
            others.append(f"(?:{pattern})")
    parts = ([f"(?:{_trie_regex(literals)})"] if literals else []) + others
    return re.compile("|".join(parts))


_GRAM = 3
# User agents are cut to 1,024 characters before the check; longer ones still work, slower.
_SLICES = tuple(slice(i, i + _GRAM) for i in range(1024))
# Slices common in browser user agents: a pattern is filed under one of its slices absent
# from these when it has one, so a browser string meets as few candidate patterns as possible.
_BROWSER_SAMPLES = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
    "Safari/537.36 Edg/126.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 "
    "Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) (X11; Linux x86_64; rv:127.0) Gecko/20100101 "
    "Firefox/127.0 (Linux; Android 14; Pixel 8; SM-S918B) OPR/110.0.0.0 YaBrowser/24.4 SamsungBrowser/25.0",
)


def _grams(text: str) -> set[str]:
    """Every three-character slice of ``text``."""
    count = len(text) - _GRAM + 1
    if count <= 0:
        return set()
    if count <= len(_SLICES):
        return set(map(text.__getitem__, _SLICES[:count]))
    return {text[i : i + _GRAM] for i in range(count)}


def _required_literals(pattern: str) -> list[str] | None:
    """Lower-cased literals (three characters or more) of which a match of ``pattern`` must
    contain at least one, or None when none can be told (the pattern is then always tried)."""
    try:
        from re import _constants as c
        from re import _parser
    except ImportError:  # a future Python without these internals: no prefilter, still exact
        return None

    def longest_run(items) -> str | None:
        runs: list[str] = []
        current: list[str] = []
        for op, arg in items:
            char = None
            if op is c.LITERAL:
                char = chr(arg).lower()
            elif op is c.IN and arg and all(o is c.LITERAL for o, _ in arg):
                # [wW]: one letter in either case.
                lowered = {chr(a).lower() for _, a in arg}
                if len(lowered) == 1:
                    char = lowered.pop()
            if char is None:
                runs.append("".join(current))
                current = []
            else:
                current.append(char)
        runs.append("".join(current))
        best = max(runs, key=len)
        return best if len(best) >= _GRAM else None

    try:
        items = list(_parser.parse(pattern))
    except (re.error, TypeError, ValueError):
        return None
    if len(items) == 1 and items[0][0] is c.BRANCH:
        alternatives = [longest_run(list(alternative)) for alternative in items[0][1][1]]
        return None if None in alternatives else alternatives
    run = longest_run(items)
    return None if run is None else [run]


class CrawlerMatcher:
    """``search(user_agent)`` is True exactly when ``crawler_regex().search(user_agent)`` finds
    a match (see the module docstring for how it avoids trying every pattern).

    Every pattern is filed under a lower-cased three-character slice that any matching user
    agent contains (lower-cased): a literal under one of its own slices, a regex under one of
    its required literals' slices. A user agent is checked against the patterns filed under
    its own slices only."""

    def __init__(self, patterns: list[str]) -> None:
        browser_grams: set[str] = set()
        for sample in _BROWSER_SAMPLES:
            browser_grams |= _grams(sample.lower())
        filed: list[tuple[set[str], str | re.Pattern[str]]] = []
        self._always: list[str | re.Pattern[str]] = []
        for pattern in patterns:
            literal = _as_literal(pattern)
            if literal:
                grams = _grams(literal.lower())
                if grams:
                    filed.append((grams, literal))
                else:
                    self._always.append(literal)
                continue
            compiled = re.compile(pattern)
            needles = _required_literals(pattern)
            if needles is None:
                self._always.append(compiled)
            else:
                # One slice per required literal: any match contains one of them.
                for needle in needles:
                    filed.append((_grams(needle), compiled))
        counts: dict[str, int] = {}
        for grams, _ in filed:
            for gram in grams:
                counts[gram] = counts.get(gram, 0) + 1
        self._index: dict[str, list[str | re.Pattern[str]]] = {}
        for grams, check in filed:
            # Prefer a slice browsers do not contain, then the one fewest patterns share.
            gram = min(sorted(grams), key=lambda g: (g in browser_grams, counts[g]))
            bucket = self._index.setdefault(gram, [])
            if check not in bucket:
                bucket.append(check)
        self._keys = frozenset(self._index)

    @staticmethod
    def _check(check: str | re.Pattern[str], user_agent: str) -> bool:
        if isinstance(check, str):
            return check in user_agent
        return check.search(user_agent) is not None

    def search(self, user_agent: str) -> bool:
        for gram in self._keys.intersection(_grams(user_agent.lower())):
            for check in self._index[gram]:
                if self._check(check, user_agent):
                    return True
        return any(self._check(check, user_agent) for check in self._always)


@cache
def crawler_matcher() -> CrawlerMatcher:
    return CrawlerMatcher(crawler_patterns())


@lru_cache(maxsize=4096)
def is_bot(user_agent: str) -> bool:
    """A crawler, or no user agent at all (browsers always send one)."""
    if not user_agent.strip():
        return True
    return crawler_matcher().search(user_agent)
