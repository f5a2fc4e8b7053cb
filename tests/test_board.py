"""The live board: at 80 and 60 columns the name, the stage, the bar, the counts and the elapsed
time stay whole and only the status gives way; a new stage replaces the old status; messages
become short stages, not the --verbose reasoning."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from vnarrate.runs.board import FRAMES, BoardView, stage_of

LONG = "/far/away/a_folder_with_a_rather_long_name/the_clip_with_a_long_name_2024.mp4"
SPEECH = (
    "speech via auto: compatible server, so its /audio/speech endpoint speaks (no Realtime "
    "API there), 3 segments, --jobs 2"
)
ODD = "hearing what the crowd in the background says, slowly and with great care: detail"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def render(view: BoardView, width: int) -> list[str]:
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(view)
    return console.export_text().splitlines()


def board(total: int = 2) -> tuple[BoardView, Clock]:
    clock = Clock()
    view = BoardView(total, clock=clock)
    view.add(LONG)
    view.add("b.mp4")
    view.count(LONG, 4, 13)
    view.say("b.mp4", SPEECH)
    view.remove("done.mp4")  # another input finished: the overall count moves
    clock.now += 75
    return view, clock


@pytest.mark.parametrize("width", [80, 60])
def test_every_column_but_the_status_survives_a_narrow_terminal(width: int) -> None:
    view, _ = board()
    view.say("b.mp4", ODD)  # a status far longer than the line
    overall, first, second = render(view, width)
    assert all(len(line) <= width for line in (overall, first, second))
    assert "inputs" in overall and "1/2" in overall and overall.endswith("1:15")
    assert "the_clip_with_a_long_name_2024.mp4"[-8:] in first and "…" in first
    assert "reading frames" in first and "4/13" in first and "━" in first
    assert first.endswith("1:15")
    assert second.startswith("⠋ b.mp4") and "speaking" in second and "1:15" in second
    assert " hear" in second and second.endswith("…")  # cut, not dropped
    assert "slowly and with great care" not in second


def test_the_overall_line_keeps_its_bar_and_count() -> None:
    view, _ = board()
    overall = render(view, 80)[0]
    assert "1/2" in overall and "━" in overall and "1:15" in overall


def test_a_very_narrow_terminal_keeps_name_stage_count_and_time() -> None:
    view, _ = board()
    lines = render(view, 40)
    assert all(len(line) <= 40 for line in lines)
    assert "reading frames" in lines[1] and "4/13" in lines[1] and lines[1].endswith("1:15")
    assert "speaking" in lines[2] and lines[2].endswith("1:15")


def test_a_new_stage_replaces_the_status_and_the_counts() -> None:
    view, _ = board()
    view.say(LONG, "transcribing 2 stretch(es) of speech with gpt-4o-transcribe")
    line = render(view, 100)[1]
    assert "transcribing" in line and "2 stretches of speech" in line
    assert "4/13" not in line and "reading frames" not in line
    view.say(LONG, "writing a documentary script (1/2) with gpt-5.4-mini")
    line = render(view, 100)[1]
    assert "writing script" in line and "part 1/2" in line
    assert "transcribing" not in line and "stretches" not in line
    view.count(LONG, 13, 13)  # late frame counts are not the script's
    assert "13/13" not in render(view, 100)[1]


def test_messages_become_short_stages() -> None:
    assert stage_of(SPEECH[len("") :]) == ("speaking", "3 lines")
    assert stage_of("transcribing 1 stretch(es) of speech with m") == (
        "transcribing",
        "1 stretch of speech",
    )
    assert stage_of("3 line(s) over their word budget; asking to shorten them") == (
        "shortening",
        "3 lines",
    )
    assert stage_of("muxing into /tmp/out/clip.narrated.mp4") == (
        "muxing",
        "into clip.narrated.mp4",
    )
    assert stage_of("12 frames from 30.0 s (1280x720), asking gpt-5.4-mini") == (
        "describing",
        "12 frames with gpt-5.4-mini",
    )
    # Unknown: the stage stays, the status is what it says before its reasons.
    assert stage_of("something new: because of this and that") == ("", "something new")


def test_one_input_is_one_line() -> None:
    clock = Clock()
    view = BoardView(1, clock=clock)
    view.add("clip.mp4")
    view.count("clip.mp4", 3, 10)
    (line,) = render(view, 80)
    assert line.startswith("⠋ clip.mp4") and FRAMES in line and "3/10" in line


def test_nothing_in_flight_draws_the_overall_line_only() -> None:
    view = BoardView(3, clock=Clock())
    (line,) = render(view, 80)
    assert "inputs" in line and "0/3" in line
    assert not view.say("gone.mp4", SPEECH)  # an input not in flight is not shown
