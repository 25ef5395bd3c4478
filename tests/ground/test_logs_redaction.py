"""The one redaction filter: no secret reaches a log line, and context fields are carried."""

from __future__ import annotations

import io
import json
import logging

import pytest

from incidentfox.logs import JsonFormatter, RedactingFilter, bind, redact, register_secret, unbind

SECRETS = [
    "Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345",
    "token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
    "aws AKIAIOSFODNN7EXAMPLE in env",
    "openai sk-proj-abcdefghijklmnop1234567890",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "team token acme.payments." + "A" * 43,
    '{"api_key": "dd-0123456789abcdef"}',
    "password=hunter2hunter2",
]


@pytest.mark.parametrize("line", SECRETS)
def test_known_secret_shapes_are_masked(line):
    out = redact(line)
    assert "***" in out
    for fragment in ("abcdefghijklmnopqrstuvwxyz012345", "AbCdEfGhIjKlMnOp", "IOSFODNN7EXAMPLE",
                     "abcdefghijklmnop1234567890", "MfKQ9r8GKYqrTwjU", "A" * 43, "dd-0123456789abcdef",
                     "hunter2hunter2"):
        assert fragment not in out


def test_registered_values_and_ordinary_text():
    register_secret("pepper-value-that-is-long")
    assert redact("loaded pepper-value-that-is-long ok") == "loaded *** ok"
    # Ordinary operational text survives untouched.
    assert redact("run run_0123 for acme/payments finished in 3.2s") == \
        "run run_0123 for acme/payments finished in 3.2s"


def test_filter_scrubs_args_exceptions_and_emits_context():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("test.redaction")
    log.handlers[:] = [handler]
    log.propagate = False
    token = bind(run_id="run_1", org_id="acme", team_id="payments")
    try:
        log.warning("calling slack with %s", "xoxb-123456789012-1234567890123-AbCdEfGhIjKl")
        try:
            raise RuntimeError("bad token Bearer abcdefghijklmnopqrstuvwxyz012345")
        except RuntimeError:
            log.exception("failed")
    finally:
        unbind(token)
    lines = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert "xoxb-" not in lines[0]["msg"] and lines[0]["run_id"] == "run_1"
    assert lines[0]["org_id"] == "acme" and lines[0]["team_id"] == "payments"
    assert "abcdefghijklmnopqrstuvwxyz012345" not in json.dumps(lines[1])
    assert list(lines[0]) == ["ts", "level", "logger", "msg", "run_id", "org_id", "team_id"]
    assert lines[1]["level"] == "error" and lines[1]["logger"] == "test.redaction"
    assert "RuntimeError: bad token Bearer ***" in lines[1]["exc"]
