"""Word error rate between requested text and a speech transcript."""

from __future__ import annotations

import pytest

from vnarrate.narration.faithfulness import edit_distance, normalize_words, word_error_rate


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello, World!", ["hello", "world"]),
        ("It's 25 o'clock.", ["its", "twenty", "five", "oclock"]),
        ("twenty-five", ["twenty", "five"]),
        ("1,000,000 boats", ["one", "million", "boats"]),
        ("the 21st and 12th", ["the", "twenty", "first", "and", "twelfth"]),
        ("3.5% & more", ["three", "point", "five", "percent", "and", "more"]),
        ("101", ["one", "hundred", "one"]),
        ("Ça va — très BIEN…", ["ça", "va", "très", "bien"]),
        ("", []),
    ],
)
def test_normalize_words(text: str, words: list[str]) -> None:
    assert normalize_words(text) == words


def test_edit_distance_counts_substitutions_deletions_insertions() -> None:
    assert edit_distance([], []) == 0
    assert edit_distance(["a", "b", "c"], ["a", "b", "c"]) == 0
    assert edit_distance(["a", "b", "c"], ["a", "x", "c"]) == 1
    assert edit_distance(["a", "b", "c"], ["a", "c"]) == 1
    assert edit_distance(["a", "c"], ["a", "b", "c"]) == 1
    assert edit_distance(["a", "b"], []) == 2
    assert edit_distance(["k", "i", "t", "t", "e", "n"], list("sitting")) == 3


def test_word_error_rate() -> None:
    assert word_error_rate("He has 25 apples.", "he has twenty-five apples") == 0.0
    assert word_error_rate("The cat sat on the mat.", "The cat sat on a mat.") == pytest.approx(
        1 / 6
    )
    # Added words count: a chatty preamble can push the rate over 1.
    assert word_error_rate("Go.", "Sure, here you are: go.") == 4.0
    assert word_error_rate("", "") == 0.0
    assert word_error_rate("", "something") == 1.0
    assert word_error_rate("Something.", "") == 1.0
