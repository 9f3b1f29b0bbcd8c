"""Issue 15, "Security": symlinks out of the indexed folders, terminal control sequences from
documents and file names, secrets in `config show`. Real CLI processes and index files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from vrtest import Isolated, run_cli

SECRET = "The vault combination is 31-41-59 and only the owner knows it."


def indexed_keys(data_dir: Path, name: str = "default") -> list[str]:
    index = data_dir / "indexes" / name
    generation = (index / "CURRENT").read_text(encoding="utf-8").strip()
    db = sqlite3.connect(f"file:{index / generation / 'chunks.sqlite'}?mode=ro", uri=True)
    try:
        return sorted(row[0] for row in db.execute("SELECT key FROM files"))
    finally:
        db.close()


@pytest.mark.slow
def test_symlinks_out_of_the_folder_need_follow_symlinks(isolated_env: Isolated, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.txt").write_text("The guide explains how to water tomatoes.", encoding="utf-8")
    (docs / "alias.txt").symlink_to(docs / "guide.txt")  # inside the folder: the same file, once
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    (docs / "leak.txt").symlink_to(outside / "secret.txt")
    (docs / "elsewhere").symlink_to(outside, target_is_directory=True)
    guide = str((docs / "guide.txt").resolve())

    plain = run_cli("index", docs, "--json")
    assert plain.code == 0, plain
    assert indexed_keys(isolated_env.data_dir) == [guide]
    assert any("leak.txt" in note and "--follow-symlinks" in note for note in plain.json()["skipped"]), plain

    followed = run_cli("index", docs, "--follow-symlinks", "--json")
    assert followed.code == 0, followed
    leak = f"{docs.resolve()}/leak.txt"
    through_folder = f"{docs.resolve()}/elsewhere/secret.txt"
    assert indexed_keys(isolated_env.data_dir) == sorted([guide, leak, through_folder])

    # without the flag again: what came in through the links goes out
    again = run_cli("index", docs, "--json")
    assert again.code == 0 and again.json()["removed"] == 2, again
    assert indexed_keys(isolated_env.data_dir) == [guide]

    # a followed link that is deleted is removed on the next run
    assert run_cli("index", docs, "--follow-symlinks", "--json").code == 0
    (docs / "leak.txt").unlink()
    gone = run_cli("index", docs, "--follow-symlinks", "--json")
    assert gone.code == 0 and gone.json()["removed"] == 1, gone
    assert leak not in indexed_keys(isolated_env.data_dir)


def test_control_sequences_never_reach_the_terminal(isolated_env: Isolated, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    hostile = (
        "Tomatoes need \x1b]0;owned title\x07deep watering \x1b[2J\x1b[31mtwice a week\x1b[0m in summer. "
        "Basil likes\r the same\x08 care."
    )
    (docs / "garden\x1b[5mblink.txt").write_text(hostile, encoding="utf-8")
    indexed = run_cli("index", docs)
    assert indexed.code == 0, indexed
    assert "\x1b" not in indexed.stdout + indexed.stderr

    shown = run_cli("ask", "--text", "how often do tomatoes need watering?")
    assert shown.code == 0, shown
    for control in ("\x1b", "\x07", "\x08", "\r"):
        assert control not in shown.stdout + shown.stderr, repr(control)
    assert "twice a week" in shown.stdout and "gardenblink.txt" in shown.stdout

    exact = run_cli("ask", "--text", "how often do tomatoes need watering?", "--json")
    payload = exact.json()
    assert "\x1b[2J" in payload["sources"][0]["text"]  # JSON stays exact (escaped by json)
    assert payload["sources"][0]["source"].endswith("garden\x1b[5mblink.txt")


def test_config_show_never_prints_secrets(isolated_env: Isolated) -> None:
    env = {
        "VOICERAG_INDEX__STORE": "milvus://admin:s3cr3t-pw@db.internal:19530/papers",
        "VOICERAG_OPENAI__BASE_URL": "https://bob:hunter2@llm.internal/v1",
        "VOICERAG_OPENAI__API_KEY_ENV": "sk-live-abcdef123456",  # a key pasted where its variable's name belongs
    }
    text = run_cli("config", "show", env=env)
    as_json = run_cli("config", "show", "--json", env=env)
    assert text.code == 0 and as_json.code == 0, (text, as_json)
    for secret in ("s3cr3t-pw", "hunter2", "sk-live-abcdef123456"):
        assert secret not in text.stdout + text.stderr and secret not in as_json.stdout, secret
    settings = json.loads(as_json.stdout)["settings"]
    assert settings["index"]["store"] == "milvus://admin:***@db.internal:19530/papers"
    assert settings["openai"]["base_url"] == "https://bob:***@llm.internal/v1"
    assert settings["openai"]["api_key_env"] == "***"
    assert 'store = "milvus://admin:***@db.internal:19530/papers"' in text.stdout
    # an ordinary variable name is shown as it is
    plain = run_cli("config", "show", "--json", env={"VOICERAG_OPENAI__API_KEY_ENV": "MY_KEY"})
    assert json.loads(plain.stdout)["settings"]["openai"]["api_key_env"] == "MY_KEY"
