"""Input stage (before frames): what the user typed -> the list of inputs to run, and their names.

Takes command-line arguments (paths, folders, URLs, `-` for a list on stdin); gives a sorted,
de-duplicated list of Input, an output stem per input (collisions resolved deterministically),
and output paths that cannot leave the output folder whatever the input was called.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import stat
import sys
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Literal, TextIO
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel

from ..errors import InputError, OutputError

InputKind = Literal["video", "image", "url"]

# What a folder listing picks up. GIF counts as video: OpenCV and PyAV open it as one (with
# frame timestamps), so the existing pipeline handles it today; a still GIF is a 1-frame video.
VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv",
        ".ts", ".mts", ".m2ts", ".3gp", ".ogv", ".gif",
    }
)  # fmt: skip
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})

VIDEOS_ONLY: frozenset[InputKind] = frozenset({"video"})
STEM_MAX_BYTES = 120  # leaves room for suffixes and atomic-write temp names under 255 bytes
_NAME_MAX_BYTES = 200  # a whole output name (stem + suffix) longer than this is refused
_URL_RE = re.compile(r"^https?://", re.IGNORECASE)
_SUFFIX_RE = re.compile(r"^(\.[A-Za-z0-9_-]+)+$")
_UNSAFE_CHARS = re.compile(r'[/\\:*?"<>|]')
_WINDOWS_DEVICES = re.compile(r"^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$", re.IGNORECASE)


@dataclass(frozen=True)
class Input:
    """One thing to process. Equal (and hashed) by `identity`, so duplicates collapse."""

    source: str = field(compare=False)  # the path as typed or found (relative stays relative)
    kind: InputKind = field(compare=False)
    identity: str  # resolved absolute path, or the URL with scheme and host lowercased

    @property
    def path(self) -> Path | None:
        """The local path to open, or None for a URL."""
        return None if self.kind == "url" else Path(self.source)

    @property
    def is_url(self) -> bool:
        return self.kind == "url"

    def __str__(self) -> str:
        return self.source


def kind_of(name: str) -> InputKind | None:
    """video, image or None, from the file extension (case-insensitive)."""
    ext = os.path.splitext(name)[1].lower()
    if ext in VIDEO_EXTENSIONS:
        return "video"
    if ext in IMAGE_EXTENSIONS:
        return "image"
    return None


def stdin_text() -> TextIO:
    """stdin as text that keeps file names which are not valid UTF-8 (surrogateescape)."""
    buffer = getattr(sys.stdin, "buffer", None)
    if buffer is None:
        return sys.stdin
    return io.TextIOWrapper(buffer, encoding="utf-8", errors="surrogateescape")


# --- expansion ----------------------------------------------------------------------------------


def expand_inputs(
    args: Sequence[str],
    *,
    recursive: bool = False,
    stdin: TextIO | None = None,
    folder_kinds: Collection[InputKind] = VIDEOS_ONLY,
    warnings: list[str] | None = None,
) -> list[Input]:
    """Turn command-line arguments into the inputs to run, in a deterministic order.

    - `-` reads paths (or URLs, or folders) from `stdin`: one per line, or NUL-separated when
      the text holds a NUL (`find -print0`); blank lines and lines starting with `#` are
      skipped; everything else is kept exactly, spaces included.
    - A folder lists its files whose extension is of a kind in `folder_kinds` (videos only by
      default: thumbnails next to videos would otherwise become failing inputs), top level only
      unless `recursive`. Hidden files and folders (leading dot, which also covers our own
      atomic-write temp files) are skipped; symlinked folders are followed once, loops skipped.
      A folder's files are sorted by name (digits numerically), so runs are repeatable.
    - A file named explicitly is taken whatever its extension (the frames stage judges it); so
      is a path that does not exist: the run for that input then fails with an input error
      (exit 4) while the others proceed, as batch rules require.
    - http(s) URLs pass through as kind "url".
    - Arguments keep their order; a later duplicate of the same file (same resolved path or
      same inode, e.g. via a symlink or `./`) or URL is dropped.

    Things skipped for a reason the user may want to know (loops, unreadable folders, folders
    with nothing to run) are appended to `warnings` when given. Raises InputError when nothing
    at all is left to run, or when `-` is given but no stdin.
    """
    expansion = _Expansion(recursive, folder_kinds, [] if warnings is None else warnings)
    stdin_read = False
    for arg in args:
        if arg != "-":
            expansion.one(arg)
            continue
        if stdin is None:
            raise InputError("'-' reads input paths from stdin, but there is no stdin")
        if not stdin_read:
            stdin_read = True
            for item in _read_list(stdin):
                expansion.one(item)
    if not expansion.found:
        if not args:
            raise InputError("no input given", hint="pass video files, folders, or - for stdin")
        notes = expansion.notes
        raise InputError(
            "nothing to process: " + ("; ".join(notes) if notes else "the input list is empty")
        )
    return expansion.found


class _Expansion:
    """The inputs found so far, without duplicates (same resolved path, inode or URL)."""

    def __init__(self, recursive: bool, kinds: Collection[InputKind], notes: list[str]) -> None:
        self.recursive = recursive
        self.kinds = kinds
        self.notes = notes
        self.found: list[Input] = []
        self._seen: set[str] = set()
        self._inodes: set[tuple[int, int]] = set()

    def add(self, inp: Input) -> None:
        if inp.identity in self._seen:
            return
        if inp.kind != "url":
            ino = _inode(inp.identity)
            if ino is not None:
                if ino in self._inodes:  # hard link, or a case-insensitive file system
                    return
                self._inodes.add(ino)
        self._seen.add(inp.identity)
        self.found.append(inp)

    def one(self, arg: str) -> None:
        if _URL_RE.match(arg):
            self.add(Input(source=arg, kind="url", identity=_normalize_url(arg)))
            return
        path = Path(arg)
        if not path.is_dir():
            self.add(_file_input(arg))
            return
        listed = _list_folder(path, recursive=self.recursive, kinds=self.kinds, notes=self.notes)
        if not listed:
            hint = "" if self.recursive else " (subfolders are read with --recursive)"
            kinds = " or ".join(sorted(self.kinds))
            self.notes.append(f"{arg}: no {kinds} files found{hint}")
        for child in listed:
            self.add(_file_input(str(child)))


def _read_list(stdin: TextIO) -> list[str]:
    try:
        text = stdin.read()
    except UnicodeDecodeError as exc:
        raise InputError(f"the path list on stdin is not valid text: {exc.reason}") from None
    if "\0" in text:
        return [item for item in text.split("\0") if item.strip()]
    items = []
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        items.append(line)
    return items


def _file_input(source: str) -> Input:
    kind = kind_of(source) or "video"
    return Input(source=source, kind=kind, identity=os.path.realpath(source))


def _inode(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino) if st.st_ino else None


def _normalize_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.lower()
    return parts._replace(scheme=parts.scheme.lower(), netloc=netloc, fragment="").geturl()


_Chunks = tuple[tuple[int, str | int], ...]


def _natural_key(
    rel: tuple[str, ...],
) -> tuple[tuple[tuple[_Chunks, _Chunks], ...], tuple[str, ...]]:
    """clip, clip2, clip10: numbers compared as numbers, case-insensitive, name before extension;
    the exact names break ties so the order is total."""

    def chunks(text: str) -> _Chunks:
        out: list[tuple[int, str | int]] = []
        for piece in re.split(r"(\d+)", text):
            if piece.isdigit() and piece.isascii():
                out.append((0, int(piece)))
            elif piece:
                out.append((1, piece.casefold()))
        return tuple(out)

    parts = tuple((chunks(stem), chunks(ext)) for stem, ext in map(os.path.splitext, rel))
    return parts, rel


def _list_folder(
    root: Path, *, recursive: bool, kinds: Collection[InputKind], notes: list[str]
) -> list[Path]:
    """The runnable files under `root`, sorted; symlinked folders followed at most once."""
    files: list[tuple[tuple[str, ...], Path]] = []
    try:
        root_st = os.stat(root)
    except OSError as exc:
        notes.append(f"{root}: cannot read the folder ({exc.strerror or exc})")
        return []
    visited: set[tuple[int, int]] = {(root_st.st_dev, root_st.st_ino)}
    # Depth-first with an explicit stack (no recursion limit); entries sorted so that which of
    # two paths to the same folder gets walked is itself deterministic.
    stack: list[tuple[Path, tuple[str, ...], frozenset[tuple[int, int]]]] = [
        (root, (), frozenset(visited))
    ]
    while stack:
        folder, rel, ancestors = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: _natural_key((e.name,)))
        except OSError as exc:
            notes.append(f"{folder}: cannot read the folder ({exc.strerror or exc})")
            continue
        subfolders = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                st = entry.stat()  # follows symlinks
            except OSError:
                if entry.is_symlink() and kind_of(entry.name) in kinds:
                    notes.append(f"{entry.path}: broken symbolic link, skipped")
                continue
            if stat.S_ISDIR(st.st_mode):
                if not recursive:
                    continue
                ident = (st.st_dev, st.st_ino)
                if ident in ancestors:
                    notes.append(f"{entry.path}: symbolic link loop, skipped")
                    continue
                if ident in visited:
                    continue  # the same folder reached by another path: list it once
                visited.add(ident)
                subfolders.append((Path(entry.path), (*rel, entry.name), ancestors | {ident}))
            elif stat.S_ISREG(st.st_mode) and kind_of(entry.name) in kinds:
                files.append(((*rel, entry.name), Path(entry.path)))
        stack.extend(reversed(subfolders))
    files.sort(key=lambda item: _natural_key(item[0]))
    return [path for _, path in files]


# --- naming -------------------------------------------------------------------------------------


def safe_name(text: str, *, max_bytes: int = STEM_MAX_BYTES, fallback: str = "input") -> str:
    """`text` made into one harmless file-name component.

    No separators or characters Windows forbids, no control or bidi-override characters, no
    leading dot or dash (hidden files, or names a shell script would take for options), not `.`
    or `..`, not a Windows device name, at most `max_bytes` of UTF-8 (a long name is cut and
    given a short hash of the full name, so two long names stay distinct). Unicode letters and
    spaces are kept.
    """
    text = unicodedata.normalize("NFC", text)
    kept = []
    for ch in text:
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat in ("Zl", "Zp"):
            continue  # control, format (bidi overrides), surrogate, private, unassigned
        kept.append(" " if ch.isspace() else ch)
    name = _UNSAFE_CHARS.sub("_", "".join(kept))
    # One pass of each strip, in this order, makes the function idempotent (output_path relies
    # on safe_name(stem) == stem to recognise a safe stem).
    name = re.sub(r" {2,}", " ", name).lstrip(" .-").rstrip(" .")
    if not name:
        return fallback
    if _WINDOWS_DEVICES.match(name):
        name = f"_{name}"
    if len(name.encode("utf-8")) > max_bytes:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        cut = name.encode("utf-8")[: max_bytes - len(digest) - 1].decode("utf-8", "ignore")
        name = f"{cut.rstrip(' .')}-{digest}"
    return name


def _raw_parts(inp: Input) -> tuple[str, str, list[str]]:
    """(stem, extension, parent names nearest first) before sanitising."""
    if inp.kind == "url":
        parts = urlsplit(inp.identity)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        if not segments:  # https://example.com/ -> "example.com"
            return parts.hostname or "", "", []
        last = segments[-1]
        pure = PurePosixPath(last.replace("\\", "/").rsplit("/", 1)[-1] or "x")
        parents = [*reversed(segments[:-1]), parts.hostname or ""]
        return pure.stem, pure.suffix, [p for p in parents if p]
    # Named as the user named it: a symlink `clip.mp4` gives `clip.*`, not its target's name.
    path = Path(os.path.abspath(inp.source))
    parents = [p.name for p in path.parents if p.name]
    return path.stem, path.suffix, parents


def _fold(name: str) -> str:
    # Case-insensitive file systems (macOS, Windows) would merge names differing only by case.
    return unicodedata.normalize("NFC", name).casefold()


def _short_hash(inp: Input, length: int = 8) -> str:
    return hashlib.sha256(inp.identity.encode("utf-8", "surrogatepass")).hexdigest()[:length]


def assign_stems(inputs: Iterable[Input]) -> dict[Input, str]:
    """An output stem for every input: `clip` for `clip.mp4`, unique among these inputs.

    Inputs whose names collide (case-insensitively) are told apart by the first of: the parent
    folder (`a/clip.mp4` -> `a_clip`, `b/clip.mp4` -> `b_clip`), two or three parent folders,
    the extension (`clip_mp4`, `clip_mov`), parent and extension, and finally a short hash of
    the resolved path. The result depends only on the set of inputs, not on their order, and is
    the same on every run; every stem is a `safe_name`.
    """
    unique = list(dict.fromkeys(inputs))
    parts = {inp: _raw_parts(inp) for inp in unique}
    base = {inp: safe_name(parts[inp][0]) for inp in unique}

    def joined(*pieces: str) -> str:
        return safe_name("_".join(p for p in pieces if p))

    strategies: list[Callable[[Input], str]] = [
        lambda i: joined(*reversed(parts[i][2][:1]), base[i]),
        lambda i: joined(*reversed(parts[i][2][:2]), base[i]),
        lambda i: joined(*reversed(parts[i][2][:3]), base[i]),
        lambda i: joined(base[i], parts[i][1].lstrip(".")),
        lambda i: joined(*reversed(parts[i][2][:1]), base[i], parts[i][1].lstrip(".")),
    ]

    groups: dict[str, list[Input]] = {}
    for inp in unique:
        groups.setdefault(_fold(base[inp]), []).append(inp)
    stems: dict[Input, str] = {}
    for group in groups.values():
        if len(group) == 1:
            stems[group[0]] = base[group[0]]
            continue
        for strategy in strategies:
            names = {inp: strategy(inp) for inp in group}
            if len({_fold(n) for n in names.values()}) == len(group):
                break
        else:
            names = {inp: safe_name(f"{base[inp]}-{_short_hash(inp)}") for inp in group}
        stems.update(names)

    # A derived name may now equal another input's own name (`a_clip.mp4` beside `a/clip.mp4`):
    # an input keeping its own name wins, the others get a hash; longer hashes until unique.
    length = 8
    while True:
        by_fold: dict[str, list[Input]] = {}
        for inp, stem in stems.items():
            by_fold.setdefault(_fold(stem), []).append(inp)
        clashes = [g for g in by_fold.values() if len(g) > 1]
        if not clashes:
            break
        for group in clashes:
            own = [inp for inp in group if stems[inp] == base[inp]]
            keep = own[0] if len(own) == 1 else None
            for inp in group:
                if inp is not keep:
                    stems[inp] = safe_name(f"{base[inp]}-{_short_hash(inp, length)}")
        length += 4
    return {inp: stems[inp] for inp in unique}


def output_stem(inp: Input, all_inputs: Sequence[Input]) -> str:
    """The stem of `inp` among `all_inputs` (see assign_stems; call that once for a batch)."""
    return assign_stems([*all_inputs, inp])[inp]


def output_path(out_dir: Path | None, stem: str, suffix: str) -> Path:
    """`out_dir/stem+suffix`, refusing (OutputError, exit 6) anything that could land elsewhere.

    `stem` must already be a safe_name and `suffix` like ".json" or ".narration.mp3". The check
    is on the folder the file lands in (resolved, symlinks included) against `out_dir`
    (resolved): the last component is not resolved, because an atomic write renames over a
    symlink there instead of following it. `out_dir` None means the current folder.
    """
    base = Path(".") if out_dir is None else Path(out_dir)
    if not stem or stem in (".", "..") or safe_name(stem, fallback="") != stem:
        raise OutputError(f"refusing to write an output named {stem!r}: not a plain file name")
    if not _SUFFIX_RE.match(suffix):
        raise OutputError(f"refusing to write an output with suffix {suffix!r}")
    name = f"{stem}{suffix}"
    if len(name.encode("utf-8")) > _NAME_MAX_BYTES:
        raise OutputError(f"output name too long: {name[:40]}…")
    target = base / name
    if target.name != name or os.path.realpath(target.parent) != os.path.realpath(base):
        raise OutputError(f"refusing to write {target}: it is outside {base}")
    return target


# --- videos and images together -------------------------------------------------------------

IMAGE_COMMANDS = ("describe", "plan")


class RequestGroup(BaseModel):
    """Inputs answered together: one video, or all the images (compared in one request)."""

    kind: Literal["video", "images"]
    indexes: list[int]  # positions in the inputs as given


def check_mix(
    kinds: Sequence[str],
    *,
    command: str = "describe",
    max_images: int | None = None,
    names: Sequence[str] | None = None,
) -> list[RequestGroup]:
    """How inputs of these kinds (video | image | url) are answered, or InputError.

    - Each video is described on its own, as always.
    - All images (files and URLs) go in ONE request, so a prompt such as "What is different
      between them?" sees them together, as in the vision guide; the group stands where the
      first image was given.
    - Videos and images may be mixed in `describe` (and `plan`): the videos are described one
      by one and the images together. Other commands (script, voiceover, frames) need videos.
    - More images than the server takes per request (`max_images`) is an error, not a silent
      split: splitting would break a comparison.
    """
    shown = list(names) if names is not None else [f"input {i + 1}" for i in range(len(kinds))]
    groups: list[RequestGroup] = []
    images: RequestGroup | None = None
    for i, kind in enumerate(kinds):
        if kind == "video":
            groups.append(RequestGroup(kind="video", indexes=[i]))
        elif kind in ("image", "url"):
            if command not in IMAGE_COMMANDS:
                raise InputError(
                    f"{shown[i]}: `{command}` needs a video; images can only be described",
                    hint=f"run `vnarrate describe` for the images and `{command}` for the videos",
                )
            if images is None:
                images = RequestGroup(kind="images", indexes=[])
                groups.append(images)
            images.indexes.append(i)
        else:
            raise ValueError(f"unknown input kind {kind!r}")
    if images is not None and max_images is not None and len(images.indexes) > max_images:
        raise InputError(
            f"{len(images.indexes)} images go in one request, but this server takes at most "
            f"{max_images}",
            hint="describe them in separate runs, or raise --max-images-per-request if the server allows more",
        )
    return groups


__all__ = [
    "IMAGE_EXTENSIONS",
    "STEM_MAX_BYTES",
    "VIDEOS_ONLY",
    "VIDEO_EXTENSIONS",
    "Input",
    "InputKind",
    "RequestGroup",
    "assign_stems",
    "check_mix",
    "expand_inputs",
    "kind_of",
    "output_path",
    "output_stem",
    "safe_name",
]
