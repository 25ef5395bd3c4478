"""Investigation tools: declarations (:mod:`.registry`), safe execution (:mod:`.execute`), one module
per backend, the demo world (:mod:`.demo`) and the offline planner's playbooks (:mod:`.playbooks`)."""
