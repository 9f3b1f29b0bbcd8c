"""Installing Kokoro's other v1.0 voice styles from an npm tarball (kokoro-js's layout:
package/voices/NAME.bin, 510 x 256 float32): pinned checksums, an atomic replace, clear errors,
and each answer's default style by its language. Tarballs here are built in that layout with
random styles and pins made for them; the real package is used where one is at hand
(KOKORO_JS_TARBALL, which .ci/run sets when npm can fetch it)."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from voicerag_cli.errors import ExitCode, InputError, ModelError
from voicerag_cli.models import kokoro_voices
from voicerag_cli.models.kokoro_voices import STYLE_SHAPE, install, installed_path, load_installed
from vrtest import assert_error, run_cli

REAL_TARBALL = os.environ.get("KOKORO_JS_TARBALL", "")


def random_style(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 0.2, STYLE_SHAPE).astype("<f4")


def npm_tarball(path: Path, files: dict[str, bytes]) -> Path:
    """A gzip tarball with `files` under package/, as `npm pack` writes one."""
    with tarfile.open(path, "w:gz") as archive:
        for name, data in {"package.json": b'{"name": "kokoro-js"}', **files}.items():
            member = tarfile.TarInfo(f"package/{name}")
            member.size = len(data)
            archive.addfile(member, io.BytesIO(data))
    return path


def pins_of(files: dict[str, bytes]) -> dict[str, str]:
    return {Path(name).stem: hashlib.sha256(data).hexdigest() for name, data in files.items()}


def test_install_keeps_pinned_styles_only_and_replaces_the_set(tmp_path: Path) -> None:
    styles = {"voices/zf_test.bin": random_style(1).tobytes(), "voices/af_test.bin": random_style(2).tobytes()}
    pins = pins_of(styles)
    files = {
        **styles,
        "voices/unpinned.bin": random_style(3).tobytes(),  # not in this version's pins: ignored
        "voices/short.bin": b"\0" * 64,  # not a style table
        "dist/kokoro.js": b"export {}",
    }
    cache = tmp_path / "cache"
    assert load_installed(cache) == {}
    assert install(cache, npm_tarball(tmp_path / "a.tgz", files), pins=pins) == ["af_test", "zf_test"]
    loaded = load_installed(cache)
    assert sorted(loaded) == ["af_test", "zf_test"]
    np.testing.assert_array_equal(loaded["zf_test"], random_style(1))
    assert loaded["zf_test"].dtype == np.float32 and loaded["zf_test"].shape == STYLE_SHAPE
    # a second install replaces the whole set, leaving no partial file behind
    only = {"voices/zm_other.bin": random_style(4).tobytes()}
    install(cache, npm_tarball(tmp_path / "b.tgz", only), pins=pins_of(only))
    assert sorted(load_installed(cache)) == ["zm_other"]
    assert [p.name for p in installed_path(cache).parent.iterdir()] == ["voices.npz"]


def test_a_tampered_style_or_a_bad_tarball_is_refused_and_the_installed_set_kept(tmp_path: Path) -> None:
    good = {"voices/zf_test.bin": random_style(1).tobytes()}
    cache = tmp_path / "cache"
    install(cache, npm_tarball(tmp_path / "good.tgz", good), pins=pins_of(good))
    before = installed_path(cache).read_bytes()
    tampered = npm_tarball(tmp_path / "bad.tgz", {"voices/zf_test.bin": random_style(9).tobytes()})
    with pytest.raises(ModelError, match=r"zf_test .* does not match its pinned SHA-256"):
        install(cache, tampered, pins=pins_of(good))
    with pytest.raises(InputError, match="holds no Kokoro voice styles"):
        install(cache, npm_tarball(tmp_path / "none.tgz", {"README.md": b"hi"}), pins=pins_of(good))
    (tmp_path / "text.tgz").write_text("not a tarball", encoding="utf-8")
    with pytest.raises(InputError, match="not a readable npm tarball"):
        install(cache, tmp_path / "text.tgz", pins=pins_of(good))
    with pytest.raises(InputError, match="no such tarball"):
        install(cache, tmp_path / "absent.tgz", pins=pins_of(good))
    assert installed_path(cache).read_bytes() == before


def test_a_damaged_installed_set_names_its_remedy(tmp_path: Path) -> None:
    path = installed_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ModelError, match="voicerag voices --install"):
        load_installed(tmp_path)


@pytest.mark.slow
def test_each_answer_gets_its_languages_installed_default(tmp_path: Path) -> None:
    """With a Mandarin style installed, Chinese answers take it and English keeps the wheel's
    default; a configured tts.voice overrides both (the real int8 model renders each)."""
    from voicerag_cli.config import load_settings
    from voicerag_cli.registry import Registry

    styles = {"voices/zf_xiaobei.bin": random_style(5).tobytes()}
    cache = tmp_path / "cache"
    install(cache, npm_tarball(tmp_path / "v.tgz", styles), pins=pins_of(styles))
    overrides = {"models.tts": "kokoro", "paths.cache_dir": str(cache)}
    kokoro = Registry(load_settings(None, overrides=overrides)).tts()
    assert kokoro.default_voice("京沪高速铁路连接北京和上海。") == "zf_xiaobei"  # type: ignore[attr-defined]
    assert kokoro.default_voice("The library opens at nine.") == "jm_kumo"  # type: ignore[attr-defined]
    assert next(kokoro.stream("你好。")).size > 0  # type: ignore[attr-defined]
    configured = Registry(load_settings(None, overrides={**overrides, "tts.voice": "jf_alpha"})).tts()
    assert configured.voice == "jf_alpha"  # type: ignore[attr-defined]


def test_voices_command_lists_and_refuses_clearly(tmp_path: Path) -> None:
    listed = run_cli("voices", "--json")
    assert listed.code == 0, listed
    rows = {row["name"]: row for row in listed.json()["voices"]}
    assert set(rows) == {"jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo"}
    assert rows["jm_kumo"]["default_for"] == ["zh", "en"] and rows["jm_kumo"]["origin"] == "wheel"
    # a tarball whose zf_xiaobei is not kokoro-js's: exit 5, nothing installed
    fake = npm_tarball(tmp_path / "fake.tgz", {"voices/zf_xiaobei.bin": random_style(7).tobytes()})
    assert_error(run_cli("voices", "--install", "--from", fake), ExitCode.MODEL, "pinned sha-256")
    usage = run_cli("voices", "--from", fake)
    assert usage.code == ExitCode.USAGE and "add --install" in usage.stderr, usage
    assert len(run_cli("voices", "--json").json()["voices"]) == 5


@pytest.mark.slow
@pytest.mark.skipif(not Path(REAL_TARBALL).is_file(), reason="no kokoro-js tarball (KOKORO_JS_TARBALL)")
def test_the_real_package_installs_and_its_mandarin_voice_is_read_back(tmp_path: Path) -> None:
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.config import load_settings
    from voicerag_cli.eval.metrics import transcript_error
    from voicerag_cli.registry import Registry

    result = run_cli("voices", "--install", "--from", REAL_TARBALL, "--json")
    assert result.code == 0, result
    rows = {row["name"]: row for row in result.json()["voices"]}
    assert len(rows) == len(kokoro_voices.PINS) and rows["zf_xiaobei"]["default_for"] == ["zh"]
    cache = Path(os.environ["VOICERAG_CACHE_DIR"])
    np.testing.assert_array_equal(load_installed(cache)["jm_kumo"].reshape(-1, 256), load_wheel_kumo())
    kokoro = Registry(load_settings(None, overrides={"models.tts": "kokoro"})).tts()
    text = "京沪高速铁路连接北京和上海。"
    clip = read_audio(kokoro.synthesize(text, tmp_path / "zh.wav"))
    heard = Registry(load_settings(None, profile="zh")).asr().transcribe(clip.samples, clip.sample_rate).text
    assert transcript_error(heard, text)["cer"] <= 0.2, heard


def load_wheel_kumo() -> np.ndarray:
    from voicerag_cli.models.kokoro import load_voices

    return load_voices()[1]["jm_kumo"].reshape(-1, 256)
