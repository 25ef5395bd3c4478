"""The config, routing, integrations and audit pages in Chromium against one real `incidentfox up`:
edit a config through a reviewed merge patch and roll it back (a secret is never sent back), a routing
conflict explained without naming another tenant, "test connection" ok and refused, the audit filter,
a team token seeing nothing of another team, axe-core on each page, and the docs' screenshots."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from tests.console_kit import check_axe

pytestmark = [pytest.mark.platform, pytest.mark.slow]

SECRET = "prom-console-SECRET-42"


class _Prometheus(BaseHTTPRequestHandler):
    """Answers the Prometheus probe: 200 for the right bearer token, 401 otherwise; records headers."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_GET(self) -> None:
        type(self).seen.append(dict(self.headers))
        ok = self.path.startswith("/api/v1/status/buildinfo") and self.headers.get("Authorization") == f"Bearer {SECRET}"
        body = json.dumps({"status": "success"} if ok else {"error": "unauthorized"}).encode()
        self.send_response(200 if ok else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def prometheus() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Prometheus)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="module")
def seeded(console_platform, console_tenants, prometheus):
    return seed(console_platform, console_tenants, prometheus)


def seed(platform, t, prometheus: str):
    """Claims in two orgs and integrations on the team (the platform admits 127.0.0.1 for egress)."""
    with platform.api() as c:
        for org, team, patch in (
            (t.org, t.other_team, {"routing": {"slack_channel_ids": ["C0SEARCH"]},
                                   "integrations": {"jaeger": {"url": "https://jaeger.search.example"}}}),
            (t.other_org, t.other_org_team, {"routing": {"slack_channel_ids": ["C0GLOBEX"]}}),
            (t.org, t.team, {"integrations": {"prometheus": {"url": prometheus, "token": SECRET},
                                              "loki": {"url": "http://169.254.169.254/latest"}}}),
        ):
            r = c.patch(f"/api/v1/orgs/{org}/nodes/{team}/config", json=patch)
            assert r.status_code == 200, r.text
    return t


def _raw(platform, org: str, node: str) -> dict:
    with platform.api() as c:
        return c.get(f"/api/v1/orgs/{org}/nodes/{node}/config/raw").json()


def test_edit_config_review_the_diff_save_and_roll_back(console_page, console_platform, seeded, shot, prometheus):
    before = _raw(console_platform, "acme", "payments")
    page = console_page("org_admin", "/config/?node=payments")
    editor = page.get_by_label("Config JSON")
    editor.wait_for()
    page.get_by_role("table", name="Effective config of payments").get_by_text("integrations.prometheus.token").wait_for()
    doc = json.loads(editor.input_value())
    assert doc["integrations"]["prometheus"]["token"] == "***"       # the editor only ever had the mask
    doc["slack"] = {"default_channel": "C0CONSOLE"}
    editor.fill(json.dumps(doc, indent=2))
    page.get_by_role("button", name="Review changes").click()
    review = page.get_by_role("table", name="Changes to save")
    review.get_by_text("slack.default_channel").wait_for()
    assert review.get_by_test_id("diff-row").count() == 1
    with page.expect_request(lambda r: r.method == "PATCH" and r.url.endswith("/nodes/payments/config")) as sent:
        page.get_by_role("button", name="Save", exact=True).click()
    assert json.loads(sent.value.post_data) == {"slack": {"default_channel": "C0CONSOLE"}}   # no secret, no mask
    page.get_by_role("status").filter(has_text=f"Saved as version {before['version'] + 1}").wait_for()
    after = _raw(console_platform, "acme", "payments")
    assert after["config"]["slack"] == {"default_channel": "C0CONSOLE"}
    with console_platform.api() as c:   # the stored secret is intact: the probe still authenticates
        assert c.post("/api/v1/orgs/acme/nodes/payments/integrations/prometheus/test").json()["ok"] is True
    history = page.get_by_role("list", name="Config versions of payments")
    newest = history.get_by_test_id(f"version-{after['version']}")
    newest.get_by_role("button", name="Diff (1)").click()
    newest.get_by_role("table", name=f"Changes in version {after['version']}").get_by_text("C0CONSOLE").wait_for()
    shot(page, "config")
    history.get_by_test_id(f"version-{before['version']}").get_by_role(
        "button", name=f"Roll back to v{before['version']}").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Roll back").click()
    history.get_by_test_id(f"version-{after['version'] + 1}").get_by_text(
        f"restored from v{before['version']}").wait_for()
    assert "slack" not in _raw(console_platform, "acme", "payments")["config"]


def test_locks_and_origins_show_on_the_effective_config(console_page, console_platform, seeded):
    with console_platform.api() as c:
        assert c.patch("/api/v1/orgs/acme/nodes/eng/config",
                       json={"llm": {"model": "gpt-4o-mini"}, "locked_paths": ["llm.model"]}).status_code == 200
    page = console_page("team", "/config/")
    table = page.get_by_role("table", name="Effective config of payments")
    row = table.get_by_role("row").filter(has_text="llm.model")
    row.get_by_text("locked by eng").wait_for()
    assert "eng" in row.inner_text() and "gpt-4o-mini" in row.inner_text()
    assert page.get_by_label("Config JSON").count() == 0              # a team token does not edit
    with console_platform.api() as c:
        c.patch("/api/v1/orgs/acme/nodes/eng/config", json={"llm": None, "locked_paths": None})


def test_routing_conflicts_are_explained_without_naming_another_tenant(console_page, seeded, shot):
    page = console_page("org_admin", "/routing/?node=payments")
    page.get_by_role("table", name="Routing claims of payments").wait_for()

    def check(value: str) -> str:
        page.get_by_label("Identifier").fill(value)
        page.get_by_role("button", name="Check").click()
        result = page.get_by_test_id("claim-check").filter(has_text=value)
        result.wait_for()
        return result.inner_text()

    assert "held by team ledger (org acme)" in check("C0SEARCH")
    text = check("C0GLOBEX")
    assert "claimed elsewhere" in text and "globex" not in page.content() and "storefront" not in text
    assert "free" in check("C0PAYMENTS")
    page.get_by_role("button", name="Claim for payments").click()
    page.get_by_role("table", name="Routing claims of payments").get_by_text("C0PAYMENTS").wait_for()
    shot(page, "routing")


def test_test_connection_ok_and_refused(console_page, seeded, shot):
    page = console_page("team", "/integrations/")
    table = page.get_by_role("table", name="Integrations of payments")
    table.get_by_text("prometheus", exact=True).wait_for()
    assert SECRET not in page.content()
    page.get_by_role("button", name="Test connection to prometheus").click()
    ok = page.get_by_test_id("probe-prometheus")
    ok.get_by_text("Connected").wait_for()
    assert "ok" in ok.inner_text()
    assert _Prometheus.seen and _Prometheus.seen[-1]["Authorization"] == f"Bearer {SECRET}"
    page.get_by_role("button", name="Test connection to loki").click()
    refused = page.get_by_test_id("probe-loki")
    refused.get_by_text("egress_refused").wait_for()
    assert "failed" in refused.inner_text()
    shot(page, "integrations")


def test_audit_log_filters(console_page, seeded, shot):
    page = console_page("org_admin", "/audit/")
    table = page.get_by_role("table", name="Audit log of acme")
    table.get_by_text("node:acme/ledger").first.wait_for()
    filters = page.get_by_role("form", name="Audit filters")
    filters.get_by_label("Node").fill("payments")
    filters.get_by_label("Action").fill("config.*")
    filters.get_by_role("button", name="Filter").click()
    # the filtered page has replaced the unfiltered one once every row is about payments
    page.wait_for_function("""() => {
        const rows = [...document.querySelectorAll('table')].flatMap(t => [...t.querySelectorAll('tbody tr')]);
        return rows.length > 0 && rows.every(r => r.innerText.includes('node:acme/payments'));
    }""")
    targets = table.locator("tbody tr").all_inner_texts()
    assert targets and all("node:acme/payments" in t and "config." in t for t in targets)
    shot(page, "audit")


@pytest.mark.parametrize(("kind", "mine", "theirs"), [("team", "payments", ("C0SEARCH", "jaeger.search", "C0GLOBEX")),
                                                      ("other_org_team", "storefront", ("C0SEARCH", "payments", "prometheus"))])
def test_a_team_token_sees_nothing_of_another_team(console_page, seeded, kind, mine, theirs):
    for path in ("/config/?node=ledger", "/routing/?node=ledger", "/integrations/?node=ledger"):
        page = console_page(kind, path)
        page.get_by_role("table").first.wait_for()
        page.wait_for_load_state("networkidle")
        body = page.inner_text("body")
        assert mine in body and not any(t in body for t in theirs), (path, body[:2000])
        page.context.close()
    page = console_page(kind, "/audit/")
    page.get_by_text("This token cannot open this page.").wait_for()


@pytest.mark.parametrize("path", ["/config/?node=payments", "/routing/?node=payments", "/integrations/?node=payments",
                                  "/audit/"])
def test_pages_have_no_serious_accessibility_violations(axe_page, seeded, path):
    page = axe_page("org_admin", path)
    page.get_by_role("table").first.wait_for()
    page.wait_for_load_state("networkidle")
    check_axe(page)
