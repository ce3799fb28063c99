"""All shared fixtures: tiny data and tiny models made in code, nothing downloaded.

Sections (keep additions inside their section): corpus and data files · trained tiny run · exported bundle.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", deadline=None, max_examples=50)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
IMDB_TARBALL = SHARED_DATA / "imdb" / "aclImdb_v1.tar.gz"
GLOVE_FILE = SHARED_DATA / "glove" / "glove.6B.50d.imdb.txt.gz"

# ---------------------------------------------------------------- corpus and data files
_POSITIVE = ["great", "wonderful", "excellent", "loved", "brilliant", "superb", "moving", "fun"]
_NEGATIVE = ["awful", "terrible", "boring", "hated", "dull", "poor", "waste", "worst"]
_FILLER = ["the", "movie", "film", "was", "plot", "acting", "story", "really", "quite", "and", "a", "it"]


def make_corpus(n: int = 48, seed: int = 0) -> list[tuple[str, str]]:
    """A tiny separable corpus of (text, label) pairs, labels "neg"/"pos", balanced, lengths 3-20 words."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 else "neg"
        polar = _POSITIVE if label == "pos" else _NEGATIVE
        words = [rng.choice(_FILLER) for _ in range(rng.randint(2, 18))]
        for _ in range(rng.randint(1, 2)):
            words.insert(rng.randrange(len(words) + 1), rng.choice(polar))
        rows.append((" ".join(words).capitalize() + ".", label))
    return rows


@pytest.fixture(scope="session")
def corpus() -> list[tuple[str, str]]:
    """48 short polar sentences."""
    return make_corpus()
