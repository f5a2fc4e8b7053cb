"""Narration: script -> speech -> timeline -> subtitles.

Script repair and word budgets, the speech backends (speech endpoint, Realtime API) and the
choice between them, the faithfulness check, fitting clips on the video's timeline, subtitles.
"""
