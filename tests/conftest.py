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


# ---------------------------------------------------------------- trained tiny run
TINY_SEED = 0


def corpus_texts(rows: list[tuple[str, str]], source: str = "corpus"):  # type: ignore[no-untyped-def]
    """``(text, label)`` rows as ``runtime.datasets.LabelledTexts``."""
    from lstm_onnx.runtime.datasets import LabelledTexts

    return LabelledTexts([text for text, _ in rows], [label for _, label in rows], source)


class InterruptAt:
    """Raises KeyboardInterrupt at the first batch of a given epoch, like Ctrl-C mid-epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch, self.current = epoch, 0

    def on_stage(self, message: str) -> None: ...

    def on_epoch_start(self, epoch: int, epochs: int, batches: int) -> None:
        self.current = epoch

    def on_batch(self, loss: float, accuracy: float) -> None:
        if self.current == self.epoch:
            raise KeyboardInterrupt

    def on_epoch_end(self, record: dict) -> None: ...  # type: ignore[type-arg]


@pytest.fixture(scope="session")
def tiny_run_dir(tmp_path_factory: pytest.TempPathFactory, corpus: list[tuple[str, str]]) -> Path:
    """A run directory trained with the ``tiny`` preset on ``corpus`` (embedding 8, hidden 8, one layer,
    labels "neg"/"pos", seed 0; vocabulary of ~30 tokens), tested on ``make_corpus(24, seed=1)``.

    Read-only: copy it (``shutil.copytree``) before changing anything in it.
    """
    from lstm_onnx.trainer.presets import get_preset
    from lstm_onnx.trainer.train import train

    preset = get_preset("tiny", seed=TINY_SEED)
    run_dir = tmp_path_factory.mktemp("tiny_run") / "run"
    train(
        corpus_texts(corpus),
        run_dir,
        preset.model,
        preset.train,
        test_data=corpus_texts(make_corpus(24, seed=1), "corpus-test"),
    )
    return run_dir


# ---------------------------------------------------------------- exported bundle
@pytest.fixture(scope="session")
def tiny_bundle_dir(tmp_path_factory: pytest.TempPathFactory, tiny_run_dir: Path) -> Path:
    """The fp32 bundle exported (and parity-verified) from ``tiny_run_dir`` by ``exporter.export_bundles``.

    Holds model.onnx, vocab.txt, config.json, tokenizer.json, README.md, manifest.json. Read-only: copy it
    (``shutil.copytree``) before changing anything in it.
    """
    from lstm_onnx.exporter.build import export_bundles
    from lstm_onnx.exporter.config import ExportConfig

    out = tmp_path_factory.mktemp("tiny_bundle") / "bundle"
    export_bundles(ExportConfig(run_dir=tiny_run_dir, out=out))
    return out


# ---------------------------------------------------------------- runtime
@pytest.fixture(scope="session")
def tiny_model(tiny_bundle_dir: Path):  # type: ignore[no-untyped-def]
    """``runtime.predictor.TextClassifier`` on ``tiny_bundle_dir`` (CPU provider). Shared: do not mutate."""
    from lstm_onnx.runtime.predictor import TextClassifier

    return TextClassifier.load(tiny_bundle_dir, providers="cpu")


@pytest.fixture()
def bundle_copy(tiny_bundle_dir: Path, tmp_path: Path) -> Path:
    """A private copy of ``tiny_bundle_dir`` that a test may change."""
    import shutil

    return Path(shutil.copytree(tiny_bundle_dir, tmp_path / "bundle"))


# ---------------------------------------------------------------- tagging: corpus, run, bundle
UD_EWT = SHARED_DATA / "ud-ewt"
_TAG_WORDS = {
    "DET": ["the", "a", "this"],
    "ADJ": ["big", "red", "old", "happy"],
    "NOUN": ["cat", "dog", "film", "house", "tree"],
    "VERB": ["sees", "likes", "finds", "watches"],
    "PUNCT": [".", "!"],
}


def make_tagged(n: int = 60, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """Tiny tagged sentences ``DET (ADJ) NOUN VERB DET (ADJ) NOUN PUNCT``, some words capitalised."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        pattern = ["DET", "ADJ", "NOUN", "VERB", "DET", "ADJ", "NOUN", "PUNCT"]
        pattern = [p for p in pattern if p != "ADJ" or rng.random() < 0.5]
        words = [rng.choice(_TAG_WORDS[p]) for p in pattern]
        words[0] = words[0].capitalize()
        rows.append((words, pattern))
    return rows


def write_conllu(path: Path, rows: list[tuple[list[str], list[str]]]) -> Path:
    """Write ``(words, tags)`` rows as CoNLL-U (UPOS column) to ``path``."""
    from lstm_onnx.runtime.conllu import format_conllu

    path.write_text("".join(format_conllu(w, t, sent_id=str(i)) for i, (w, t) in enumerate(rows)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def tiny_tag_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with tiny-train.conllu (60 sentences), tiny-dev.conllu (12) and tiny-test.conllu (12)."""
    folder = tmp_path_factory.mktemp("tag_data")
    for split, n, seed in (("train", 60, 0), ("dev", 12, 1), ("test", 12, 2)):
        write_conllu(folder / f"tiny-{split}.conllu", make_tagged(n, seed))
    return folder


@pytest.fixture(scope="session")
def tiny_tag_run_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tag_data: Path) -> Path:
    """A tagging run trained with the ``tiny`` tagging preset on ``tiny_tag_data``. Read-only."""
    from lstm_onnx.trainer.progress import NullProgress
    from lstm_onnx.trainer.tag_cli import train_tag

    run_dir = tmp_path_factory.mktemp("tag_run") / "run"
    train_tag(tiny_tag_data, run_dir, "tiny", {}, None, False, None, "upos", NullProgress())
    return run_dir


@pytest.fixture(scope="session")
def tiny_tag_bundle_dir(tmp_path_factory: pytest.TempPathFactory, tiny_tag_run_dir: Path, tiny_tag_data: Path) -> Path:
    """The fp32 tagging bundle exported and parity-checked (on ``tiny_tag_data``'s test split). Read-only."""
    from lstm_onnx.exporter.config import ExportConfig
    from lstm_onnx.exporter.tagger_bundle import export_tagger_bundles

    out = tmp_path_factory.mktemp("tag_bundle") / "bundle"
    export_tagger_bundles(ExportConfig(run_dir=tiny_tag_run_dir, out=out, data=tiny_tag_data))
    return out
