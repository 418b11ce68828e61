"""Token-bounded chunking with overlap on the MiniLM WordPiece tokenizer the repository ships."""

from __future__ import annotations

from itertools import pairwise

import pytest

from problems import ProblemsError
from serving.rag.chunking import Chunker

TEXT = " ".join(f"Sentence number {i} talks about extraordinarily unbelievable things." for i in range(40))


def test_every_chunk_is_a_slice_of_the_text_within_max_tokens_and_they_overlap():
    c = Chunker(32, 8)
    pieces = c.split(TEXT)
    assert len(pieces) > 5
    for p in pieces:
        assert TEXT[p.start:p.end] == p.text
        assert c.count(p.text) == p.tokens <= 32
    for a, b in pairwise(pieces):
        assert b.start < a.end, "consecutive chunks overlap"
        assert c.count(TEXT[b.start:a.end]) <= 8 + 1
    assert pieces[0].start == 0 and pieces[-1].end == len(TEXT)


def test_without_overlap_chunks_tile_the_text():
    c = Chunker(32, 0)
    pieces = c.split(TEXT)
    for a, b in pairwise(pieces):
        assert b.start >= a.end
        assert TEXT[a.end:b.start].strip() == ""


def test_cuts_fall_between_words_not_inside_word_pieces():
    c = Chunker(10, 2)
    text = "extraordinarily unbelievable " * 20
    for p in c.split(text):
        assert p.text[0].isalpha() and (p.end == len(text.rstrip()) or text[p.end] == " ")


def test_short_and_blank_texts():
    c = Chunker()
    (only,) = c.split("Leave is 25 days a year.")
    assert only.text == "Leave is 25 days a year." and only.tokens == c.count(only.text)
    assert c.split("   \n ") == []


@pytest.mark.parametrize("max_tokens, overlap, words", [
    (4, 0, "maxTokens = 4: must be an integer from 8 to 8192"),
    (64, 40, "overlapTokens = 40: must be an integer from 0 to half of maxTokens (32)"),
    (64, -1, "overlapTokens = -1"),
])
def test_bad_settings_are_named(max_tokens, overlap, words):
    with pytest.raises(ProblemsError) as err:
        Chunker(max_tokens, overlap)
    assert words in str(err.value)
