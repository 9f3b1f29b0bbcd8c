"""Generator that calls any OpenAI-compatible chat-completions server (llama.cpp server,
vLLM, Ollama's /v1, a hosted API). Uses the standard library's HTTP client: one POST needs
no extra dependency."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from voicerag_cli.config_schema import at_most, in_range, positive, setting
from voicerag_cli.errors import BackendError, ConfigError
from voicerag_cli.models.base import Answer, Passage, Query
from voicerag_cli.models.weights_info import WeightsInfo

if TYPE_CHECKING:
    from voicerag_cli.config import Settings
    from voicerag_cli.models.base import Roles

SYSTEM_PROMPT = (
    "You answer questions using only the numbered passages provided. Answer briefly and cite the "
    "passages you used as [n]. If the passages do not contain the answer, say you do not know."
)
_CITATION = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class OpenAIConfig:
    """The `[openai]` config section. Every command's settings hold it, so this module imports
    urllib (70 ms) only when a request is sent."""

    # keys holding the name of an environment variable: `config show` hides a pasted key there
    ENV_NAME_KEYS: ClassVar[tuple[str, ...]] = ("api_key_env",)

    base_url: str = "http://127.0.0.1:8080/v1"
    model: str = ""
    api_key_env: str = "OPENAI_API_KEY"  # the name of the variable holding the key, never the key
    timeout_s: float = setting(60.0, in_range(0, 86_400, "must be > 0 and <= 86400 seconds", above=True))
    temperature: float = setting(0.0, in_range(0, 2))
    max_tokens: int = setting(256, positive(), at_most(10_000_000))  # past it: a typo that overflows the server's int


def build_messages(
    question: str, passages: list[Passage], history: list[tuple[str, str]] | None = None
) -> list[dict[str, str]]:
    """System prompt, earlier turns of the conversation, then the passages and the question."""
    context = "\n\n".join(f"[{i}] ({p.source})\n{p.text}" for i, p in enumerate(passages, start=1))
    messages = [{"role": "system", "content": SYSTEM_PROMPT}]
    for asked, answered in history or []:
        messages.append({"role": "user", "content": asked or "(spoken question)"})
        messages.append({"role": "assistant", "content": answered})
    messages.append({"role": "user", "content": f"Passages:\n{context}\n\nQuestion: {question}"})
    return messages


class OpenAICompatibleGenerator:
    def __init__(self, config: OpenAIConfig) -> None:
        self.config = config
        self.url = config.base_url.rstrip("/") + "/chat/completions"
        self.api_key = os.environ.get(config.api_key_env, "") if config.api_key_env else ""

    def generate(self, query: Query, passages: list[Passage]) -> Answer:
        if not query.text:
            raise BackendError("the openai generator needs the question as text (use --rag asr or --text)")
        question = query.text
        body = {
            "model": self.config.model,
            "messages": build_messages(question, passages, query.history),
            "temperature": self.config.temperature,
            "max_tokens": self.config.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        import urllib.error
        import urllib.request

        request = urllib.request.Request(self.url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.config.timeout_s) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:200].replace("\n", " ")
            raise BackendError(f"generator server {self.url} answered HTTP {exc.code}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise BackendError(f"cannot reach generator server {self.url}: {reason}") from exc
        except json.JSONDecodeError as exc:
            raise BackendError(f"generator server {self.url} sent invalid JSON: {exc}") from exc
        try:
            raw = payload["choices"][0]["message"]["content"].strip()
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise BackendError(f"generator server {self.url} sent no choices[0].message.content") from exc
        # Chat models answer in Markdown: shown and spoken, the answer carries no markup.
        from voicerag_cli.markup import answer_text  # here: every command's settings import this module

        text = answer_text(raw)
        cited = sorted({int(n) for n in _CITATION.findall(text) if 1 <= int(n) <= len(passages)})
        return Answer(text, cited)


def openai_weights(settings: Settings) -> WeightsInfo:
    config = settings.section(OpenAIConfig)
    return WeightsInfo(f"{config.base_url} (model {config.model or '?'})", True)


def create(settings: Settings, registry: Roles) -> OpenAICompatibleGenerator:
    config = settings.section(OpenAIConfig)
    if not config.model:
        raise ConfigError(key="openai.model", detail="set the model name your server serves")
    return OpenAICompatibleGenerator(config)
