"""The model card (a bundle's README.md), rendered from the bundle's own manifest and config alone.

Because the card is a function of ``manifest.json`` and ``config.json``, anything that rewrites those (export,
``lstm-onnx relabel``, ``lstm-onnx package``) renders it again and the card can never disagree with the model. It
opens with a YAML metadata block in the Hugging Face model-card style; every value there is written in JSON flow
style (valid YAML), so it parses the same everywhere and needs no YAML library to write.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from lstm_onnx.runtime.bundle import Manifest

__all__ = ["IMDB_CITATION", "render_card", "weights_line"]

IMDB_CITATION = """@inproceedings{maas-etal-2011-learning,
  title = {Learning Word Vectors for Sentiment Analysis},
  author = {Maas, Andrew L. and Daly, Raymond E. and Pham, Peter T. and Huang, Dan and Ng, Andrew Y. and
            Potts, Christopher},
  booktitle = {Proceedings of the 49th Annual Meeting of the Association for Computational Linguistics:
               Human Language Technologies},
  year = {2011},
  address = {Portland, Oregon, USA},
  publisher = {Association for Computational Linguistics},
  pages = {142--150},
  url = {https://aclanthology.org/P11-1015}
}"""
_IMDB_HUB_ID = "stanfordnlp/imdb"
_EXAMPLE = "A moving, beautifully acted film."
_METRICS = ("accuracy", "precision", "recall", "f1")


def _is_imdb(record: Any) -> bool:
    return isinstance(record, dict) and str(record.get("format", "")).startswith("imdb")


def _data_label(record: Any) -> str:
    """One line naming a data record: its name, short digest and size (never a path)."""
    if not isinstance(record, dict):
        return "not recorded"
    digest = record.get("sha256") or record.get("listing_sha256")
    what = f"`{record.get('name')}`"
    if digest:
        kind = "sha256" if record.get("sha256") else "sha256 of its file listing"
        what += f" ({kind} `{str(digest)[:12]}…`)"
    if record.get("split"):
        what += f", {record['split']} split"
    if record.get("texts") is not None:
        what += f", {record['texts']} texts"
    return what


def _metadata(manifest: Manifest, labels: list[str]) -> dict[str, Any]:
    data = manifest.data or {}
    imdb = _is_imdb(data.get("train"))
    test = (manifest.metrics or {}).get("run_test") or {}
    tags = ["lstm-onnx", "onnx", "bilstm", "text-classification", manifest.export.get("variant", "fp32")]
    if imdb:
        tags.append("sentiment-analysis")
    meta: dict[str, Any] = {
        "library_name": "lstm-onnx",
        "pipeline_tag": "text-classification",
        "language": ["en"],
        "license": "unknown",
        "tags": tags,
    }
    if imdb:
        meta["datasets"] = [_IMDB_HUB_ID]
    values = [{"type": name, "value": round(float(test[name]), 4)} for name in _METRICS if name in test]
    if values:
        meta["metrics"] = [v["type"] for v in values]
        test_record = data.get("test")
        test_name = test_record.get("name") if isinstance(test_record, dict) else None
        dataset = (
            {"name": "IMDB", "type": _IMDB_HUB_ID, "split": "test"}
            if imdb
            else {"name": str(test_name or "held-out test set"), "type": "custom"}
        )
        task = {"type": "text-classification", "name": "Text Classification"}
        meta["model-index"] = [
            {"name": manifest.name, "results": [{"task": task, "dataset": dataset, "metrics": values}]}
        ]
    meta["widget"] = [{"text": _EXAMPLE}]
    meta["labels"] = labels
    return meta


def _yaml_block(meta: dict[str, Any]) -> list[str]:
    return ["---", *(f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in meta.items()), "---"]


def _metrics_table(manifest: Manifest, labels: list[str]) -> list[str]:
    metrics = manifest.metrics or {}
    rows = ["| evaluated on | texts | accuracy | precision | recall | F1 |", "| --- | --- | --- | --- | --- | --- |"]
    test = metrics.get("run_test")
    if test:
        rows.append(
            f"| PyTorch, the run's test set | {test.get('n')} | {test['accuracy']:.4f} | {test['precision']:.4f} "
            f"| {test['recall']:.4f} | {test['f1']:.4f} |"
        )
    checked = metrics.get("verify_data")
    if checked and checked.get("accuracy") is not None:
        rows.append(
            f"| this bundle on ONNX Runtime CPU, {_data_label(checked.get('source'))} "
            f"| {checked.get('labelled_texts')} | {checked['accuracy']:.4f} "
            f"(PyTorch {checked['torch_accuracy']:.4f}) | | | |"
        )
    if len(rows) == 2:
        return ["No test metrics were recorded."]
    digest = manifest.export.get("weights_sha256")
    if test and isinstance(digest, str):
        rows += ["", weights_line(digest)]
    matrix = (test or {}).get("confusion_matrix")
    if matrix and len(matrix) == len(labels):
        rows += ["", "Confusion matrix of the run's test set (rows: true, columns: predicted):", ""]
        rows += ["| | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
        pairs = zip(labels, matrix, strict=True)
        rows += [f"| {label} | " + " | ".join(str(v) for v in row) + " |" for label, row in pairs]
    return rows


def weights_line(weights_sha256: str) -> str:
    """The card's sentence tying the run's test metrics to the weights exported (their sha256, checked at export)."""
    return (
        f"The run's test metrics are those of the weights exported here (`model.safetensors` sha256 "
        f"`{weights_sha256[:12]}…`, as recorded when training wrote them and checked at export)."
    )


def _criteria(parity: dict[str, Any]) -> str:
    """The pass criteria in words: the manifest's atol/rtol, else the first backend's recorded criteria."""
    if parity.get("atol") is not None:
        return f"atol {parity.get('atol')}, rtol {parity.get('rtol')} on logits, identical labels"
    backends = [b for b in (parity.get("backends") or {}).values() if isinstance(b, dict)]
    criteria: dict[str, Any] = next((b["criteria"] for b in backends if isinstance(b.get("criteria"), dict)), {})
    parts = []
    if criteria.get("min_label_agreement") is not None:
        parts.append(f"label agreement ≥ {float(criteria['min_label_agreement']):.0%}")
    if criteria.get("max_prob_diff") is not None:
        share = criteria.get("prob_quantile")
        scope = f" for {float(share):.0%} of texts" if share is not None else ""
        parts.append(f"|Δprob| ≤ {criteria['max_prob_diff']}{scope}")
    return ", ".join(parts) or "see manifest.json"


def _parity_table(manifest: Manifest) -> list[str]:
    parity = manifest.parity
    rows = [
        f"Passed: **{parity.get('passed')}** ({_criteria(parity)}; every criterion in manifest.json).",
        "",
        "| backend | status | max abs Δlogit | max abs Δprob | labels agree | texts |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, b in (parity.get("backends") or {}).items():
        if not isinstance(b, dict):
            continue
        status = str(b.get("status"))
        if status in ("skipped", "not verifiable"):  # nothing was compared: no figures to show
            reason = str(b.get("reason", "")).removeprefix(f"{status}: ")
            rows.append(f"| {name} | {status}: {reason} | | | | |")
            continue
        rows.append(
            f"| {name} | {status} | {float(b.get('max_abs_diff') or 0):.2g} "
            f"| {float(b.get('max_prob_diff') or 0):.2g} | {float(b.get('label_agreement') or 0):.2%} "
            f"| {b.get('texts')} |"
        )
    return rows


def _data_section(manifest: Manifest) -> list[str]:
    data = manifest.data
    if not data:
        return ["Not recorded (the run was trained before lstm-onnx recorded its data)."]
    lines = [
        f"- Trained on {_data_label(data.get('train'))} ({data.get('train_texts')} for training, "
        f"{data.get('val_texts')} held out for validation).",
        f"- Tested on {_data_label(data.get('test'))}.",
    ]
    if data.get("embeddings"):
        lines.append(f"- Initial word vectors: {_data_label(data.get('embeddings'))}.")
    if _is_imdb(data.get("train")):
        lines += [
            "",
            "The data is the Large Movie Review Dataset (IMDB, 50,000 labelled reviews). Cite it as:",
            "",
            "```bibtex",
            IMDB_CITATION,
            "```",
        ]
    else:
        lines += ["", "Cite the data's source when you publish this model."]
    return lines


def render_card(manifest: Manifest, config: dict[str, Any], load_name: str) -> str:
    """Render the model card (Markdown with a YAML metadata block) of a bundle.

    Args:
        manifest: The bundle's manifest (its ``files`` are not used, so it can be rendered before checksums exist).
        config: The bundle's ``config.json`` (labels, model and tokenizer settings).
        load_name: What the usage snippet passes to ``lstm_onnx.load``: the bundle directory's name, or the name of
            the installed model package (quoted for the shell and for Python, so any folder name runs as written).

    Returns:
        The card's text.
    """
    labels = [str(label) for label in config.get("labels", [])]
    model = config.get("model") or {}
    max_length = (config.get("tokenizer") or {}).get("max_length")
    max_chars = (config.get("tokenizer") or {}).get("max_chars")
    variant = manifest.export.get("variant", config.get("variant", "fp32"))
    lines = [
        *_yaml_block(_metadata(manifest, labels)),
        "",
        f"# {manifest.name} {manifest.version} ({variant})",
        "",
        f"A {'bi' if model.get('bidirectional', True) else 'uni'}directional LSTM text classifier exported to ONNX "
        f"and served by ONNX Runtime without PyTorch. Labels: {', '.join(f'`{x}`' for x in labels)}. Embedding "
        f"{model.get('embedding_dim')}, hidden {model.get('hidden_size')}, {model.get('num_layers')} layer(s), "
        f"pooling {model.get('pooling')}, vocabulary of {model.get('vocab_size')} tokens; made with lstm-onnx "
        f"{manifest.versions.get('toolkit')}.",
        "",
        "## Usage",
        "",
        "```bash",
        "pip install 'lstm-onnx[cpu]'",
        f'lstm-onnx predict {shlex.quote(load_name)} "{_EXAMPLE}"',
        "```",
        "",
        "```python",
        "import lstm_onnx",
        "",
        f"model = lstm_onnx.load({json.dumps(load_name, ensure_ascii=False)})",
        f'prediction = model.predict(["{_EXAMPLE}"])[0]',
        "print(prediction.label, round(prediction.score, 3))",
        "```",
        "",
        "## Data",
        "",
        *_data_section(manifest),
        "",
        "## Metrics",
        "",
        *_metrics_table(manifest, labels),
        "",
        "## Parity with PyTorch",
        "",
        *_parity_table(manifest),
        "",
        "## Limits",
        "",
        "- English text, tokenized by spaCy's rules (tokenizer.json); other languages and domains are untested.",
        "- Every text needs at least one token; "
        + (
            f"texts longer than {max_length} tokens are rejected unless truncation is asked for."
            if max_length
            else "there is no token limit (cost grows linearly with length)."
        )
        + (
            f" Texts over {max_chars:,} characters are rejected before tokenizing unless truncation is asked for "
            "(raise the limit with `max_chars=` / `--max-chars`)."
            if isinstance(max_chars, int)
            else ""
        ),
        "- Sarcasm, negation over long spans and mixed opinions are weak spots of a word-level LSTM.",
        "- `license` is `unknown` until you set it: the weights' license is the model owner's choice, within the "
        "data's terms.",
    ]
    if variant == "int8":
        lines.append(
            "- int8: activations are quantized per batch, so a text's scores may depend slightly on its batch "
            "neighbours (label agreement with PyTorch is in the parity table)."
        )
    else:
        lines.append(
            "- A text's scores do not depend on its batch neighbours (padding is masked); those of an int8 variant "
            "can, slightly, because it quantizes activations per batch."
        )
    if variant in ("optimized", "int8"):
        lines.append("- Holds ONNX Runtime contrib ops: serve it with ONNX Runtime (CPU).")
    return "\n".join(lines) + "\n"
