"""Vision: frames -> requests -> a validated answer.

Planning (requests under the caps, tokens, dollars), packing frames into sheets, prompts, and the
Chat Completions call with structured output.
"""
