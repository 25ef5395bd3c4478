"""Authorization rules, pure over a :class:`~incidentfox.contracts.Principal`.

* global admin: everything;
* org admin: manages its own org (nodes, config, tokens, audit); nothing across orgs;
* team and impersonation tokens: read their own team's node and effective config; nothing else.

Routes call these before reading the body, so a forbidden write is 403 whatever it carries.
"""

from __future__ import annotations

from incidentfox.contracts import Principal
from incidentfox.errors import Forbidden


def require_global_admin(principal: Principal) -> None:
    if principal.auth_kind != "global_admin":
        raise Forbidden("this endpoint needs the global admin token", code="forbidden")


def require_org_admin(principal: Principal, org_id: str) -> None:
    if principal.auth_kind == "global_admin":
        return
    if principal.auth_kind == "org_admin" and principal.org_id == org_id:
        return
    raise Forbidden("this token cannot manage this org", code="forbidden", details={"org_id": org_id})


def require_team_reader(principal: Principal, org_id: str, node_id: str) -> None:
    """Admins of the org, or a team/impersonation token for exactly this node."""
    if principal.auth_kind in ("global_admin", "org_admin"):
        require_org_admin(principal, org_id)
        return
    if principal.org_id == org_id and principal.team_node_id == node_id:
        return
    raise Forbidden("a team token reads only its own team", code="forbidden",
                    details={"org_id": org_id, "node_id": node_id})


def require_team_principal(principal: Principal) -> tuple[str, str]:
    """For ``/api/v1/team/...``: the caller's own (org, team); only team-scoped tokens have one."""
    if principal.auth_kind in ("team", "impersonation") and principal.org_id and principal.team_node_id:
        return principal.org_id, principal.team_node_id
    raise Forbidden("this endpoint needs a team or impersonation token", code="forbidden")
