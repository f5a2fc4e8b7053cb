"""Speech stage, faithfulness check: did the voice say the text it was given?

Takes the requested text and the transcript a speech backend reports; gives the word error rate
between them after normalizing both (case, punctuation, digits spelled out as English words).
"""

from __future__ import annotations

import re
import unicodedata

_ONES = (  # noqa: SIM905  (one string reads better than twenty quoted words)
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

# Digits with an optional decimal part or ordinal suffix. Thousands separators are removed first.
_NUMBER = re.compile(r"(\d+)(?:\.(\d+)|(st|nd|rd|th)\b)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
# Apostrophes join a word ("don't" ~ "dont"); any other non-word character separates words.
_APOSTROPHES = re.compile(r"['’ʼ`´]")
_WORD = re.compile(r"[^\W_]+")


def _spell(n: int) -> str:
    """A non-negative integer in English words, without "and": 1234 -> one thousand two hundred
    thirty four. Very long digit strings (phone numbers, ids) are read digit by digit."""
    if n >= 10**15:
        return " ".join(_ONES[int(d)] for d in str(n))
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {_spell(rest)}" if rest else "")
    for value, name in _SCALES:
        if n >= value:
            high, rest = divmod(n, value)
            return f"{_spell(high)} {name}" + (f" {_spell(rest)}" if rest else "")
    raise AssertionError("unreachable")  # pragma: no cover


def _ordinal(words: str) -> str:
    head, _, last = words.rpartition(" ")
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return f"{head} {last}" if head else last


def _number_words(match: re.Match[str]) -> str:
    whole, decimals, suffix = match.groups()
    words = _spell(int(whole))
    if suffix:
        words = _ordinal(words)
    elif decimals:
        words += " point " + " ".join(_ONES[int(d)] for d in decimals)
    return f" {words} "


def normalize_words(text: str) -> list[str]:
    """`text` as a list of comparable words: case-folded, punctuation dropped, digits spelled out
    (so "25" and "twenty-five" compare equal), "%" as "percent" and "&" as "and"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("%", " percent ").replace("&", " and ")
    text = _THOUSANDS.sub("", text)
    text = _NUMBER.sub(_number_words, text)
    text = _APOSTROPHES.sub("", text)
    return _WORD.findall(text)


def edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists: substitutions + deletions + insertions."""
    if len(reference) < len(hypothesis):  # keep the rows as short as the shorter list
        reference, hypothesis = hypothesis, reference
    previous = list(range(len(hypothesis) + 1))
    for i, ref_word in enumerate(reference, start=1):
        current = [i]
        for j, hyp_word in enumerate(hypothesis, start=1):
            current.append(
                min(
                    previous[j] + 1,  # a reference word left out
                    current[j - 1] + 1,  # a word added
                    previous[j - 1] + (ref_word != hyp_word),  # a word said differently
                )
            )
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` (what was said) against `reference` (what was asked):
    edits / words in the reference, after `normalize_words`. 0 is verbatim; it can exceed 1 when
    words were added. An empty reference scores 0 against an empty hypothesis, else 1."""
    ref = normalize_words(reference)
    hyp = normalize_words(hypothesis)
    if not ref:
        return 0.0 if not hyp else 1.0
    return edit_distance(ref, hyp) / len(ref)
