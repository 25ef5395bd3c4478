"""One egress policy for every outbound call made on a tenant's behalf.

* :mod:`.policy` (pure): what is refused, the allow-list entries, :class:`EgressRefused`.
* :mod:`.guard`: resolve once and check (:func:`check_destination`); the process's policy
  (settings + the global admin's allow-list in the database).
* :mod:`.transport`: an httpx/httpx2 transport that enforces the policy on every request and
  redirect hop and pins the checked address. :mod:`.aiohttp_guard`: the same for aiohttp
  (``slack_sdk``). :mod:`.store`: the allow-list table.

The package imports no HTTP library; import :mod:`.transport` / :mod:`.aiohttp_guard` where
needed. See ``docs/security.md`` ("Egress policy").
"""

from incidentfox.egress.guard import (
    PolicySource,
    Resolver,
    check_destination,
    policy_from_settings,
    process_policy,
    system_resolver,
    use_database,
)
from incidentfox.egress.policy import (
    AllowRule,
    Destination,
    EgressPolicy,
    EgressReason,
    EgressRefused,
    address_reason,
    parse_host,
    parse_rule,
    refusal_in,
)

__all__ = [
    "AllowRule",
    "Destination",
    "EgressPolicy",
    "EgressReason",
    "EgressRefused",
    "PolicySource",
    "Resolver",
    "address_reason",
    "check_destination",
    "parse_host",
    "parse_rule",
    "policy_from_settings",
    "process_policy",
    "refusal_in",
    "system_resolver",
    "use_database",
]
