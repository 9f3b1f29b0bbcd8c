"""The OpenAI-compatible generator against a real HTTP server on 127.0.0.1 (http.server in a
thread) implementing POST /v1/chat/completions."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from voicerag_cli.config import Settings
from voicerag_cli.errors import BackendError, ConfigError, ExitCode
from voicerag_cli.models.base import Passage, Query
from voicerag_cli.models.openai_http import SYSTEM_PROMPT, OpenAICompatibleGenerator, OpenAIConfig, create
from vrtest import DemoIndex, assert_error, run_cli, tree_hash


@dataclass
class ChatServer:
    """Answers chat completions with `reply` (a JSON-able payload, or raw bytes) and `status`;
    records every request it receives."""

    reply: Any = None
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


def completion(content: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
    }


@pytest.fixture
def chat_server() -> Iterator[ChatServer]:
    state = ChatServer()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
            if self.path != "/v1/chat/completions":
                self.send_error(404)
                return
            raw = state.reply if isinstance(state.reply, bytes) else json.dumps(state.reply).encode()
            self.send_response(state.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


PASSAGES = [
    Passage(1, "/docs/bees.md", "Karl von Frisch decoded the waggle dance.", 0.7),
    Passage(2, "/docs/rhine.html", "The Rhine rises in the Swiss Alps.", 0.4),
    Passage(3, "/docs/sun.txt", "The Sun holds most of the solar system's mass.", 0.2),
]


def generator(server: ChatServer, **overrides: Any) -> OpenAICompatibleGenerator:
    config = OpenAIConfig(base_url=server.base_url + "/", model="tiny-test", max_tokens=64, **overrides)
    return OpenAICompatibleGenerator(config)


def test_request_body_and_parsed_answer(chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VR_TEST_API_KEY", "sk-local-test")
    chat_server.reply = completion("  Karl von Frisch decoded it [1]; see also [3] and [9].  ")
    answer = generator(chat_server, api_key_env="VR_TEST_API_KEY", temperature=0.2).generate(
        Query("Who decoded the bee dance?", history=[("Where does the Rhine rise?", "In the Swiss Alps [2].")]),
        PASSAGES,
    )
    assert answer.text == "Karl von Frisch decoded it [1]; see also [3] and [9]."
    assert answer.cited == [1, 3]  # [9] is not a passage

    [request] = chat_server.requests
    assert request["path"] == "/v1/chat/completions"  # a trailing slash in base_url is tolerated
    assert request["headers"]["Authorization"] == "Bearer sk-local-test"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("tiny-test", 0.2, 64)
    messages = body["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[0]["content"] == SYSTEM_PROMPT
    assert messages[1:3] == [
        {"role": "user", "content": "Where does the Rhine rise?"},
        {"role": "assistant", "content": "In the Swiss Alps [2]."},
    ]
    last = messages[-1]["content"]
    for number, passage in enumerate(PASSAGES, start=1):
        assert f"[{number}] ({passage.source})\n{passage.text}" in last
    assert last.endswith("Question: Who decoded the bee dance?")


def test_markdown_answer_becomes_plain_text(chat_server: ChatServer) -> None:
    chat_server.reply = completion(
        "## Answer\n\nKarl von Frisch **decoded** the `waggle dance` [1][3].\n\n"
        "- It tells *direction*;\n- see [his paper](https://example.org/frisch) [2].\n\n"
        "```python\ndance(verify=False)\n```"
    )
    answer = generator(chat_server).generate(Query("Who decoded the bee dance?"), PASSAGES)
    assert answer.text.split("\n\n") == [
        "Answer",
        "Karl von Frisch decoded the waggle dance [1] [3].",
        "It tells direction;",
        "see his paper [2].",
        "dance(verify=False)",
    ]
    assert answer.cited == [1, 2, 3]


def test_no_key_no_authorization_header(chat_server: ChatServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VR_UNSET_KEY", raising=False)
    chat_server.reply = completion("I do not know.")
    answer = generator(chat_server, api_key_env="VR_UNSET_KEY").generate(Query("What is dark matter?"), PASSAGES)
    assert (answer.text, answer.cited) == ("I do not know.", [])
    assert "Authorization" not in chat_server.requests[0]["headers"]


def test_http_500_is_a_backend_error(chat_server: ChatServer) -> None:
    chat_server.status = 500
    chat_server.reply = {"error": {"message": "model crashed"}}
    with pytest.raises(BackendError, match=r"answered HTTP 500: .*model crashed"):
        generator(chat_server).generate(Query("q?"), PASSAGES)


@pytest.mark.parametrize(
    ("reply", "match"),
    [(b"<html>not json</html>", "invalid JSON"), ({"choices": []}, "no choices"), ({"result": "x"}, "no choices")],
)
def test_malformed_replies(chat_server: ChatServer, reply: Any, match: str) -> None:
    chat_server.reply = reply
    with pytest.raises(BackendError, match=match):
        generator(chat_server).generate(Query("q?"), PASSAGES)


def test_unreachable_server() -> None:
    config = OpenAIConfig(base_url=f"http://127.0.0.1:{closed_port()}/v1", model="m", timeout_s=5)
    with pytest.raises(BackendError, match="cannot reach generator server"):
        OpenAICompatibleGenerator(config).generate(Query("q?"), PASSAGES)


def test_needs_text_and_a_model_name(chat_server: ChatServer) -> None:
    with pytest.raises(BackendError, match="needs the question as text"):
        generator(chat_server).generate(Query(None), PASSAGES)
    assert chat_server.requests == []
    settings = Settings().updated({"models.generator": "openai"})
    with pytest.raises(ConfigError, match=r"'openai\.model'"):
        create(settings, None)


def test_cli_ask_with_the_openai_generator(on_demo_index: DemoIndex, chat_server: ChatServer) -> None:
    chat_server.reply = completion("Karl von Frisch, in 1973 [1].")
    env = {
        "VOICERAG_MODELS__GENERATOR": "openai",
        "VOICERAG_OPENAI__BASE_URL": chat_server.base_url,
        "VOICERAG_OPENAI__MODEL": "tiny-test",
    }
    result = run_cli("ask", "--text", "Who decoded the honey bee dance?", "-k", "3", "--json", env=env)
    assert result.code == 0, result
    payload = result.json()
    assert payload["answer"] == "Karl von Frisch, in 1973 [1]."
    assert payload["citations"] == [1]
    assert payload["models"]["generator"] == "openai"
    [request] = chat_server.requests
    assert request["body"]["model"] == "tiny-test"
    prompt = request["body"]["messages"][-1]["content"]
    assert len(payload["sources"]) == 3
    for number, source in enumerate(payload["sources"], start=1):  # the retrieved passages went to the server
        assert f"[{number}] ({source['source']})\n{source['text']}" in prompt


def test_cli_unreachable_server_exit_7(on_demo_index: DemoIndex) -> None:
    before = tree_hash(on_demo_index.data_dir)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    env = {"VOICERAG_MODELS__GENERATOR": "openai", "VOICERAG_OPENAI__BASE_URL": url, "VOICERAG_OPENAI__MODEL": "m"}
    result = run_cli("ask", "--text", "Who decoded the honey bee dance?", env=env)
    assert_error(result, ExitCode.BACKEND, "cannot reach generator server", url)
    assert tree_hash(on_demo_index.data_dir) == before
