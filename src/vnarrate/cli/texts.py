"""The CLI's words: one line per command for `vnarrate --help`, and the exit codes."""

from __future__ import annotations

# Also each command's own help (cli/commands.py), so `vnarrate --help` lists the commands without
# importing them (which would load Settings and pydantic: 0.2 s).
COMMANDS = {
    "describe": "Write a title and a description of each VIDEO.",
    "script": "Write a timed narration script (JSON) for each VIDEO, to edit or to speak later.",
    "voiceover": "Narrate each VIDEO: script -> speech -> audio timed to the video, with subtitles.",
    "plan": "Offline: the frames, requests, tokens and dollars a run would use. No key needed.",
    "frames": "Save the frames the model would see, with a contact sheet. Offline: no key needed.",
    "models": "Check the server: is it reachable, is the key accepted, which models does it offer?",
    "cache": "The response cache: identical requests are answered from disk, for free.",
}

EXIT_CODES_HELP = (
    "Exit codes: 0 ok, 1 unexpected, 2 usage, 3 configuration, 4 input, 5 API, 6 output; "
    "130/143/129 interrupted (Ctrl-C, SIGTERM, SIGHUP), 141 stdout closed. "
    "With several inputs: the first failed input's code, after all were processed."
)

GROUP_HELP = """Turn videos into words and voice with vision language models.

\b
vnarrate describe video.mp4               title + description
vnarrate voiceover video.mp4 --voice onyx narration mp3 timed to the video
vnarrate script video.mp4                 the timed script only (edit, then --script)
vnarrate plan video.mp4                   frames, requests, tokens, cost (offline)
vnarrate frames video.mp4 -o DIR          the frames the model would see (offline)

Inputs can be files, folders (--recursive) or - to read paths from stdin.
"""
