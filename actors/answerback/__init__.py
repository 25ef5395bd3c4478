"""Answer a run's RCA where its alert came from, besides Slack (issue 16).

* :mod:`.dispatch`: the one entry point, :func:`~.dispatch.answer_back`, called when a run finishes;
  it reads the run's :class:`incidentfox.contracts.AnswerTarget` and the team's integration blocks,
  and writes each answer at most once (the ``run_answers`` record, :mod:`incidentfox.runs.answers`).
* one module per destination: :mod:`.github` (a check run or an issue/PR comment, through a GitHub
  App: :mod:`.github_app`), :mod:`.pagerduty` (an incident note, and the incident's status where the
  team allows it), :mod:`.incidentio` (an incident update, ``POST /v2/incident_updates``);
* :mod:`.http`: egress-checked HTTP with bounded, rate-limit-aware retries; :mod:`.markdown`: the
  RCA as Markdown.

No secret (private key, JWT, installation token, API key) reaches a log line, a run event or the
``run_answers`` record: errors carry a reason and the destination's status, never a header.
"""
