from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.tokenizer import Tokenizer, normalize
from lstm_onnx.runtime.tokenizer_rules import RuleTokenizer, dump_spacy_rules, load_rules, save_rules
from tests.conftest import IMDB_TARBALL

# Reviews compared (raw and normalised) in the normal suite; benchmarks/tokenizer_identity.py runs all 100k.
IMDB_SAMPLE = 1000

# Pieces that exercise every branch: prefixes, suffixes, infixes, URLs, emoticons, contractions, special cases
# found only after affix stripping, and special cases matched across tokens by the PhraseMatcher pass.
_PIECES = [
    "don't",
    "Can't",
    "y'all",
    "'Cause",
    "''",
    "'s",
    "n't",
    "U.S.",
    "e.g.",
    "Mr.",
    "a.m.",
    "10a.m.",
    "3p.m.",
    ":-)",
    ":)",
    "<3",
    "(:",
    ":'(",
    "(^_^)",
    "o.O",
    "¯\\_(ツ)_/¯",
    "(╯°□°）╯︵┻━┻",
    "...",
    "--",
    "—",
    "!",
    "?!",
    "(",
    ")",
    "[",
    "]",
    '"',
    "“",
    "”",
    ",",
    ";",
    "&",
    "$",
    "€10",
    "5km",
    "3.5",
    "1,000",
    "10%",
    "#tag",
    "@user",
    "http://example.com/a?b=1&c=2",
    "www.imdb.com",
    "https://t.co/x.",
    "user@mail.org",
    "A-B",
    "well-known",
    "co-op",
    "e-mail",
    "x/y",
    "C++",
    "<br />",
    "\u00a0",
    "\t",
    "\n",
    "  ",
    " ",
    "é",
    "e\u0301",
    "עברית",
    "مرحبا",
    "😀",
    "👍🏽",
    "\u200b",
    "\x00",
    "Ⅻ",
]
# spaCy itself raises UnicodeEncodeError on lone surrogates, so identity is checked on encodable text only
# (test_rule_tokenizer_accepts_lone_surrogates covers the rest).
_chars = st.characters(codec="utf-8")
_texts = st.one_of(
    st.text(_chars, max_size=80),
    st.lists(st.one_of(st.sampled_from(_PIECES), st.text(_chars, max_size=6)), max_size=14).map("".join),
    st.lists(st.sampled_from(_PIECES), max_size=14).map(" ".join),
)


@pytest.fixture(scope="module")
def spacy_tokenizer() -> Any:
    spacy = pytest.importorskip("spacy")
    return spacy.blank("en").tokenizer


@pytest.fixture(scope="module")
def rule_tokenizer() -> RuleTokenizer:
    # Through a JSON round trip, as the runtime reads them from a bundle.
    return RuleTokenizer(json.loads(json.dumps(dump_spacy_rules())))


@given(_texts)
def test_rule_tokenizer_matches_spacy_on_any_text(
    spacy_tokenizer: Any, rule_tokenizer: RuleTokenizer, text: str
) -> None:
    assert rule_tokenizer(text) == [t.text for t in spacy_tokenizer(text)]


@given(_texts)
def test_rule_tokenizer_matches_spacy_on_normalized_text(
    spacy_tokenizer: Any, rule_tokenizer: RuleTokenizer, text: str
) -> None:
    text = normalize(text)
    assert rule_tokenizer(text) == [t.text for t in spacy_tokenizer(text)]


@pytest.mark.parametrize("text", ["a.m . a.m. 3a.m.", "(╯°□°）╯︵┻━┻", "  lead\n\ntab\t end  ", "'Cause 'tis"])
def test_rule_tokenizer_matches_spacy_on_special_cases(
    spacy_tokenizer: Any, rule_tokenizer: RuleTokenizer, text: str
) -> None:
    assert rule_tokenizer(text) == [t.text for t in spacy_tokenizer(text)]


def test_rule_tokenizer_accepts_lone_surrogates(rule_tokenizer: RuleTokenizer) -> None:
    assert rule_tokenizer("bad \ud800 (x\udfff)") == ["bad", "\ud800", "(", "x\udfff", ")"]


def test_rule_tokenizer_gives_same_tokens_without_cache(rule_tokenizer: RuleTokenizer) -> None:
    uncached = RuleTokenizer(dump_spacy_rules(), cache_size=0)
    text = "I didn't like it :( -- see http://x.org, 10a.m. e.g. (really)!"
    assert uncached(text) == rule_tokenizer(text) == rule_tokenizer(text)


def test_tokenizer_with_rules_lowercases_after_tokenizing() -> None:
    assert Tokenizer(rules=dump_spacy_rules()).tokenize("I didn't LIKE it, U.S.A.!") == [
        "i", "did", "n't", "like", "it", ",", "u.s.a.", "!",
    ]  # fmt: skip


def test_load_rules_round_trips(tmp_path: Path) -> None:
    rules = dump_spacy_rules()
    save_rules(rules, tmp_path / "tokenizer.json")
    assert load_rules(tmp_path / "tokenizer.json") == rules


@pytest.mark.parametrize(
    ("content", "phrase"),
    [("{", "not valid JSON"), ('{"format": 1}', "lack key"), ("[]", "must be a JSON object")],
)
def test_load_rules_rejects_bad_file(tmp_path: Path, content: str, phrase: str) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(BundleError, match=phrase):
        load_rules(path)


def test_rule_tokenizer_rejects_rule_that_does_not_spell_its_key() -> None:
    rules = dump_spacy_rules()
    rules["rules"] = {"don't": ["do", "not"]}
    with pytest.raises(ValueError, match="do not spell it"):
        RuleTokenizer(rules)


def iter_imdb(path: Path, limit_per_split: int | None = None) -> Iterator[str]:
    """Yield review texts from the IMDB tarball (train, test, unsup), streaming, at most ``limit_per_split`` each."""
    counts: dict[str, int] = {}
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4 or not parts[3].endswith(".txt"):
                continue
            split = parts[1] + "/" + parts[2]
            if limit_per_split is not None and counts.get(split, 0) >= limit_per_split:
                continue
            counts[split] = counts.get(split, 0) + 1
            fh = tar.extractfile(member)
            if fh is not None:
                yield fh.read().decode("utf-8")


@pytest.mark.skipif(not IMDB_TARBALL.exists(), reason=f"IMDB archive not found at {IMDB_TARBALL}")
def test_rule_tokenizer_matches_spacy_on_imdb_sample(spacy_tokenizer: Any, rule_tokenizer: RuleTokenizer) -> None:
    # The archive is grouped by directory: the first few thousand members cover test/neg and test/pos.
    mismatches = []
    for i, review in enumerate(iter_imdb(IMDB_TARBALL, limit_per_split=IMDB_SAMPLE // 2)):
        if i >= IMDB_SAMPLE:
            break
        for text in (review, normalize(review)):
            if rule_tokenizer(text) != [t.text for t in spacy_tokenizer(text)]:
                mismatches.append(text[:80])
    assert mismatches == []
