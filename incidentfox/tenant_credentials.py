"""Write-time check of the integrations whose credentials must stay the tenant's own.

One hook for the config validator: :func:`credential_problems` runs the same rules the tools apply
at use (:mod:`incidentfox.kubeconfig`, :mod:`incidentfox.aws_credentials`) over a node's
``integrations`` section and returns one problem per refused block, with the full field path
(``integrations.kubernetes.kubeconfig.users[0].user.exec``). Values equal to ``placeholder`` are
stored secrets the writer did not send: they were checked when written and are checked again at use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentfox.aws_credentials import AwsCredentialsError, check_aws_block
from incidentfox.kubeconfig import KubeconfigError, check_kubernetes_block


@dataclass(frozen=True)
class CredentialProblem:
    path: str
    message: str


def credential_problems(integrations: Mapping[str, Any], *, placeholder: str) -> list[CredentialProblem]:
    """Problems with ``integrations.kubernetes`` and ``integrations.aws`` (empty when both pass)."""
    problems: list[CredentialProblem] = []
    checks = (("kubernetes", check_kubernetes_block, KubeconfigError),
              ("aws", check_aws_block, AwsCredentialsError))
    for name, check, error in checks:
        block = integrations.get(name)
        if not isinstance(block, Mapping):
            continue  # absent, or not an object: the config validator reports the latter
        try:
            check(block, placeholder=placeholder)
        except error as exc:
            path = f"integrations.{name}" + (f".{exc.path}" if exc.path else "")
            problems.append(CredentialProblem(path, exc.message))
    return problems
