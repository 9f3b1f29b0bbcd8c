"""Configuration: layering (defaults < file < env < flags), errors that name the key (exit 6),
and `voicerag config path|show|init`."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from voicerag_cli.config import Settings, load_settings
from voicerag_cli.errors import ConfigError, ExitCode
from voicerag_cli.models.openai_http import OpenAIConfig
from vrtest import Isolated, assert_error, run_cli


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_layers_in_process(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", '[ask]\nk = 3\nrag = "asr"\n[index]\nchunk_words = 50\nbatch_size = 8\n')
    environ = {"VOICERAG_ASK__K": "4", "VOICERAG_INDEX__BATCH_SIZE": "16", "UNRELATED": "x"}

    file_only = load_settings(config, environ={})
    assert (file_only.ask.k, file_only.index.chunk_words, file_only.index.batch_size) == (3, 50, 8)
    assert file_only.index.overlap_words == Settings().index.overlap_words  # untouched keys keep defaults
    assert file_only.source == str(config)

    with_env = load_settings(config, environ=environ)
    assert (with_env.ask.k, with_env.index.chunk_words, with_env.index.batch_size) == (4, 50, 16)

    with_flags = load_settings(config, environ=environ, overrides={"ask.k": 6, "index.batch_size": None})
    assert with_flags.ask.k == 6  # a flag beats env and file
    assert with_flags.index.batch_size == 16  # an unset flag (None) does not override


def test_env_values_are_parsed_from_text() -> None:
    settings = load_settings(
        None,
        environ={
            "VOICERAG_CONFIG": os.devnull,  # reserved: not a setting (an empty file)
            "VOICERAG_CHAT__BARGE_IN": "off",
            "VOICERAG_INDEX__EXTENSIONS": ".txt, .md",
            "VOICERAG_OPENAI__TEMPERATURE": "0.5",
            "VOICERAG_DATA_DIR": "/tmp/somewhere",
        },
    )
    assert settings.chat.barge_in is False
    assert settings.index.extensions == [".txt", ".md"]
    assert settings.section(OpenAIConfig).temperature == 0.5
    assert settings.paths.data_dir == "/tmp/somewhere"


def test_file_env_and_flag_layers_through_the_cli(isolated_env: Isolated, tmp_path: Path) -> None:
    write_config(
        isolated_env.config_file, '[ask]\nk = 3\n[index]\nchunk_words = 50\n[paths]\ndata_dir = "/from/file"\n'
    )
    shown = run_cli("config", "show", "--json", env={"VOICERAG_ASK__K": "7"})
    assert shown.code == 0, shown
    payload = shown.json()
    assert payload["source"] == str(isolated_env.config_file)
    settings = payload["settings"]
    assert settings["ask"]["k"] == 7  # env beats file
    assert settings["index"]["chunk_words"] == 50  # file beats default
    assert settings["paths"]["data_dir"] == str(isolated_env.data_dir)  # VOICERAG_DATA_DIR beats the file

    flagged = run_cli("--data-dir", tmp_path / "flag-data", "config", "show", "--json")
    assert flagged.code == 0, flagged
    assert flagged.json()["settings"]["paths"]["data_dir"] == str(tmp_path / "flag-data")  # flag beats env

    other = write_config(tmp_path / "other.toml", "[ask]\nk = 9\n")
    explicit = run_cli("--config", other, "config", "show", "--json")
    assert explicit.code == 0, explicit
    assert explicit.json()["settings"]["ask"]["k"] == 9  # --config beats VOICERAG_CONFIG
    assert explicit.json()["source"] == str(other)


def test_profiles_builtin_user_env_and_flag(tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "c.toml",
        '[ask]\nk = 3\n[profiles.big.ask]\nk = 9\nrag = "e2e"\n[profiles.big.asr]\nbeam_size = 5\n',
    )
    plain = load_settings(config, environ={})
    assert (plain.profile, plain.models.text_embedder, plain.ask.k) == ("default", "minilm", 3)

    sonar = load_settings(config, environ={}, profile="sonar")  # built in
    assert (sonar.models.text_embedder, sonar.models.speech_embedder) == ("sonar", "sonar")

    big = load_settings(config, environ={"VOICERAG_PROFILE": "big"})  # from the file, chosen by env
    assert (big.profile, big.ask.k, big.ask.rag, big.asr.beam_size) == ("big", 9, "e2e", 5)
    # the profile sits above the file, below the environment and flags
    layered = load_settings(config, environ={"VOICERAG_PROFILE": "big", "VOICERAG_ASK__K": "4"})
    assert (layered.ask.k, layered.ask.rag) == (4, "e2e")
    assert load_settings(config, environ={}, profile="big", overrides={"ask.rag": "asr"}).ask.rag == "asr"
    # a --profile flag beats VOICERAG_PROFILE
    assert load_settings(config, environ={"VOICERAG_PROFILE": "big"}, profile="sonar").profile == "sonar"


def test_bad_profiles_are_config_errors(isolated_env: Isolated) -> None:
    unknown = run_cli("models", "--profile", "nope")
    assert_error(unknown, ExitCode.CONFIG, "unknown profile 'nope'", "sonar")
    write_config(isolated_env.config_file, "[profiles.bad.ask]\nnot_a_key = 1\n")
    assert_error(run_cli("--profile", "bad", "models"), ExitCode.CONFIG, "ask.not_a_key", "profile 'bad'")
    shown = run_cli("config", "show", "--json", env={"VOICERAG_PROFILE": "sonar"})
    assert shown.code == 0, shown
    assert shown.json()["profile"] == "sonar"
    assert shown.json()["settings"]["models"]["text_embedder"] == "sonar"


def test_show_toml_round_trips(isolated_env: Isolated) -> None:
    result = run_cli("config", "show", env={"VOICERAG_TTS__RATE": "140"})
    assert result.code == 0, result
    assert result.stdout.startswith("# effective settings; file layer: defaults")
    parsed = tomllib.loads(result.stdout)
    expected = Settings().to_dict()
    expected["tts"]["rate"] = 140
    expected["paths"]["data_dir"] = str(isolated_env.data_dir)
    expected["paths"]["cache_dir"] = str(isolated_env.cache_dir)
    assert parsed == expected


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("[bogus]\nx = 1\n", "'bogus'"),
        ("[ask]\nkk = 1\n", "'ask.kk'"),
        ('[ask]\nk = "five"\n', "'ask.k'"),
        ("[ask]\nk = 0\n", "'ask.k'"),
        ("[generator]\nread_passages = 0\n", "'generator.read_passages'"),
        ('[ask]\nrag = "telepathy"\n', "'ask.rag'"),
        ("[index]\nchunk_words = 10\noverlap_words = 10\n", "'index.overlap_words'"),
        ("[tts]\npitch = 120\n", "'tts.pitch'"),
        ('[models]\nasr = "nope"\n', "'models.asr'"),
        ("[index]\nextensions = [1, 2]\n", "'index.extensions'"),
        ("ask = 3\n", "'ask'"),
        ('[index]\nname = "../escape"\n', "'index.name'"),
        ('[glm4voice]\nlm_runtime = "vllm"\n', "'glm4voice.lm_runtime'"),
        ('[glm4voice]\ncompile = "yes"\n', "'glm4voice.compile'"),
        ('[glm4voice]\nprompt_layout = "mine"\n', "'glm4voice.prompt_layout'"),
        ('[glm4voice]\nuser_template = "{question} only"\n', "'glm4voice.user_template'"),
        ("[glm4voice]\ntop_k = -2\n", "'glm4voice.top_k'"),
    ],
)
def test_bad_config_file_names_the_key(isolated_env: Isolated, toml: str, named: str) -> None:
    write_config(isolated_env.config_file, toml)
    assert_error(run_cli("config", "show"), ExitCode.CONFIG, named)


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("VOICERAG_ASK__NOPE", "1", "'ask.nope'"),
        ("VOICERAG_NOPE__K", "1", "'nope'"),
        ("VOICERAG_FOO", "1", "VOICERAG_FOO"),
        ("VOICERAG_ASK__K", "five", "'ask.k'"),
        ("VOICERAG_CHAT__BARGE_IN", "maybe", "'chat.barge_in'"),
        ("VOICERAG_ASK__ROUNDS", "3", "'ask.rounds'"),
        ("VOICERAG_MODELS__GENERATOR", "gpt", "'models.generator'"),
    ],
)
def test_bad_environment_names_the_key(variable: str, value: str, named: str) -> None:
    assert_error(run_cli("config", "show", env={variable: value}), ExitCode.CONFIG, named)


def test_bad_flag_value_is_a_usage_error_naming_the_flag(isolated_env: Isolated) -> None:
    # index --list loads settings with this command's flags; nothing is indexed
    for args, flag in (
        (["index", "--list", "--chunk-words", "0"], "'--chunk-words'"),
        (["ask", "--text", "hi", "--rag", "e3e"], "'--rag'"),
        (["ask", "--text", "hi", "-k", "0"], "'-k'"),
        (["ask", "--text", "hi", "--rounds", "3"], "'--rounds'"),
        (["ask", "--text", "hi", "--index", "docs\n"], "'--name / --index'"),
    ):
        result = run_cli(*args)
        assert result.code == ExitCode.USAGE, result
        assert f"Invalid value for {flag}" in result.stderr and "Traceback" not in result.stderr, result
        assert result.stdout == ""
    # the same value from the environment is a configuration error naming the key
    assert_error(run_cli("ask", "--text", "hi", env={"VOICERAG_ASK__K": "0"}), ExitCode.CONFIG, "'ask.k'")
    assert not isolated_env.data_dir.exists()
    with pytest.raises(ConfigError, match=r"'ask\.k'"):
        load_settings(None, environ={}, overrides={"ask.k": "five"})


def test_unreadable_and_missing_config_files(isolated_env: Isolated, tmp_path: Path) -> None:
    write_config(isolated_env.config_file, "[ask\nk = ")
    assert_error(run_cli("config", "show"), ExitCode.CONFIG, "cannot read config file", str(isolated_env.config_file))
    missing = tmp_path / "missing.toml"
    assert_error(run_cli("--config", missing, "config", "show"), ExitCode.CONFIG, "not found", str(missing))
    # VOICERAG_CONFIG names a file on purpose, like --config: a missing one is the same error
    for args in (["config", "show"], ["ask", "--text", "hi"], ["index", "--list"]):
        assert_error(
            run_cli(*args, env={"VOICERAG_CONFIG": str(missing)}), ExitCode.CONFIG, "not found", "VOICERAG_CONFIG"
        )
    # while `config init` creates it there
    assert run_cli("config", "init", env={"VOICERAG_CONFIG": str(missing)}).code == 0 and missing.exists()


def test_config_path(isolated_env: Isolated, tmp_path: Path) -> None:
    result = run_cli("config", "path")
    assert (result.code, result.stdout.strip()) == (0, str(isolated_env.config_file)), result
    flagged = run_cli("--config", tmp_path / "x.toml", "config", "path")
    assert (flagged.code, flagged.stdout.strip()) == (0, str(tmp_path / "x.toml")), flagged


def test_config_init_writes_defaults_and_refuses_to_overwrite(isolated_env: Isolated) -> None:
    target = isolated_env.config_file
    assert not target.exists()
    created = run_cli("config", "init")
    assert created.code == 0, created
    assert str(target) in created.stderr
    assert tomllib.loads(target.read_text(encoding="utf-8")) == Settings().to_dict()
    assert not list(target.parent.glob("*.tmp"))

    target.write_text("[ask]\nk = 2\n", encoding="utf-8")
    refused = run_cli("config", "init")
    assert_error(refused, ExitCode.CONFIG, "already exists", "--force")
    assert target.read_text(encoding="utf-8") == "[ask]\nk = 2\n"

    forced = run_cli("config", "init", "--force")
    assert forced.code == 0, forced
    assert tomllib.loads(target.read_text(encoding="utf-8")) == Settings().to_dict()
    # the written file is a valid config: loading it gives the defaults back
    assert load_settings(target, environ={}).to_dict() == Settings().to_dict()
