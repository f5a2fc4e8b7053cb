"""Media: OpenCV and PyAV work on pictures and sound; knows nothing of OpenAI.

Probing, frame sampling, shot detection, sheets (one grid renderer), still images, audio
encoding and muxing, and the one timecode formatter.
"""
