"""An offline token estimate, for models whose upstream cannot count tokens for us.

It splits text the way GPT-2's pre-tokenizer does (contractions, letter runs, digit runs,
punctuation runs, whitespace) and charges each piece what byte-pair encoding typically charges
it: one token per English word of up to eight letters (longer ones split), one per three digits,
one per punctuation mark and one per non-Latin character. It needs no vocabulary file and no
network. It is an estimate: providers with a real tokenizer or a counting endpoint override
`get_num_tokens`.
"""

from __future__ import annotations

import re

# Texts this long are charged one token per character, as Dify does, to bound the work.
ESTIMATION_TEXT_LIMIT = 100_000

_PIECES = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[^\W\d_]+| ?\d+| ?[^\s\w]+|\s+(?!\S)|\s+")


def estimate_tokens(text: str) -> int:
    if len(text) >= ESTIMATION_TEXT_LIMIT:
        return len(text)
    count = 0
    for piece in _PIECES.findall(text):
        body = piece.lstrip(" ")
        if not body or body.isspace():
            count += body.count("\n") and 1
        elif body.isascii() and body.isalpha():
            count += (len(body) + 7) // 8
        elif body.isdigit():
            count += (len(body) + 2) // 3
        else:
            count += len(body)
    return count
