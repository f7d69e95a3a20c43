"""Confirmation of payee: does the name a payer expects match the account's title?

Modelled on the UK's Confirmation of Payee: ``match`` when the names are the same after
normalising (case, spacing, punctuation, accents); ``close_match`` when they are nearly
the same (the same words in another order; one name inside the other sharing at least two
words, as "Bilal Ahmed" in "MUHAMMAD BILAL AHMED"; or words a single typo apart), and the
payer is then shown the title masked, enough to recognise it, not to harvest it;
``no_match`` otherwise. A misdirected payment is the fraud partners fear most, so a
close match is never reported as a match.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

# Words that name no one: titles and honorifics common on Pakistani account titles.
_HONORIFICS = frozenset({"mr", "mrs", "ms", "miss", "dr", "syed", "syeda", "hafiz", "haji"})


MAX_WORDS = 6


class Verdict(StrEnum):
    MATCH = "match"
    CLOSE_MATCH = "close_match"
    NO_MATCH = "no_match"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class PayeeAnswer:
    verdict: Verdict
    # Only for a close match: the title, masked (the first two letters of each word).
    masked_title: str | None = None


def words(name: str) -> list[str]:
    """Lower-case words without accents or punctuation, honorifics dropped."""
    decomposed = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(
        ch if ch.isalnum() else " " for ch in decomposed if not unicodedata.combining(ch)
    )
    return [w for w in plain.split() if w not in _HONORIFICS]


def _one_typo_apart(a: str, b: str) -> bool:
    """One typo apart (a letter wrong, missing, extra, or two neighbours swapped), for
    words long enough to carry it."""
    if a == b:
        return True
    if min(len(a), len(b)) < 4 or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        differ = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        swapped = (
            len(differ) == 2
            and differ[1] == differ[0] + 1
            and a[differ[0]] == b[differ[1]]
            and a[differ[1]] == b[differ[0]]
        )
        return len(differ) == 1 or swapped  # one letter wrong, or two swapped
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def mask(title: str) -> str:
    return " ".join(w[:2] + "*" * max(len(w) - 2, 1) for w in title.split())


def compare(expected: str, title: str) -> PayeeAnswer:
    given, held = words(expected), words(title)
    # A name is a few words: a list of every common name would otherwise close-match
    # anyone, and the masked title would hand it over.
    if not given or not held or len(given) > MAX_WORDS:
        return PayeeAnswer(Verdict.NO_MATCH)
    if given == held:
        return PayeeAnswer(Verdict.MATCH)
    close = (
        sorted(given) == sorted(held)
        # The payer's name inside the title (never the reverse: extra words of the
        # payer's own must not find a title).
        or (len(set(given)) >= 2 and set(given) <= set(held))
        or (
            len(given) == len(held)
            and all(_one_typo_apart(a, b) for a, b in zip(given, held, strict=True))
        )
    )
    if close:
        return PayeeAnswer(Verdict.CLOSE_MATCH, mask(" ".join(title.split())))
    return PayeeAnswer(Verdict.NO_MATCH)
