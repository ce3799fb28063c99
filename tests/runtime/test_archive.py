"""Bundles load from .zip / .tar.gz archives, extracted safely; hostile archives are refused with a clear error."""

from __future__ import annotations

import gzip
import shutil
import stat
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from lstm_onnx.cli import app
from lstm_onnx.runtime.archive import bundle_directory
from lstm_onnx.runtime.bundle import load_bundle
from lstm_onnx.runtime.errors import BundleError
from lstm_onnx.runtime.predictor import TextClassifier

TEXTS = ["A wonderful, moving film.", "Boring and awful.", "The plot was quite fun"]


@pytest.fixture()
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Route temporary directories to a folder of this test, to see that extraction leaves nothing behind."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    yield folder


def _zip_dir(bundle: Path, out: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(bundle.iterdir()):
            zf.write(file, prefix + file.name)
    return out


def _tar_dir(bundle: Path, out: Path, arcname: str) -> Path:
    with tarfile.open(out, "w:gz") as tf:
        tf.add(bundle, arcname=arcname)
    return out


@pytest.fixture()
def moved_bundle(tiny_bundle_dir: Path, tmp_path: Path) -> Path:
    """The tiny bundle moved to another path (the place it was built is gone from view)."""
    return Path(shutil.move(shutil.copytree(tiny_bundle_dir, tmp_path / "built" / "b"), tmp_path / "moved"))


@pytest.mark.parametrize("kind", ["zip-top-level", "zip-one-folder", "tar.gz-one-folder", "tgz-top-level"])
def test_load_bundle_archive_predicts_like_directory(
    kind: str, moved_bundle: Path, tmp_path: Path, tiny_model: TextClassifier, private_tmp: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if kind == "zip-top-level":
        archive = _zip_dir(moved_bundle, elsewhere / "model.zip")
    elif kind == "zip-one-folder":
        archive = _zip_dir(moved_bundle, elsewhere / "model.zip", prefix="sentiment/")
    elif kind == "tar.gz-one-folder":
        archive = _tar_dir(moved_bundle, elsewhere / "model.tar.gz", "sentiment")
    else:
        archive = _tar_dir(moved_bundle, elsewhere / "model.tgz", ".")
    shutil.rmtree(moved_bundle)
    model = TextClassifier.load(archive, providers="cpu")
    assert model.bundle.path == archive
    assert list(private_tmp.iterdir()) == []  # the extraction is gone; the session holds the model in memory
    np.testing.assert_allclose(model.predict_proba(TEXTS), tiny_model.predict_proba(TEXTS), atol=1e-6)
    assert [p.label for p in model.predict(TEXTS)] == [p.label for p in tiny_model.predict(TEXTS)]


def test_lstm_onnx_load_and_cli_accept_archive(moved_bundle: Path, tmp_path: Path) -> None:
    import lstm_onnx

    archive = _zip_dir(moved_bundle, tmp_path / "m.zip")
    direct = lstm_onnx.load(moved_bundle, providers="cpu").predict(TEXTS)
    assert lstm_onnx.load(archive, providers="cpu").predict(TEXTS) == direct
    result = CliRunner().invoke(app, ["predict", str(archive), *TEXTS])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == CliRunner().invoke(app, ["predict", str(moved_bundle), *TEXTS]).stdout
    info = CliRunner().invoke(app, ["info", str(archive), "--format", "json"])
    assert info.exit_code == 0 and '"sentiment-bilstm"' in info.stdout


def test_load_bundle_archive_checksum_error_names_the_archive(bundle_copy: Path, tmp_path: Path) -> None:
    (bundle_copy / "vocab.txt").write_text("changed\n", encoding="utf-8")
    archive = _zip_dir(bundle_copy, tmp_path / "bad.zip")
    with pytest.raises(BundleError, match=r"Checksum mismatch for vocab.txt") as err:
        load_bundle(archive)
    assert str(archive) in str(err.value) and "lstm-onnx-bundle-" not in str(err.value)


def _tar_with(tmp_path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    """A .tar.gz of one member, its header written as declared (a size may be a lie) and ``data`` after it."""
    out = tmp_path / "hostile.tar.gz"
    padding = b"\0" * (-len(data) % tarfile.BLOCKSIZE)
    out.write_bytes(gzip.compress(member.tobuf(format=tarfile.GNU_FORMAT) + data + padding + b"\0" * 1024))
    return out


def _member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = kind, size, link
    return info


@pytest.mark.parametrize(
    ("member", "phrase"),
    [
        (_member("/etc/manifest.json", size=2), "absolute or non-portable"),
        (_member("../manifest.json", size=2), "outside the archive"),
        (_member("b/../../x", size=2), "outside the archive"),
        (_member("manifest.json", tarfile.SYMTYPE, link="/etc/passwd"), "a link or special file"),
        (_member("manifest.json", tarfile.LNKTYPE, link="other"), "a link or special file"),
        (_member("dev", tarfile.CHRTYPE), "a link or special file"),
        (_member("fifo", tarfile.FIFOTYPE), "a link or special file"),
        (_member("huge.bin", size=10**12), "unpacks to more than"),
    ],
    ids=["absolute", "dotdot", "nested-dotdot", "symlink", "hardlink", "device", "fifo", "declared-bomb"],
)
def test_load_bundle_refuses_hostile_tar(member: tarfile.TarInfo, phrase: str, tmp_path: Path) -> None:
    # The bomb member declares a terabyte but holds nothing: it must be refused from its header alone.
    archive = _tar_with(tmp_path, member, b"{}" if member.isfile() and member.size == 2 else b"")
    with pytest.raises(BundleError, match=phrase):
        load_bundle(archive)


def test_load_bundle_refuses_zip_symlink(tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("manifest.json")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(BundleError, match="a link or special file"):
        load_bundle(archive)


@pytest.mark.parametrize(("name", "phrase"), [("/abs.txt", "absolute"), ("a/../../x", "outside"), ("a\\b", "portable")])
def test_load_bundle_refuses_zip_bad_names(name: str, phrase: str, tmp_path: Path) -> None:
    archive = tmp_path / "names.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(zipfile.ZipInfo(name), "x")
    with pytest.raises(BundleError, match=phrase):
        load_bundle(archive)


def test_bundle_directory_refuses_too_many_members(tmp_path: Path) -> None:
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(70):
            zf.writestr(f"f{i}.txt", "x")
    with pytest.raises(BundleError, match="more than 64 members"):
        load_bundle(archive)


def test_bundle_directory_counts_real_bytes(tiny_bundle_dir: Path, tmp_path: Path) -> None:
    archive = _zip_dir(tiny_bundle_dir, tmp_path / "b.zip")
    with (
        pytest.raises(BundleError, match="unpacks to more than 1000 bytes"),
        bundle_directory(archive, max_unpacked_bytes=1000),
    ):
        pass  # pragma: no cover


def test_zip_bomb_refused_while_extracting(tmp_path: Path, private_tmp: Path) -> None:
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("zeros.bin", b"\0" * (4 << 20))  # 4 MiB of zeros deflate to a few KiB
    assert archive.stat().st_size < 64 << 10
    with (
        pytest.raises(BundleError, match="unpacks to more than"),
        bundle_directory(archive, max_unpacked_bytes=1 << 20),
    ):
        pass  # pragma: no cover
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "name", "phrase"),
    [
        (b"not a zip", "b.zip", "Cannot read the archive"),
        (b"\x1f\x8bnot gzip", "b.tar.gz", "Cannot read the archive"),
        (b"x", "b.onnx", "is a file, not a bundle"),
    ],
)
def test_load_bundle_refuses_corrupt_or_unknown_file(content: bytes, name: str, phrase: str, tmp_path: Path) -> None:
    (tmp_path / name).write_bytes(content)
    with pytest.raises(BundleError, match=phrase):
        load_bundle(tmp_path / name)


def test_load_bundle_refuses_archive_without_bundle(tmp_path: Path) -> None:
    archive = tmp_path / "two.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/manifest.json", "{}")
        zf.writestr("b/manifest.json", "{}")
    with pytest.raises(BundleError, match="holds no bundle: expected manifest.json"):
        load_bundle(archive)
