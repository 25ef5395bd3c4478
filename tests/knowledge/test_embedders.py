"""The OpenAI-compatible embedder against a local scripted HTTP server (the request it sends, the
vectors it returns, typed failures, the egress policy, no key in errors), and the summariser."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
from pydantic import SecretStr

from incidentfox.egress import EgressPolicy
from incidentfox.knowledge import EmbedderError, OpenAIEmbedder
from incidentfox.knowledge.summarise import ExtractiveSummariser

KEY = "sk-test-embeddings-key-123"
LOOPBACK = EgressPolicy.build(allow=["127.0.0.1"])


class Scripted(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict]] = []
    mode = "ok"

    def log_message(self, *_args) -> None:
        return None

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Scripted.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if Scripted.mode == "500":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(f"error for {KEY}".encode())
            return
        data = [{"index": i, "embedding": [float(len(t)), 1.0, 0.0]} for i, t in enumerate(body["input"])]
        if Scripted.mode == "short":
            data = data[:-1]
        payload = json.dumps({"data": list(reversed(data)), "model": body["model"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture
def server() -> Iterator[str]:
    Scripted.requests, Scripted.mode = [], "ok"
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    thread.join(timeout=10)


async def test_openai_embedder_batches_orders_and_normalises(server: str) -> None:
    emb = OpenAIEmbedder(server, SecretStr(KEY), "text-embedding-3-small", batch_size=2, egress_policy=LOOPBACK)
    out = await emb.embed(["a", "bbb", "cc"])
    assert out.shape == (3, 3) and out.dtype == np.float32 and emb.dim == 3
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert out[1][0] > out[2][0] > out[0][0]          # answers sorted back by index
    assert [r["body"]["input"] for r in Scripted.requests] == [["a", "bbb"], ["cc"]]
    assert all(r["path"] == "/v1/embeddings" and r["auth"] == f"Bearer {KEY}" for r in Scripted.requests)
    assert Scripted.requests[0]["body"]["model"] == "text-embedding-3-small"


@pytest.mark.parametrize("mode", ["500", "short"])
async def test_openai_embedder_failures_are_typed_and_keep_the_key_out(server: str, mode: str) -> None:
    Scripted.mode = mode
    emb = OpenAIEmbedder(server, SecretStr(KEY), "m", egress_policy=LOOPBACK)
    with pytest.raises(EmbedderError) as exc:
        await emb.embed(["a", "b"])
    assert exc.value.status == 502 and KEY not in str(exc.value) and KEY not in json.dumps(exc.value.details)


async def test_openai_embedder_goes_through_the_egress_policy(server: str) -> None:
    emb = OpenAIEmbedder(server, SecretStr(KEY), "m", egress_policy=EgressPolicy())   # no allow-list: loopback refused
    with pytest.raises(EmbedderError) as exc:
        await emb.embed(["a"])
    assert "egress" in exc.value.message and Scripted.requests == []


async def test_extractive_summary_is_short_central_and_covers_each_text() -> None:
    texts = ["The disk on node one is full. Logs grow quickly. Rotate the logs daily.",
             "Disk pressure evicts pods. The kubelet reports disk pressure when the disk is full.",
             "Unrelated words about bananas and weather appear here."]
    summary = await ExtractiveSummariser().summarise(texts, max_words=25)
    assert 0 < len(summary.split()) <= 25 + 15            # one sentence may pass the budget
    assert "disk" in summary.lower()
    assert await ExtractiveSummariser().summarise([], 10) == ""
