"""The console in Chromium against one real `incidentfox up`: headers and CSP, sign-in with each kind
of token, the org tree and tokens pages, tenant isolation, accessibility (axe-core)."""

from __future__ import annotations

import httpx
import pytest

from tests.console_kit import check_axe

pytestmark = [pytest.mark.platform, pytest.mark.slow]


def test_ui_is_served_directly_with_a_strict_csp(console_platform):
    with httpx.Client(base_url=console_platform.base_url, timeout=30) as c:
        r = c.get("/ui/", follow_redirects=False)
        assert r.status_code == 200 and "<html" in r.text   # no token needed, no redirect
        csp = r.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert r.headers["x-frame-options"] == "DENY" and r.headers["x-content-type-options"] == "nosniff"
        script = next(part.split('"')[0] for part in r.text.split('src="')[1:] if part.startswith("/ui/_next/"))
        js = c.get(script)
        assert js.status_code == 200 and js.headers["x-frame-options"] == "DENY"
        assert c.get("/health").status_code == 200   # the API beside it is untouched
        assert c.get("/api/v1/auth/whoami").status_code == 401


@pytest.mark.parametrize(("kind", "label", "sees_tokens"), [("global_admin", "global admin", True),
                                                            ("org_admin", "org admin", True),
                                                            ("team", "team", False)])
def test_sign_in_with_each_kind_of_token_shows_only_its_pages(console_page, kind, label, sees_tokens):
    page = console_page(kind)
    assert page.get_by_test_id("auth-kind").inner_text() == label
    nav = page.get_by_role("navigation", name="Console")
    assert nav.get_by_role("link", name="Runs").is_visible()
    assert nav.get_by_role("link", name="Tokens").count() == (1 if sees_tokens else 0)
    storage = page.evaluate("() => ({url: location.href, local: JSON.stringify(localStorage)})")
    token_part = page.evaluate("() => sessionStorage.getItem('incidentfox.console.token')")
    assert token_part and token_part not in storage["url"] and token_part not in storage["local"]
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Token").wait_for()
    assert page.evaluate("() => sessionStorage.getItem('incidentfox.console.token')") is None
    page.reload()
    page.get_by_label("Token").wait_for()   # signed out for good


def test_a_bad_token_is_refused_with_the_apis_error(console_page, console_platform):
    page = console_page("team")
    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Token").fill("acme.payments.not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert").filter(has_text="Sign-in failed")
    alert.wait_for()
    assert "401" in alert.inner_text()


def _pick(page, trigger_label: str, option: str) -> None:
    page.get_by_role("combobox", name=trigger_label).click()
    page.get_by_role("option", name=option, exact=True).click()


def test_org_admin_creates_renames_and_moves_a_team_and_sees_api_errors(console_page, console_platform, shot):
    page = console_page("org_admin", "/org/")
    tree = page.get_by_role("table", name="Tree of acme")
    tree.locator("[data-node=payments]").wait_for()
    form = page.get_by_role("form", name="Add a unit or team")
    form.get_by_label("Id").fill("billing")
    form.get_by_label("Name").fill("Billing")
    form.get_by_role("button", name="Add").click()
    tree.locator("[data-node=billing]").wait_for()
    page.get_by_role("button", name="Rename billing").click()
    page.get_by_label("New name").fill("Billing & Invoices")
    page.get_by_role("button", name="Save").click()
    tree.locator("[data-node=billing]").get_by_text("Billing & Invoices").wait_for()
    page.get_by_role("button", name="Move billing").click()
    _pick(page, "New parent", "eng")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("dialog").wait_for(state="detached")
    with console_platform.api() as c:
        node = c.get("/api/v1/orgs/acme/nodes/billing").json()
    assert node["parent_id"] == "eng" and node["name"] == "Billing & Invoices"
    # The API's refusal is shown as it said it: moving a unit under its own team is a cycle/409-class error.
    form.get_by_label("Id").fill("payments")
    form.get_by_role("button", name="Add").click()
    error = page.get_by_role("alert").filter(has_text="Adding failed")
    error.wait_for()
    assert "409" in error.inner_text() and "node_exists" in error.inner_text()
    shot(page, "org-tree")
    page.get_by_role("button", name="Delete eng").click()   # still has children: the API says no
    dialog = page.get_by_role("alertdialog")
    dialog.get_by_role("button", name="Delete").click()
    refused = dialog.get_by_role("alert")
    refused.wait_for()
    assert "node_has_children" in refused.inner_text()
    dialog.get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Delete billing").click()
    page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    # While the dialog is open the page behind it is aria-hidden, so a role locator on the tree finds
    # nothing and "detached" would hold before the DELETE is answered. The dialog closes only once the
    # API has said yes and the tree has been read again.
    page.get_by_role("alertdialog").wait_for(state="detached")
    tree.locator("[data-node=billing]").wait_for(state="detached")
    with console_platform.api() as c:
        assert c.get("/api/v1/orgs/acme/nodes/billing").status_code == 404


def test_global_admin_creates_an_org_and_picks_it(console_page, console_platform):
    page = console_page("global_admin", "/org/")
    page.get_by_text("Pick or create an org to see its tree.").wait_for()
    orgs = page.get_by_role("table", name="Orgs")
    orgs.get_by_role("row").filter(has_text="globex").wait_for()
    form = page.get_by_role("form", name="Create an org")
    form.get_by_label("Org id").fill("initech")
    form.get_by_label("Name").fill("Initech")
    form.get_by_role("button", name="Create org").click()
    page.get_by_role("table", name="Tree of initech").wait_for()   # the new org is shown at once
    form.get_by_label("Org id").fill("initech")
    form.get_by_label("Name").fill("Again")
    form.get_by_role("button", name="Create org").click()
    refused = page.get_by_role("alert").filter(has_text="Creating the org failed")
    refused.wait_for()
    assert "org_exists" in refused.inner_text()
    with console_platform.api() as c:
        assert c.get("/api/v1/orgs/initech").json()["name"] == "Initech"


def test_issue_a_team_token_once_then_revoke_it(console_page, console_platform, shot):
    page = console_page("org_admin", "/tokens/")
    form = page.get_by_role("form", name="Issue a token")
    _pick(page, "Token for", "team payments")
    form.get_by_label("Label").fill("console-e2e")
    form.get_by_role("button", name="Issue").click()
    secret = page.get_by_test_id("secret-value")
    secret.wait_for()
    token = secret.inner_text().strip()
    assert token.startswith("acme.payments.")
    with console_platform.api(token) as c:
        assert c.get("/api/v1/auth/whoami").json()["team_node_id"] == "payments"
    page.get_by_role("button", name="Done").click()
    page.get_by_test_id("secret-value").wait_for(state="detached")   # shown once
    table = page.get_by_role("table", name="Tokens of acme")
    row = table.get_by_role("row").filter(has_text="console-e2e")
    row.wait_for()
    assert token not in page.content()
    row.get_by_role("button", name="Revoke").first.click()
    page.get_by_role("alertdialog").get_by_role("button", name="Revoke").click()
    row.get_by_text("revoked").wait_for()
    shot(page, "tokens")
    with console_platform.api(token) as c:
        r = c.get("/api/v1/auth/whoami")
    assert r.status_code == 401 and r.json()["error"]["code"] == "token_revoked"


def test_a_team_token_sees_nothing_of_another_team(console_page, console_tenants):
    page = console_page("team", "/org/")
    page.get_by_text("Your team").wait_for()
    page.get_by_text("payments", exact=True).first.wait_for()
    page.goto(page.url.split("/ui/")[0] + "/ui/tokens/")
    page.get_by_text("This token cannot open this page.").wait_for()
    for path in ("/ui/org/", "/ui/tokens/", "/ui/"):
        page.goto(page.url.split("/ui/")[0] + path)
        page.get_by_test_id("auth-kind").wait_for()
        page.wait_for_load_state("networkidle")
        text = page.locator("body").inner_text()
        for foreign in (console_tenants.other_team, console_tenants.other_org, console_tenants.other_org_team):
            assert foreign not in text, (path, foreign)


def test_pages_have_no_serious_accessibility_violations(axe_page, console_browser, console_platform, shot):
    context = console_browser.new_context(bypass_csp=True)
    try:
        signin = context.new_page()
        signin.goto(console_platform.ui)
        signin.get_by_label("Token").wait_for()
        check_axe(signin)
        shot(signin, "sign-in")
    finally:
        context.close()
    for kind, path, marker in (("org_admin", "/org/", "Tree of acme"), ("org_admin", "/tokens/", "Tokens of acme"),
                               ("team", "/org/", "Your team"), ("global_admin", "/org/", "Orgs")):
        page = axe_page(kind, path)
        page.get_by_role("heading", name=marker).wait_for()
        page.wait_for_load_state("networkidle")
        check_axe(page)


def test_an_org_admin_sees_nothing_of_another_org(console_page, console_tenants):
    page = console_page("org_admin", "/org/")
    page.get_by_role("table", name="Tree of acme").wait_for()
    for path in ("/ui/org/", "/ui/tokens/"):
        page.goto(page.url.split("/ui/")[0] + path)
        page.get_by_test_id("auth-kind").wait_for()
        page.wait_for_load_state("networkidle")
        text = page.locator("body").inner_text()
        assert console_tenants.other_org not in text and console_tenants.other_org_team not in text, path
