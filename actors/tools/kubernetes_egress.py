"""The egress policy for the Kubernetes tools: the API server a tenant names is tenant egress.

:func:`pin_to_checked_address` checks the client's server URL with the egress policy and points the
client at the checked address, keeping the server name for TLS (SNI and the certificate check,
``tls_server_name``), so a DNS answer that changes afterwards cannot move the connection. Redirects
are not followed (``retries=0``: a redirect would leave the checked address), and a kubeconfig
``proxy-url`` is refused, since where a proxy connects cannot be checked.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from kubernetes import client as k8s
from kubernetes.client.rest import RESTClientObject

from actors.tools.base import ToolContext, ToolError, TransientToolError
from incidentfox.egress import EgressRefused, check_destination, process_policy


async def pin_to_checked_address(ctx: ToolContext, api: k8s.ApiClient) -> None:
    """Check the API server against the egress policy and point ``api`` at the checked address
    (TLS SNI and certificate check keep the name). Raises ``egress_refused`` / ``connection_error``."""
    conf = api.configuration
    if conf.proxy:
        raise ToolError("egress_refused", "kubernetes: a kubeconfig proxy-url is not allowed for tenant clusters")
    url = urlsplit(conf.host)
    try:
        dest = await check_destination(ctx.egress if ctx.egress is not None else process_policy(),
                                       scheme=url.scheme, host=url.hostname, port=url.port, resolver=ctx.resolver)
    except EgressRefused as exc:
        raise ToolError("egress_refused", f"kubernetes: {exc}") from None
    except (OSError, ValueError) as exc:
        raise TransientToolError("connection_error", f"kubernetes: cannot resolve the API server: {exc}") from None
    ip = dest.address
    netloc = (f"[{ip}]" if ":" in ip else ip) + (f":{url.port}" if url.port else "")
    if dest.plan.literal is None and url.scheme == "https" and not conf.tls_server_name:
        conf.tls_server_name = url.hostname
    conf.host = f"{url.scheme}://{netloc}{url.path}"
    conf.retries = 0          # no redirects: a redirect would leave the checked address
    api.rest_client = RESTClientObject(conf)
