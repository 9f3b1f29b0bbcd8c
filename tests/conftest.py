"""Fixtures: every test runs against its own data dir and a config file that does not exist,
so the real user directories are never touched; speech comes from espeak-ng; a demo index
over examples/docs is built once per session."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from voicerag_cli.models.pinned import stamps_in
from vrtest import EXAMPLES, REPO, DemoIndex, Isolated, espeak_wav, run_cli

sys.path.insert(0, str(REPO))  # the training pipelines (training/speech) live beside the package

if TYPE_CHECKING:
    from voicerag_cli.registry import Registry


@pytest.fixture(scope="session", autouse=True)
def model_stamps(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The bundled model files checked against their pins once for the whole run (models/pinned.py);
    each test's cache starts with a copy of these stamps, so the hundreds of CLI runs do not each
    hash 200 MB again. The default cache (platformdirs) is a session folder too, never the user's."""
    from voicerag_cli.errors import ModelError
    from voicerag_cli.models.bundled import BUNDLES
    from voicerag_cli.models.pinned import bundle_present, verified_folder

    user_cache = tmp_path_factory.mktemp("user-cache")
    stamps = stamps_in(user_cache / "voicerag")
    stamps.mkdir(parents=True)
    for bundle in BUNDLES:
        if bundle_present(bundle):
            with contextlib.suppress(ModelError):  # test_pinned_models.py reports a mismatch
                verified_folder(bundle, stamps)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(user_cache))
        yield stamps


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_stamps: Path) -> Isolated:
    """No VOICERAG_* variable from outside leaks in; data, config and cache point into tmp_path."""
    for name in list(os.environ):
        if name.startswith("VOICERAG_"):
            monkeypatch.delenv(name)
    # The config file is the default one under an isolated XDG_CONFIG_HOME: VOICERAG_CONFIG
    # naming a missing file is an error, so it stays unset.
    isolated = Isolated(tmp_path / "data", tmp_path / "config" / "voicerag" / "config.toml", tmp_path / "cache")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("VOICERAG_DATA_DIR", str(isolated.data_dir))
    monkeypatch.setenv("VOICERAG_CACHE_DIR", str(isolated.cache_dir))
    shutil.copytree(model_stamps, stamps_in(isolated.cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # prove nothing is downloaded
    return isolated


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """speech(text, voice="en-us") -> a WAV spoken by espeak-ng (cached for the session)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is required (apt-get install espeak-ng)")
    folder = tmp_path_factory.mktemp("speech")

    def make(text: str, voice: str = "en-us") -> Path:
        key = hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()[:16]
        path = folder / f"{key}.wav"
        if not path.exists():
            espeak_wav(text, path, voice)
        return path

    return make


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory) -> DemoIndex:
    """examples/docs indexed once through the CLI, under a session data dir."""
    root = tmp_path_factory.mktemp("demo")
    demo = DemoIndex(root / "data", "default", EXAMPLES)
    result = run_cli(
        "index",
        EXAMPLES,
        "--json",
        inherit=False,
        env={"VOICERAG_DATA_DIR": str(demo.data_dir), "VOICERAG_CONFIG": os.devnull},
    )
    assert result.code == 0, result
    summary = result.json()
    assert summary["files"] == 4 and summary["chunks"] > 0, result
    return demo


@pytest.fixture
def on_demo_index(demo_index: DemoIndex, monkeypatch: pytest.MonkeyPatch) -> DemoIndex:
    """Point this test's VOICERAG_DATA_DIR at the session's demo index."""
    monkeypatch.setenv("VOICERAG_DATA_DIR", str(demo_index.data_dir))
    return demo_index


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """The embedded default models, loaded in this process once (for in-process tests)."""
    from voicerag_cli.config import Settings
    from voicerag_cli.registry import Registry

    yield Registry(Settings())


@pytest.fixture
def torch_one_thread() -> Iterator[None]:
    """The CI machine's cores are shared: oversubscribed threads make tiny models 10x slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
