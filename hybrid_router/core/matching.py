"""Keyword, phrase and proximity matching on words, not substrings — without regular expressions.

Claude Code runs the prompt hook as a fresh process for every prompt, and on these machines
importing `re` and compiling the routing table's expressions would cost more than the hook's
whole budget. So text is split into tokens once and compared token by token; the compiled
matchers are plain tuples and dicts that can be cached with `marshal`.

Tokens: a run of letters, digits and underscores is one token; every other non-space character
is a token of its own. "where's the post-mortem?" -> where ' s the post - mortem ?

Keyword syntax (case-insensitive), tokenized the same way:
- a word or phrase: `read`, `where is`, `sql injection` — whole tokens only, so `read` does not
  hit "already" or "thread"; the tokens of a phrase must follow each other (any whitespace);
- a trailing `*` matches any continuation of the last word: `refactor*` hits "refactoring",
  `post-mortem*` hits "post-mortems".
Exclusions use the same syntax: a keyword occurrence that overlaps an occurrence of an exclusion
does not count ("open" in "open source").
A `near` pair holds when a term of its first group and a term of its second group both occur
(outside exclusions) with at most `within` tokens between them, in either order.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:  # `typing` and `collections.abc` cost the prompt hook
    from collections.abc import Sequence

# A compiled term: (tokens, prefix, text). `tokens` are lower-case; `prefix` means the last token
# only has to start with tokens[-1].
Term = tuple[tuple[str, ...], bool, str]
Span = tuple[int, int]  # token positions, end exclusive
TermIndex = dict[str, list[Term]]  # terms by the index key they can start at
# A compiled `near` pair: (first terms, second terms, at most this many tokens apart).
NearPair = tuple[TermIndex, TermIndex, int]


class Tokens(list[str]):
    """A text's tokens, and where each index key occurs in them (built on first use): matching
    visits only the positions where one of a term index's keys occurs, and a matcher whose keys
    occur nowhere is ruled out by one set operation."""

    __slots__ = ("_places",)
    _places: dict[str, list[int]]

    def places(self) -> dict[str, list[int]]:
        """Positions by index key: each token, and `*` plus its first character (the key of
        one-word prefix terms)."""
        try:
            return self._places
        except AttributeError:
            places: dict[str, list[int]] = {}
            for position, token in enumerate(self):
                places.setdefault(token, []).append(position)
                places.setdefault(PREFIX_KEY + token[0], []).append(position)
            self._places = places
            return places


def tokenize(text: str) -> Tokens:
    """Lower-case tokens: runs of word characters, and single punctuation characters."""
    tokens = Tokens()
    word_start = -1
    lowered = text.lower()
    for index, char in enumerate(lowered):
        if char.isalnum() or char == "_":
            if word_start < 0:
                word_start = index
            continue
        if word_start >= 0:
            tokens.append(lowered[word_start:index])
            word_start = -1
        if not char.isspace():
            tokens.append(char)
    if word_start >= 0:
        tokens.append(lowered[word_start:])
    return tokens


def token_offsets(text: str) -> tuple[list[int], list[int]]:
    """Start and end character offsets of each token of `text`, in `tokenize` order."""
    starts: list[int] = []
    ends: list[int] = []
    word_start = -1
    for index, char in enumerate(text):
        if char.isalnum() or char == "_":
            if word_start < 0:
                word_start = index
            continue
        if word_start >= 0:
            starts.append(word_start)
            ends.append(index)
            word_start = -1
        if not char.isspace():
            starts.append(index)
            ends.append(index + 1)
    if word_start >= 0:
        starts.append(word_start)
        ends.append(len(text))
    return starts, ends


# Index key of one-word prefix terms, before their first character. Tokens never start with
# "*" followed by another character ("*" is a token on its own), so it cannot clash.
PREFIX_KEY = "*"


def compile_term(term: str) -> Term:
    text = term.strip()
    prefix = text.endswith("*")
    tokens = tokenize(text[:-1] if prefix else text)
    return (tuple(tokens), prefix and bool(tokens), text)


def compile_terms(terms: Sequence[str]) -> TermIndex:
    """Index terms by first token. A one-word prefix term (`refactor*`) is indexed under `*` and
    its first character (`*r`), so a token is checked only against prefixes it could start with."""
    index: TermIndex = {}
    for term in terms:
        compiled = compile_term(term)
        tokens, prefix, _ = compiled
        if not tokens:
            continue
        key = PREFIX_KEY + tokens[0][0] if prefix and len(tokens) == 1 else tokens[0]
        index.setdefault(key, []).append(compiled)
    for bucket in index.values():
        bucket.sort(key=lambda t: -len(t[0]))  # longest phrase first: "where is" over "where"
    return index


def _matches_at(tokens: list[str], position: int, term: Term) -> bool:
    words, prefix, _ = term
    end = position + len(words)
    if end > len(tokens):
        return False
    last = len(words) - 1
    for offset, word in enumerate(words):
        token = tokens[position + offset]
        if offset == last and prefix:
            if not token.startswith(word):
                return False
        elif token != word:
            return False
    return True


def find_terms(tokens: list[str], index: TermIndex) -> list[tuple[Span, str]]:
    """Every occurrence of an indexed term: (token span, the matched text), left to right.

    At each position the longest term wins and matching resumes after it, as a regular
    expression alternation would.
    """
    found: list[tuple[Span, str]] = []
    if isinstance(tokens, Tokens):
        places = tokens.places()
        common = places.keys() & index.keys()  # a set built from the left side: the text's few keys
        if not common:
            return found  # no term can start anywhere
        positions: list[int] | range = sorted({p for key in common for p in places[key]})
    else:
        positions = range(len(tokens))
    resume = 0
    for position in positions:
        if position < resume:
            continue  # inside the previous match
        token = tokens[position]
        best = 0
        for term in index.get(token, ()):
            if len(term[0]) > best and _matches_at(tokens, position, term):
                best = len(term[0])
        if not best:
            for term in index.get(PREFIX_KEY + token[0], ()):
                if token.startswith(term[0][0]):
                    best = 1
                    break
        if best:
            found.append(((position, position + best), _joined(tokens[position : position + best])))
            resume = position + best
    return found


def _joined(tokens: list[str]) -> str:
    """Matched tokens as text: words spaced, punctuation attached ("post-mortem", "where's")."""
    text = ""
    for token in tokens:
        attach = (
            not text
            or not (token[0].isalnum() or token[0] == "_")
            or not (text[-1].isalnum() or text[-1] == "_")
        )
        text += token if attach else " " + token
    return text


def overlaps(span: Span, spans: list[Span]) -> bool:
    start, end = span
    for other_start, other_end in spans:
        if start < other_end and other_start < end:
            return True
    return False


class Matcher:
    """Compiled keywords, exclusions and `near` pairs of one route (plain data, marshal-able)."""

    __slots__ = ("_start_keys", "exclusions", "keywords", "near")

    def __init__(
        self,
        keywords: TermIndex,
        exclusions: TermIndex,
        near: tuple[NearPair, ...] = (),
    ) -> None:
        self.keywords = keywords
        self.exclusions = exclusions
        self.near = near  # ((first index, second index, within), ...)
        self._start_keys: frozenset[str] | None = None

    @classmethod
    def build(
        cls,
        keywords: Sequence[str] = (),
        exclusions: Sequence[str] = (),
        near: Sequence[tuple[Sequence[str], Sequence[str], int]] = (),
    ) -> Matcher:
        """`near` holds (first terms, second terms, within) triples."""
        pairs = tuple(
            (compile_terms(first), compile_terms(second), within) for first, second, within in near
        )
        return cls(compile_terms(keywords), compile_terms(exclusions), pairs)

    def to_data(self) -> tuple[TermIndex, TermIndex, tuple[NearPair, ...]]:
        return (self.keywords, self.exclusions, self.near)

    @classmethod
    def from_data(cls, data: tuple[TermIndex, TermIndex, tuple[NearPair, ...]]) -> Matcher:
        return cls(*data)

    @property
    def empty(self) -> bool:
        return not self.keywords and not self.near

    def could_match(self, tokens: list[str]) -> bool:
        """False when no keyword and no `near` pair can start at any of the tokens: most
        routes, for most prompts, are ruled out by this one set operation."""
        if not isinstance(tokens, Tokens):
            return True
        if self._start_keys is None:
            keys = set(self.keywords)
            for first, _, _ in self.near:
                keys.update(first)
            self._start_keys = frozenset(keys)
        return not self._start_keys.isdisjoint(tokens.places())

    def excluded(self, tokens: list[str]) -> list[Span]:
        if not self.exclusions:
            return []
        return [span for span, _ in find_terms(tokens, self.exclusions)]

    def hits(self, tokens: list[str], excluded: list[Span] | None = None) -> list[str]:
        """Distinct matched keywords (as they appear in the text), then `near` matches."""
        if not self.could_match(tokens):
            return []
        if excluded is None:
            excluded = self.excluded(tokens)
        found: list[str] = []
        for span, text in find_terms(tokens, self.keywords):
            if text not in found and not overlaps(span, excluded):
                found.append(text)
        for first, second, within in self.near:
            pair = _near_pair(tokens, excluded, first, second, within)
            if pair and pair not in found:
                found.append(pair)
        return found


def _near_pair(
    tokens: list[str],
    excluded: list[Span],
    first: TermIndex,
    second: TermIndex,
    within: int,
) -> str | None:
    """The first pair of a `first` term and a `second` term at most `within` tokens apart."""
    firsts = [m for m in find_terms(tokens, first) if not overlaps(m[0], excluded)]
    if not firsts:
        return None
    seconds = [m for m in find_terms(tokens, second) if not overlaps(m[0], excluded)]
    for (a_start, a_end), a_text in firsts:
        for (b_start, b_end), b_text in seconds:
            gap = b_start - a_end if b_start >= a_end else a_start - b_end
            if 0 <= gap <= within:
                joint = " " if gap == 0 else " ... "
                return (
                    f"{a_text}{joint}{b_text}" if a_start < b_start else f"{b_text}{joint}{a_text}"
                )
    return None
