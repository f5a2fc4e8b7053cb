"""Input expansion and output naming: stdin lists, folders (flat, recursive, loops, hidden files),
de-duplication, deterministic collision handling, and names that cannot leave --out-dir."""

from __future__ import annotations

import io
import itertools
import os
import random
import unicodedata
from pathlib import Path

import pytest

from vnarrate.errors import InputError, OutputError
from vnarrate.runs.inputs import (
    STEM_MAX_BYTES,
    Input,
    assign_stems,
    expand_inputs,
    kind_of,
    output_path,
    output_stem,
    safe_name,
)


def touch(root: Path, *names: str) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def sources(inputs: list[Input]) -> list[str]:
    return [i.source for i in inputs]


def stems_of(*args: str, recursive: bool = False) -> dict[str, str]:
    return {i.source: s for i, s in assign_stems(expand_inputs(args, recursive=recursive)).items()}


# --- stdin --------------------------------------------------------------------------------------


def test_stdin_keeps_spaces_and_unicode_and_skips_blanks_and_comments(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "my clip.mp4", "café ☕ 日本.mov", " leading space.mp4", "b.mkv")
    listing = (
        "# from find\n"
        "my clip.mp4\n"
        "\n"
        "   \n"
        "café ☕ 日本.mov\r\n"  # a CRLF file from Windows
        " leading space.mp4\n"
        "  # indented comment\n"
        "b.mkv"  # no final newline
    )
    got = expand_inputs(["-"], recursive=False, stdin=io.StringIO(listing))
    assert sources(got) == ["my clip.mp4", "café ☕ 日本.mov", " leading space.mp4", "b.mkv"]
    assert all(i.path is not None and i.path.is_file() for i in got)


def test_stdin_nul_separated_allows_newlines_in_names(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "two\nlines.mp4", "#hash.mp4")
    got = expand_inputs(["-"], stdin=io.StringIO("two\nlines.mp4\0#hash.mp4\0"))
    assert sources(got) == ["two\nlines.mp4", "#hash.mp4"]


def test_stdin_is_read_once_and_mixes_with_args(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "a.mp4", "b.mp4", "dir/c.mp4")
    stdin = io.StringIO("b.mp4\ndir\n")
    got = expand_inputs(["a.mp4", "-", "-"], stdin=stdin)
    assert sources(got) == ["a.mp4", "b.mp4", os.path.join("dir", "c.mp4")]


def test_dash_without_stdin_and_empty_stdin_are_input_errors() -> None:
    with pytest.raises(InputError, match="stdin") as err:
        expand_inputs(["-"], stdin=None)
    assert err.value.exit_code == 4
    with pytest.raises(InputError, match="empty"):
        expand_inputs(["-"], stdin=io.StringIO("\n# nothing\n"))
    with pytest.raises(InputError, match="no input"):
        expand_inputs([], stdin=None)


# --- folders ------------------------------------------------------------------------------------


def test_folder_lists_top_level_videos_sorted_naturally(tmp_path: Path) -> None:
    touch(
        tmp_path,
        "clip10.mp4",
        "clip2.mp4",
        "Clip1.MOV",
        "clip.mp4",
        "anim.gif",
        "thumb.jpg",
        "notes.txt",
        ".hidden.mp4",
        ".clip.a1b2.part.mp4",  # an interrupted atomic write
        "sub/deep.mp4",
    )
    got = expand_inputs([str(tmp_path)])
    assert [Path(s).name for s in sources(got)] == [
        "anim.gif",  # GIFs are read as (short) videos
        "clip.mp4",
        "Clip1.MOV",
        "clip2.mp4",
        "clip10.mp4",
    ]
    assert {i.kind for i in got} == {"video"}
    assert all(Path(s).parent == tmp_path for s in sources(got))

    with_images = expand_inputs([str(tmp_path)], folder_kinds={"video", "image"})
    assert {Path(i.source).name: i.kind for i in with_images}["thumb.jpg"] == "image"


def test_folder_recursive_descends_but_skips_hidden_folders(tmp_path: Path) -> None:
    touch(tmp_path, "a.mp4", "sub/b.mp4", "sub/deeper/c.webm", ".git/d.mp4", "sub/.cache/e.mp4")
    flat = expand_inputs([str(tmp_path)])
    assert [Path(s).name for s in sources(flat)] == ["a.mp4"]
    deep = expand_inputs([str(tmp_path)], recursive=True)
    rel = [Path(s).relative_to(tmp_path).as_posix() for s in sources(deep)]
    assert rel == ["a.mp4", "sub/b.mp4", "sub/deeper/c.webm"]


def test_empty_folder_says_why_and_suggests_recursive(tmp_path: Path) -> None:
    touch(tmp_path, "only/in/sub.mp4", "readme.txt")
    with pytest.raises(InputError, match="--recursive") as err:
        expand_inputs([str(tmp_path)])
    assert err.value.exit_code == 4
    warnings: list[str] = []
    touch(tmp_path, "other/x.mp4")
    got = expand_inputs([str(tmp_path), str(tmp_path / "other")], warnings=warnings)
    assert len(got) == 1 and any("no video files" in w for w in warnings)


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_symlink_loops_are_skipped_not_followed_forever(tmp_path: Path) -> None:
    touch(tmp_path, "a/clip.mp4", "a/sub/deep.mp4", "other/o.mp4")
    (tmp_path / "a" / "sub" / "up").symlink_to(tmp_path / "a")  # loop to an ancestor
    (tmp_path / "a" / "self").symlink_to(".")  # loop to itself
    (tmp_path / "a" / "link-to-other").symlink_to(tmp_path / "other")  # not a loop: followed
    (tmp_path / "a" / "dangling.mp4").symlink_to(tmp_path / "gone.mp4")
    warnings: list[str] = []
    got = expand_inputs([str(tmp_path / "a")], recursive=True, warnings=warnings)
    rel = [Path(s).relative_to(tmp_path / "a").as_posix() for s in sources(got)]
    assert rel == ["clip.mp4", "link-to-other/o.mp4", "sub/deep.mp4"]
    assert sum("symbolic link loop" in w for w in warnings) == 2
    assert any("dangling.mp4" in w and "broken" in w for w in warnings)
    # The same folder reached twice (directly and through the link) is listed once.
    both = expand_inputs([str(tmp_path / "a"), str(tmp_path / "other")], recursive=True)
    assert len(both) == 3


# --- dedupe, kinds, missing paths ---------------------------------------------------------------


def test_duplicates_by_resolved_path_are_dropped_keeping_the_first(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "dir/clip.mp4", "dir/other.mp4")
    args = ["dir/clip.mp4", "./dir/clip.mp4", str(tmp_path / "dir" / "clip.mp4"), "dir", "dir/"]
    if os.name != "nt":
        (tmp_path / "alias.mp4").symlink_to(tmp_path / "dir" / "clip.mp4")
        os.link(tmp_path / "dir" / "other.mp4", tmp_path / "hard.mp4")
        args += ["alias.mp4", "hard.mp4"]
    got = expand_inputs(args)
    assert sources(got) == ["dir/clip.mp4", os.path.join("dir", "other.mp4")]


def test_urls_pass_through_and_dedupe_on_scheme_and_host_case() -> None:
    got = expand_inputs(
        [
            "https://Example.com/v/Clip.mp4?sig=1",
            "HTTPS://example.COM/v/Clip.mp4?sig=1",
            "http://h/x",
        ]
    )
    assert [(i.source, i.kind) for i in got] == [
        ("https://Example.com/v/Clip.mp4?sig=1", "url"),
        ("http://h/x", "url"),
    ]
    assert got[0].path is None and got[0].is_url


def test_missing_paths_and_odd_extensions_are_kept_for_the_run_to_report(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "recording.dat", "photo.PNG")
    got = expand_inputs(["no such file.mp4", "recording.dat", "photo.PNG"])
    assert [(i.source, i.kind) for i in got] == [
        ("no such file.mp4", "video"),
        ("recording.dat", "video"),  # named explicitly: the frames stage decides
        ("photo.PNG", "image"),
    ]
    assert kind_of("x.MKV") == "video" and kind_of("x.webp") == "image" and kind_of("x") is None


# --- naming -------------------------------------------------------------------------------------


def test_stems_are_the_input_names(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "clip.mp4", "My Holiday é.mov", "archive.tar.mkv")
    assert stems_of("clip.mp4", "My Holiday é.mov", "archive.tar.mkv") == {
        "clip.mp4": "clip",
        "My Holiday é.mov": "My Holiday é",
        "archive.tar.mkv": "archive.tar",
    }


@pytest.mark.skipif(os.name == "nt", reason="symlinks need privileges on Windows")
def test_a_symlink_is_named_as_given_not_after_its_target(tmp_path: Path) -> None:
    # The README's `script clip.mp4 && $EDITOR clip.script.json` must find clip.script.json.
    os.chdir(tmp_path)
    touch(tmp_path, "media/dialogue_bunny.mp4")
    (tmp_path / "clip.mp4").symlink_to(tmp_path / "media" / "dialogue_bunny.mp4")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mydog.mp4").symlink_to(tmp_path / "media" / "dialogue_bunny.mp4")
    assert stems_of("clip.mp4") == {"clip.mp4": "clip"}
    assert stems_of("in") == {os.path.join("in", "mydog.mp4"): "mydog"}


def test_collisions_are_resolved_by_parent_folder_whatever_the_order(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "a/clip.mp4", "b/clip.mp4", "c/unique.mp4")
    expected = {"a/clip.mp4": "a_clip", "b/clip.mp4": "b_clip", "c/unique.mp4": "unique"}
    for order in itertools.permutations(expected):
        assert stems_of(*order) == expected


def test_deeper_collisions_extensions_and_case(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(
        tmp_path, "x/a/clip.mp4", "y/a/clip.mp4", "z/v.mp4", "z/v.mov", "k/Take.mp4", "k/take.mp4"
    )
    got = stems_of("x/a/clip.mp4", "y/a/clip.mp4", "z/v.mp4", "z/v.mov", "k/Take.mp4", "k/take.mp4")
    assert got["x/a/clip.mp4"] == "x_a_clip" and got["y/a/clip.mp4"] == "y_a_clip"
    assert got["z/v.mp4"] == "v_mp4" and got["z/v.mov"] == "v_mov"
    # Differ only by case: a case-insensitive file system would merge them, so hash them apart.
    assert got["k/Take.mp4"].startswith("Take-") and got["k/take.mp4"].startswith("take-")
    assert got["k/Take.mp4"].casefold() != got["k/take.mp4"].casefold()
    # Same again on a second run (no randomness, no dependence on order).
    again = stems_of(
        "k/take.mp4", "z/v.mov", "k/Take.mp4", "y/a/clip.mp4", "z/v.mp4", "x/a/clip.mp4"
    )
    assert again == got


def test_a_derived_name_never_takes_another_inputs_own_name(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    touch(tmp_path, "a/clip.mp4", "b/clip.mp4", "a_clip.mp4")
    for order in itertools.permutations(["a/clip.mp4", "b/clip.mp4", "a_clip.mp4"]):
        got = stems_of(*order)
        assert got["a_clip.mp4"] == "a_clip"
        assert got["b/clip.mp4"] == "b_clip"
        assert got["a/clip.mp4"].startswith("clip-")  # hashed, deterministic
        assert got == stems_of("a/clip.mp4", "b/clip.mp4", "a_clip.mp4")


def test_many_random_names_all_get_unique_safe_stems(tmp_path: Path) -> None:
    rng = random.Random(7)
    alphabet = "aAbB._- é日/"
    inputs = []
    for _ in range(300):
        folder = "".join(rng.choice("ab") for _ in range(rng.randint(1, 2)))
        name = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 4))).replace("/", "")
        ext = rng.choice([".mp4", ".mov", ".MP4", ""])
        path = tmp_path / folder / f"{name}{ext}"
        inputs.append(Input(source=str(path), kind="video", identity=str(path)))
    stems = assign_stems(inputs)
    unique = set(inputs)
    assert len(stems) == len(unique)
    assert len({s.casefold() for s in stems.values()}) == len(unique)
    for stem in stems.values():
        assert safe_name(stem) == stem
        output_path(tmp_path / "out", stem, ".narration.mp3")
    shuffled = list(inputs)
    rng.shuffle(shuffled)
    assert assign_stems(shuffled) == stems
    first = inputs[0]
    assert output_stem(first, inputs) == stems[first]


def test_url_stems_come_from_the_last_path_segment() -> None:
    cases = {
        "https://cdn.example.com/videos/My%20Trip.mp4?sig=SECRET123": "My Trip",
        "https://example.com/": "example.com",
        "https://example.com/a/..%2F..%2Fetc%2Fpasswd": "passwd",
        "https://example.com/%2E%2E": "input",
        "http://h/x/%00%1b[31mred.mp4": "[31mred",
    }
    for url, stem in cases.items():
        (inp,) = expand_inputs([url])
        assert assign_stems([inp])[inp] == stem, url
        assert "SECRET" not in assign_stems([inp])[inp]


# --- escaping the output folder -----------------------------------------------------------------

EVIL = [
    "../../etc/passwd",
    "..",
    ".",
    "/etc/passwd",
    "C:\\Windows\\system32",
    "a/../../b",
    "..\\..\\x",
    ".bashrc",
    "-rf",
    "--help",
    "CON",
    "nul.txt",
    "bad\x00null",
    "line\nbreak\rcr\ttab",
    "\x1b[2Jclear",
    "invoice\u202egpj.exe",  # right-to-left override
    "zero\u200bwidth",
    " . . ",
    "",
    "x" * 1000,
    "日本語の長い名前" * 40,
    "e\u0301",  # decomposed é (macOS file names)
    'a:b*c?d"e<f>g|h',
]


@pytest.mark.parametrize("evil", EVIL)
def test_safe_name_is_one_harmless_component(evil: str) -> None:
    name = safe_name(evil)
    assert name and name not in (".", "..")
    assert not name.startswith((".", "-", " "))
    assert not any(ch in name for ch in '/\\:*?"<>|')
    assert all(unicodedata.category(ch)[0] != "C" for ch in name)
    assert len(name.encode("utf-8")) <= STEM_MAX_BYTES
    assert safe_name(name) == name  # idempotent
    assert unicodedata.is_normalized("NFC", name)


@pytest.mark.parametrize("evil", EVIL)
def test_stems_from_evil_input_names_stay_in_the_out_dir(tmp_path: Path, evil: str) -> None:
    out = tmp_path / "out"
    inp = Input(source=evil + ".mp4", kind="video", identity=str(tmp_path / "in" / (evil + ".mp4")))
    stem = assign_stems([inp])[inp]
    target = output_path(out, stem, ".vnarrate.json")
    assert target.parent == out
    assert os.path.realpath(target).startswith(os.path.realpath(out) + os.sep)


@pytest.mark.parametrize(
    ("stem", "suffix"),
    [
        ("../escape", ".json"),
        ("..", ".json"),
        ("", ".json"),
        (".hidden", ".json"),
        ("a/b", ".json"),
        ("/etc/passwd", ".json"),
        ("ok", "/../../x.json"),
        ("ok", ".json/.."),
        ("ok", "json"),
        ("ok", ".."),
        ("x" * 300, ".json"),
        ("bad\nname", ".json"),
    ],
)
def test_output_path_refuses_unsafe_names(tmp_path: Path, stem: str, suffix: str) -> None:
    with pytest.raises(OutputError) as err:
        output_path(tmp_path, stem, suffix)
    assert err.value.exit_code == 6


def test_output_path_inside_the_out_dir_or_cwd(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    assert output_path(None, "clip", ".narration.mp3") == Path("clip.narration.mp3")
    assert output_path(Path("out"), "a_clip", ".script.json") == Path("out/a_clip.script.json")
    if os.name != "nt":
        (tmp_path / "real").mkdir()
        (tmp_path / "linked").symlink_to(tmp_path / "real")
        assert output_path(tmp_path / "linked", "clip", ".json") == tmp_path / "linked/clip.json"


def test_unreadable_subfolder_is_reported_and_the_rest_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    touch(tmp_path, "ok/a.mp4", "locked/b.mp4")
    real_scandir = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:
        if Path(path).name == "locked":  # what chmod 000 does for a non-root user
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    warnings: list[str] = []
    got = expand_inputs([str(tmp_path)], recursive=True, warnings=warnings)
    assert [Path(s).name for s in sources(got)] == ["a.mp4"]
    assert warnings == [f"{tmp_path / 'locked'}: cannot read the folder (Permission denied)"]
