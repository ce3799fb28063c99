"""spaCy's English tokenizer as data plus a pure-Python engine: exact tokens without importing spaCy.

Importing spaCy imports thinc, which imports torch whenever torch is installed (about +1 s and +180 MB at
start-up). At training/export time ``dump_spacy_rules`` reads everything spaCy's tokenizer algorithm needs
(affix and URL regex patterns, special-case rules) into a JSON-able dict; the exporter writes it to
``tokenizer.json`` in the bundle. At inference ``RuleTokenizer`` replays spaCy's algorithm on those rules,
token for token (``spacy/tokenizer.pyx``: ``_tokenize_affixes``, ``_split_affixes``, ``_attach_tokens`` and
the special-case ``PhraseMatcher`` pass ``_apply_special_cases``), using only ``re``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import re._constants as sre_constants
import re._parser as sre_parser
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from lstm_onnx.runtime.errors import BundleError, MissingDependencyError
from lstm_onnx.runtime.json_text import MAX_JSON_FILE_BYTES, parse_json, read_text_capped

__all__ = [
    "KNOWN_PATTERN_DIGESTS",
    "RULES_FORMAT",
    "RuleTokenizer",
    "KNOWN_ENTRY_DIGESTS",
    "check_pattern_safety",
    "dump_spacy_rules",
    "entry_digest",
    "load_rules",
    "pattern_digest",
    "save_rules",
]

# Version of the dict layout written by ``dump_spacy_rules``; bump when a reader could misread a new layout.
RULES_FORMAT = 1
# spaCy caches up to 10,000 chunks; a larger bounded cache pays off on long corpora (IMDB: ~95% hit rate).
DEFAULT_CACHE_SIZE = 50_000
# Only chunks up to this many characters are cached, so the cache holds at most ~50,000 x 64 characters.
CACHED_CHUNK_CHARS = 64
# spaCy's affix loop strips one prefix/suffix per pass and re-searches the rest: quadratic in the length of a run
# of non-space characters (10,000 ")" took 11 s). Runs longer than this are tokenized as consecutive pieces of
# this many characters, a documented deviation from spaCy that never occurs in ordinary text (IMDB's longest
# non-space run is a few hundred characters: URLs and dot-joined words).
MAX_RUN_CHARS = 1000
# Suffix patterns end in ``$``; ``re.search`` tries every start position, so the search is limited to the last
# SUFFIX_WINDOW characters (plus lookbehind context). spaCy's English suffixes are at most a few characters long,
# except runs of dots (``\.\.+$``): a match reaching the window's start falls back to the full search.
SUFFIX_WINDOW = 10
_LOOKBEHIND_CONTEXT = 4

_PATTERN_KEYS = ("prefix_search", "suffix_search", "infix_finditer", "token_match", "url_match")
_REQUIRED_KEYS = ("format", "spacy_version", "faster_heuristics", "rules", *_PATTERN_KEYS)
# sha256 of the five regex entries (``pattern_digest``) of rule sets the exporter writes, by spaCy version. A
# known set is compiled as is; any other is first checked structurally (``check_pattern_safety``).
KNOWN_PATTERN_DIGESTS = {
    "78cb5c6ecc5416147d534c53d9664f9bbd960f59fd2a1bc57702dfe1e7c08cd4": "spaCy 3.8 English",
}
# sha256 of single regex entries (``entry_digest``) the exporter writes: in a set that is not known as a whole (another
# spaCy release), these are compiled as is. spaCy's URL pattern needs it: its nested optional repeats are safe only
# because every repetition ends in a literal ".", which a structural check cannot see.
KNOWN_ENTRY_DIGESTS = {
    "478627c2bfa99c004f194090a2da0b22d14636a70f38b8767aa1cdbfea37e3c8": "spaCy 3.8 English prefix_search",
    "11d3dd48f3b5e92c7ee1427aaf295aebe9722b6bbecbafa5fa190ae409a916fb": "spaCy 3.8 English suffix_search",
    "d8c2955fa18e18abce21ca5867f014dce28ddc919df606dcbdd2f7a8175d6b79": "spaCy 3.8 English infix_finditer",
    "72c5f184a53bfd82f217616cf1d4e26da2baed04aee2a31dfadcd5e3fc76373b": "spaCy URL_MATCH (3.x)",
}
# Size guards on a rules file: spaCy's English patterns are ~16,000 characters and ~1,400 special cases.
MAX_PATTERN_CHARS = 100_000
MAX_SPECIAL_CASES = 100_000
_UNBOUNDED = 100  # a repeat allowing more than this many matches counts as unbounded
_WS_RUNS = re.compile(r"\s+|\S+")  # sre's \s is Py_UNICODE_ISSPACE, the same test as str.isspace

Tokens = tuple[str, ...]


def dump_spacy_rules(language: str = "en") -> dict[str, Any]:
    """Read spaCy's blank tokenizer for ``language`` into a JSON-able dict (imports spaCy, training time only).

    Args:
        language: spaCy language code.

    Returns:
        ``{"format", "spacy_version", "language", "faster_heuristics", "rules", "prefix_search",
        "suffix_search", "infix_finditer", "token_match", "url_match"}``: each pattern entry is
        ``{"pattern": str, "flags": int}`` or ``None``; ``rules`` maps a string to its token texts (ORTH).

    Raises:
        MissingDependencyError: spaCy is not installed.
        ValueError: The tokenizer uses a callable that is not a compiled ``re`` pattern method.
    """
    try:
        import spacy
        from spacy import about
        from spacy.attrs import ORTH
    except ImportError as err:
        raise MissingDependencyError(
            "spaCy is required to build tokenizer rules: pip install 'spacy>=3.7,<4'."
        ) from err
    tok: Any = spacy.blank(language).tokenizer
    out: dict[str, Any] = {
        "format": RULES_FORMAT,
        "spacy_version": about.__version__,
        "language": language,
        "faster_heuristics": bool(tok.faster_heuristics),
    }
    for key in _PATTERN_KEYS:
        func = getattr(tok, key)
        if func is None:
            out[key] = None
            continue
        pattern = getattr(func, "__self__", None)
        if not isinstance(pattern, re.Pattern) or not isinstance(pattern.pattern, str):
            raise ValueError(f"spaCy tokenizer attribute {key} is {func!r}, not a method of a compiled str pattern.")
        out[key] = {"pattern": pattern.pattern, "flags": int(pattern.flags)}
    out["rules"] = {chunk: [str(spec[ORTH]) for spec in specs] for chunk, specs in tok.rules.items()}
    return out


def save_rules(rules: dict[str, Any], path: Path) -> None:
    """Write rules from ``dump_spacy_rules`` as JSON (UTF-8; non-ASCII escaped so any code point survives).

    Written to a temporary name beside ``path``, then renamed: a crash never leaves half a file.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(json.dumps(rules, ensure_ascii=True, sort_keys=True, indent=1) + "\n", encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def load_rules(path: Path) -> dict[str, Any]:
    """Read and validate rules written by ``save_rules``.

    Raises:
        BundleError: The file is missing, not JSON, or not a tokenizer rules dict; the message names the file.
    """
    path = Path(path)
    try:
        data = parse_json(read_text_capped(path, MAX_JSON_FILE_BYTES))
    except FileNotFoundError as err:
        raise BundleError(f"Tokenizer rules file {path} does not exist; run `lstm-onnx export` again.") from err
    except ValueError as err:  # bad JSON or UTF-8, absurd nesting, over the size cap
        raise BundleError(
            f"Tokenizer rules file {path} is not valid JSON ({err}); run `lstm-onnx export` again."
        ) from err
    try:
        RuleTokenizer.validate(data)
    except ValueError as err:
        raise BundleError(f"Tokenizer rules file {path} is invalid: {err} Run `lstm-onnx export` again.") from err
    return dict(data)


def pattern_digest(rules: dict[str, Any]) -> str:
    """sha256 of the rules' regex entries (patterns and flags), independent of the special cases."""
    entries = {key: rules.get(key) for key in _PATTERN_KEYS}
    return hashlib.sha256(json.dumps(entries, sort_keys=True).encode("utf-8")).hexdigest()


def entry_digest(entry: Any) -> str:
    """sha256 of one regex entry (``{"pattern", "flags"}``)."""
    return hashlib.sha256(json.dumps(entry, sort_keys=True).encode("utf-8")).hexdigest()


_REPEATS = (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT)
_ANCHORS = {"prefix_search": (0, sre_constants.AT_BEGINNING), "suffix_search": (-1, sre_constants.AT_END)}


def _anchored(items: Any, end: int, anchor: Any) -> bool:
    """Whether every way through ``items`` starts (``end`` 0) or ends (-1) at ``anchor``."""
    if not len(items):
        return False
    op, av = items[end]
    if op == sre_constants.AT:
        return bool(av == anchor)
    if op == sre_constants.BRANCH:
        return all(_anchored(branch, end, anchor) for branch in av[1])
    if op == sre_constants.SUBPATTERN:
        return _anchored(av[3], end, anchor)
    return False


def check_pattern_safety(pattern: str, flags: int, key: str) -> None:
    """Refuse regex shapes that backtrack catastrophically: ``re`` has no timeout, so it is checked before use.

    The tokenizer runs patterns over chunks of up to ``MAX_RUN_CHARS`` characters, many times per chunk, so any
    super-linear shape is a hang. Refused: an unbounded repeat inside any repeat of more than one (``(a+)+``,
    ``(.*a){25}``); a variable repeat inside a variable repeat (``(a{1,99}){1,99}``); an alternation inside an
    unbounded repeat (``(a|ab)*``); more than one unbounded repeat in a row, lookarounds included (``\\w*\\w*x``);
    a ``prefix_search`` not anchored at ``^`` or a ``suffix_search`` not anchored at ``$`` on every branch; a
    backreference; and patterns over ``MAX_PATTERN_CHARS`` characters. spaCy's affix patterns pass; its URL
    pattern is known by digest (``KNOWN_ENTRY_DIGESTS``).

    Raises:
        ValueError: Names the entry and the shape found.
    """
    if len(pattern) > MAX_PATTERN_CHARS:
        raise ValueError(f"Rules entry {key!r} is {len(pattern)} characters long (limit {MAX_PATTERN_CHARS}).")
    try:
        parsed = sre_parser.parse(pattern, flags)
    except (re.error, OverflowError, RecursionError) as err:
        raise ValueError(f"Rules entry {key!r} holds an invalid regex: {err}.") from err

    def refuse(shape: str) -> ValueError:
        return ValueError(f"Rules entry {key!r} {shape} (catastrophic backtracking).")

    def walk(items: Any, repeated: bool, varied: bool, unbounded_above: bool) -> int:
        """Unbounded repeats in a row along ``items``; raises on a refused shape."""
        chain = 0
        for op, av in items:
            if op in _REPEATS:
                low, high, sub = av
                unbounded = high == sre_constants.MAXREPEAT or high > _UNBOUNDED
                variable = low != high and high > 1
                if unbounded and repeated:
                    raise refuse("nests unbounded repeats")
                if variable and varied:
                    raise refuse("nests variable repeats")
                inner = walk(sub, repeated or high > 1, varied or variable, unbounded_above or unbounded)
                chain += inner + (1 if unbounded else 0)
            elif op == sre_constants.BRANCH:
                if unbounded_above:
                    raise refuse("repeats an alternation")
                chain += max(walk(branch, repeated, varied, unbounded_above) for branch in av[1])
            elif op == sre_constants.SUBPATTERN:
                chain += walk(av[3], repeated, varied, unbounded_above)
            elif op == sre_constants.ATOMIC_GROUP:
                chain += walk(av, repeated, varied, unbounded_above)
            elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
                chain += walk(av[1], repeated, varied, unbounded_above)
            elif op in (sre_constants.GROUPREF, sre_constants.GROUPREF_EXISTS):
                raise ValueError(f"Rules entry {key!r} uses a backreference; tokenizer rules never need one.")
        return chain

    if walk(parsed, False, False, False) > 1:
        raise refuse("has more than one unbounded repeat in a row")
    if key in _ANCHORS and not _anchored(parsed, *_ANCHORS[key]):
        where = "start with ^" if key == "prefix_search" else "end with $"
        raise ValueError(f"Rules entry {key!r} must {where} on every branch: it is searched at every position.")


def _compile(entry: Any, key: str, checked: bool) -> re.Pattern[str] | None:
    if entry is None:
        return None
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("pattern"), str)
        or not isinstance(entry.get("flags"), int)
    ):
        raise ValueError(f"Rules entry {key!r} must be null or {{'pattern': str, 'flags': int}}, got {entry!r:.80}.")
    if not checked and entry_digest(entry) not in KNOWN_ENTRY_DIGESTS:
        check_pattern_safety(entry["pattern"], entry["flags"], key)
    try:
        return re.compile(entry["pattern"], entry["flags"])
    except (re.error, ValueError, OverflowError, RecursionError) as err:
        raise ValueError(f"Rules entry {key!r} holds an invalid regex: {err}.") from err


class RuleTokenizer:
    """spaCy's tokenizer algorithm over rules from ``dump_spacy_rules``; same token texts, no spaCy import.

    Results per whitespace-delimited chunk are memoised in a bounded LRU cache owned by the instance
    (spaCy caches chunks too); the instance is safe to share between threads.

    Args:
        rules: The dict from ``dump_spacy_rules`` (or ``load_rules``).
        cache_size: Most chunks kept in the cache (0 disables it).

    Raises:
        ValueError: ``rules`` lacks a key or holds a bad pattern or rule; the message names it.
    """

    def __init__(self, rules: dict[str, Any], cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.validate(rules)
        if cache_size < 0:
            raise ValueError(f"cache_size must be >= 0, got {cache_size}.")
        self.spacy_version: str = rules["spacy_version"]
        known = pattern_digest(rules) in KNOWN_PATTERN_DIGESTS
        self._prefix = _compile(rules["prefix_search"], "prefix_search", known)
        self._suffix = _compile(rules["suffix_search"], "suffix_search", known)
        self._infix = _compile(rules["infix_finditer"], "infix_finditer", known)
        self._token_match = _compile(rules["token_match"], "token_match", known)
        self._url_match = _compile(rules["url_match"], "url_match", known)
        self._specials: dict[str, Tokens] = {k: tuple(v) for k, v in rules["rules"].items()}
        # The special-case matcher pass: spaCy's PhraseMatcher matches each rule's affix-only tokenization
        # (tokenized without special cases) anywhere in the token sequence. With faster_heuristics only
        # rules holding an affix, an infix or a space are patterns. Indexed by first token.
        self._patterns: dict[str, list[Tokens]] = {}
        for chunk in sorted(self._specials):
            if not rules["faster_heuristics"] or self._has_affix(chunk) or " " in chunk:
                pattern = tuple(self._tokenize_affixes(chunk, self._chunk_plain)[0])
                if pattern:
                    self._patterns.setdefault(pattern[0], []).append(pattern)
        # Longest special-case pattern in tokens: how far the matcher pass can look past a cut (see __call__).
        self._pattern_span = max((len(p) for ps in self._patterns.values() for p in ps), default=1)
        self._cached: Callable[[str], Tokens]
        if cache_size:
            self._cached = functools.lru_cache(maxsize=cache_size)(self._chunk_special)
        else:
            self._cached = self._chunk_special

    @staticmethod
    def validate(rules: Any) -> None:
        """Check the layout of a rules dict without compiling anything heavy.

        Raises:
            ValueError: A key is missing, the format is unknown, or a rule's texts do not concatenate to its key.
        """
        if not isinstance(rules, dict):
            raise ValueError(f"Tokenizer rules must be a JSON object, got {type(rules).__name__}.")
        missing = [k for k in _REQUIRED_KEYS if k not in rules]
        if missing:
            raise ValueError(f"Tokenizer rules lack key(s) {missing}.")
        if rules["format"] != RULES_FORMAT:
            raise ValueError(f"Tokenizer rules format {rules['format']!r} is not supported; expected {RULES_FORMAT}.")
        specials = rules["rules"]
        if not isinstance(specials, dict):
            raise ValueError("Tokenizer rules entry 'rules' must map strings to lists of token texts.")
        if len(specials) > MAX_SPECIAL_CASES:
            raise ValueError(f"Tokenizer rules hold {len(specials)} special cases (limit {MAX_SPECIAL_CASES}).")
        if not isinstance(rules["faster_heuristics"], bool) or not isinstance(rules["spacy_version"], str):
            raise ValueError("Tokenizer rules entries 'faster_heuristics' and 'spacy_version' must be bool and str.")
        for chunk, orths in specials.items():
            if (
                not isinstance(orths, list)
                or not orths
                or not all(isinstance(o, str) and o for o in orths)
                or "".join(orths) != chunk
            ):
                raise ValueError(f"Special case {chunk!r} has token texts {orths!r} that do not spell it.")

    def __call__(self, text: str, max_tokens: int | None = None) -> list[str]:
        """Split ``text`` exactly like ``spacy.blank(language).tokenizer(text)``.

        Args:
            text: Any Unicode text (whitespace other than single spaces becomes tokens, as in spaCy).
            max_tokens: Return only the first ``max_tokens`` tokens, and stop work soon after reaching them
                (the same tokens as cutting the full result).

        Returns:
            The token texts.
        """
        parts = text.split()
        if " ".join(parts) == text:
            # Fast path for normalised text: chunks separated by single spaces, no other whitespace.
            chunk = self._chunk
            token_lists: list[Tokens] = []
            if max_tokens is None:
                token_lists = [chunk(p) for p in parts]
            else:
                # The matcher pass turns spans of at most _pattern_span tokens into at least one token, so
                # this many affix tokens always yield the first max_tokens final tokens.
                need = (max_tokens + 2) * self._pattern_span
                count = 0
                for p in parts:
                    token_lists.append(chunk(p))
                    count += len(token_lists[-1])
                    if count >= need:
                        break
            tokens = [t for toks in token_lists for t in toks]
            if self._patterns and not self._patterns.keys().isdisjoint(tokens):
                spaces = [False] * len(tokens)
                end = 0
                for toks in token_lists[:-1]:
                    end += len(toks)
                    spaces[end - 1] = True
                tokens = self._apply_special_cases(tokens, spaces)
            return tokens if max_tokens is None else tokens[:max_tokens]
        tokens, spaces = self._tokenize_affixes(text, self._chunk)
        if self._patterns and not self._patterns.keys().isdisjoint(tokens):
            tokens = self._apply_special_cases(tokens, spaces)
        return tokens if max_tokens is None else tokens[:max_tokens]

    def pipe(self, texts: Sequence[str] | Iterator[str]) -> Iterator[list[str]]:
        """Tokenize many texts lazily, in order."""
        for text in texts:
            yield self(text)

    # --- spaCy's algorithm --------------------------------------------------------------------------

    def _has_affix(self, chunk: str) -> bool:
        return bool(
            self._find_prefix(chunk)
            or (self._infix is not None and self._infix.search(chunk))
            or self._find_suffix(chunk)
        )

    def _find_prefix(self, s: str) -> int:
        if self._prefix is None:
            return 0
        m = self._prefix.search(s)
        return m.end() - m.start() if m is not None else 0

    def _find_suffix(self, s: str, start: int = 0) -> int:
        """Length of the suffix of ``s[start:]`` (as ``suffix_search(s[start:])``), searching a bounded window."""
        if self._suffix is None:
            return 0
        window = len(s) - SUFFIX_WINDOW
        if window - _LOOKBEHIND_CONTEXT > start:
            # Keep a few characters before the window so lookbehinds see what they would see in s[start:].
            base = window - _LOOKBEHIND_CONTEXT
            m = self._suffix.search(s[base:], _LOOKBEHIND_CONTEXT)
            if m is None:
                return 0
            if m.start() > _LOOKBEHIND_CONTEXT:
                return m.end() - m.start()
            # The match reaches the window's start (a long run of dots): it may extend further left.
        m = self._suffix.search(s[start:])
        return m.end() - m.start() if m is not None else 0

    @staticmethod
    def _tokenize_affixes(text: str, chunk: Callable[[str], Tokens]) -> tuple[list[str], list[bool]]:
        """Whitespace pass of ``Tokenizer._tokenize_affixes``: tokens and their trailing-space flags.

        Runs of non-space and of space alternate; one ``' '`` right after a token is that token's trailing
        space, any other whitespace (including leading whitespace) is tokenized like text.
        """
        tokens: list[str] = []
        spaces: list[bool] = []
        for m in _WS_RUNS.finditer(text):
            run = m.group()
            if run[0] == " " and tokens and m.start() > 0:
                spaces[-1] = True
                run = run[1:]
                if not run:
                    continue
            toks = chunk(run)
            tokens.extend(toks)
            spaces.extend([False] * len(toks))
        return tokens, spaces

    def _chunk(self, span: str) -> Tokens:
        """One whitespace-free chunk; short chunks go through the cache, over-long runs are cut into pieces."""
        if len(span) <= CACHED_CHUNK_CHARS:
            return self._cached(span)
        if len(span) <= MAX_RUN_CHARS:
            return self._chunk_special(span)
        out: list[str] = []
        for start in range(0, len(span), MAX_RUN_CHARS):
            out.extend(self._chunk_special(span[start : start + MAX_RUN_CHARS]))
        return tuple(out)

    def _chunk_special(self, span: str) -> Tokens:
        """One chunk with special cases (``_try_specials_and_cache`` then ``_tokenize``)."""
        special = self._specials.get(span)
        if special is not None:
            return special
        return self._tokenize(span, True)

    def _chunk_plain(self, span: str) -> Tokens:
        return self._tokenize(span, False)

    def _tokenize(self, s: str, with_specials: bool) -> Tokens:
        specials = self._specials if with_specials else {}
        token_match = self._token_match
        prefixes: list[str] = []
        suffixes: list[str] = []
        # _split_affixes
        last_size = 0
        while s and len(s) != last_size:
            if token_match is not None and token_match.match(s):
                break
            if s in specials:
                break
            last_size = len(s)
            pre_len = self._find_prefix(s)
            if pre_len:
                prefix = s[:pre_len]
                minus_pre = s[pre_len:]
                if minus_pre and minus_pre in specials:
                    s = minus_pre
                    prefixes.append(prefix)
                    break
            suf_len = self._find_suffix(s, pre_len)
            if suf_len:
                suffix = s[-suf_len:]
                minus_suf = s[:-suf_len]
                if minus_suf and minus_suf in specials:
                    s = minus_suf
                    suffixes.append(suffix)
                    break
            if pre_len and suf_len and (pre_len + suf_len) <= len(s):
                s = s[pre_len:-suf_len]
                prefixes.append(prefix)
                suffixes.append(suffix)
            elif pre_len:
                s = minus_pre
                prefixes.append(prefix)
            elif suf_len:
                s = minus_suf
                suffixes.append(suffix)
        # _attach_tokens
        out = prefixes
        if s:
            special = specials.get(s)
            if special is not None:
                out.extend(special)
            elif (token_match is not None and token_match.match(s)) or (
                self._url_match is not None and self._url_match.match(s)
            ):
                out.append(s)
            else:
                matches = list(self._infix.finditer(s)) if self._infix is not None else []
                if not matches:
                    out.append(s)
                else:
                    start = 0
                    for match in matches:
                        infix_start, infix_end = match.start(), match.end()
                        if infix_start == 0:  # spaCy skips an infix at the very start of the core
                            continue
                        if infix_start != start:
                            out.append(s[start:infix_start])
                        if infix_start != infix_end:
                            out.append(s[infix_start:infix_end])
                        start = infix_end
                    if s[start:]:
                        out.append(s[start:])
        out.extend(reversed(suffixes))
        return tuple(out)

    def _apply_special_cases(self, tokens: list[str], spaces: list[bool]) -> list[str]:
        """The PhraseMatcher pass: re-split token spans whose text is a special case (``_apply_special_cases``)."""
        matches: list[tuple[int, int]] = []
        n = len(tokens)
        for i, tok in enumerate(tokens):
            for pattern in self._patterns.get(tok, ()):
                end = i + len(pattern)
                if end <= n and tuple(tokens[i:end]) == pattern:
                    matches.append((i, end))
        if not matches:
            return tokens
        # _filter_special_spans: longest first, then leftmost; a span is kept unless its first or last
        # token was covered by an earlier candidate (kept or not).
        matches.sort(key=lambda se: (-(se[1] - se[0]), se[0]))
        seen: set[int] = set()
        kept: dict[int, int] = {}
        for start, end in matches:
            if start not in seen and (end - 1) not in seen:
                kept[start] = end
            seen.update(range(start, end))
        out: list[str] = []
        i = 0
        while i < n:
            end = kept.get(i, 0)
            if not end:
                out.append(tokens[i])
                i += 1
                continue
            text = "".join(tokens[j] + (" " if spaces[j] else "") for j in range(i, end - 1)) + tokens[end - 1]
            out.extend(self._specials.get(text, tokens[i:end]))
            i = end
        return out
