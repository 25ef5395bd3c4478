"""The seeded demo world and the backend that serves every tool from it (``integrations.demo``)."""
