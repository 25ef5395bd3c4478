"""Library face for what other packages do in the config service's store *inside their own
transaction*: write an audit entry beside the change it records (an approval, a sandbox open),
read a team's effective config with the caller's session, and ask which other team holds a routing
claim (``foreign_claim_owners``: e.g. whether a team's default Slack channel is another team's).
Everything else goes through :class:`config_service.TeamConfigReader`."""

from __future__ import annotations

from config_service.services.audit import record as record_audit
from config_service.services.config import get_effective_config as effective_config_in_session
from config_service.services.routing import find_foreign_owners as foreign_claim_owners

__all__ = ["effective_config_in_session", "foreign_claim_owners", "record_audit"]
