"""Following a link a Slack message carries to the Serve app that answers it, without Ray: the link's
path is matched against the route prefixes of the one Serve config (serve_apps/serve_config.yaml),
longest prefix first as Serve does, and the rest is the path inside that app."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import yaml

SERVE_CONFIG = Path(__file__).resolve().parent.parent / "serve_apps" / "serve_config.yaml"


def app_and_path(url: str, *, public_url: str) -> tuple[str, str]:
    """``(application name, path inside it)`` for ``url``, a link under ``public_url``."""
    assert url.startswith(public_url.rstrip("/") + "/"), (url, public_url)
    path = urlsplit(url).path
    apps = yaml.safe_load(SERVE_CONFIG.read_text())["applications"]
    for app in sorted(apps, key=lambda a: len(a["route_prefix"]), reverse=True):
        prefix = app["route_prefix"].rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            return app["name"], path[len(prefix):] or "/"
    raise AssertionError(f"no Serve application serves {path}")
