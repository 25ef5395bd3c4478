"""Library face for what other packages do in the config service's store *inside their own
transaction*: write an audit entry beside the change it records (an approval, a sandbox open), and
read a team's effective config with the caller's session. Everything else goes through
:class:`config_service.TeamConfigReader`."""

from __future__ import annotations

from config_service.services.audit import record as record_audit
from config_service.services.config import get_effective_config as effective_config_in_session

__all__ = ["effective_config_in_session", "record_audit"]
