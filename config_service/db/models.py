"""Config-service ORM models (orgs, nodes, config versions, tokens, routing claims, audit)."""
