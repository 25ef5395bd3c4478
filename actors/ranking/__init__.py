"""Root-cause ranking: documented, deterministic rules over an evidence bundle (``docs/ranking.md``).

``rank(bundle, now=...) -> Ranking`` orders the suspects (or decides there is no incident);
``build_rca(ranking, bundle) -> RCA`` writes what users see. One module per signal: anomaly,
propagation, k8s_state, changes, logs, traces, no_incident.
"""

from actors.ranking.model import Finding, Ranking, Suspect
from actors.ranking.rank import rank
from actors.ranking.rca import build_rca

__all__ = ["Finding", "Ranking", "Suspect", "build_rca", "rank"]
