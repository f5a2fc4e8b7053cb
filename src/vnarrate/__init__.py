"""vnarrate: turn videos into words and voice with vision language models."""

__version__ = "0.1.0"
