"""Config-service ORM models: orgs, the node tree, config versions, tokens, routing claims, audit.

Invariants the schema keeps:

* ``config_nodes`` has one row per node, the org root included (``node_id == org_id``, kind
  ``org``). ``path`` lists the node ids from the root down to the node itself, so an effective
  config loads its whole chain with one ``IN`` query.
* ``orgs.epoch`` bumps in every config-changing transaction; it keys the effective-config cache.
  Bumping it first also serialises an org's writes (row lock on PostgreSQL, write lock on SQLite).
* ``config_versions`` keeps every version's full stored config (secrets encrypted) and its masked
  diff; ``UNIQUE(org_id, node_id, version)``.
* ``api_tokens.token_hash`` is HMAC-SHA256(pepper, token); the token itself is never stored.
* ``routing_claims`` mirrors team ``routing`` lists with ``UNIQUE(kind, value)`` across all orgs:
  the database, not a read-then-write check, decides who owns a contested identifier.
* ``routing_epoch`` is a single row (id 1) bumped by any routing change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from incidentfox.db import Base, utcnow

BigIntPK = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrement needs INTEGER
ID_LEN = 32


class Org(Base):
    __tablename__ = "orgs"

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigNode(Base):
    __tablename__ = "config_nodes"
    __table_args__ = (Index("ix_config_nodes_parent", "org_id", "parent_id"),)

    org_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("orgs.id", ondelete="CASCADE"),
                                        primary_key=True)
    node_id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    parent_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    kind: Mapped[str] = mapped_column(String(8))            # org | unit | team
    name: Mapped[str] = mapped_column(String(200))
    path: Mapped[list[str]] = mapped_column()                # root … self
    depth: Mapped[int] = mapped_column(default=0)            # edges below the org root
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConfigVersion(Base):
    __tablename__ = "config_versions"
    __table_args__ = (
        UniqueConstraint("org_id", "node_id", "version"),
        ForeignKeyConstraint(["org_id", "node_id"], ["config_nodes.org_id", "config_nodes.node_id"],
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(ID_LEN))
    node_id: Mapped[str] = mapped_column(String(ID_LEN))
    version: Mapped[int] = mapped_column()
    action: Mapped[str] = mapped_column(String(16))          # create | patch | rollback
    config: Mapped[dict[str, Any]] = mapped_column()         # stored form (secrets encrypted)
    diff: Mapped[list[dict[str, Any]]] = mapped_column()     # masked leaf changes
    restored_from: Mapped[int | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)       # tok_…
    org_id: Mapped[str] = mapped_column(String(ID_LEN), ForeignKey("orgs.id", ondelete="CASCADE"), index=True)
    team_node_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    kind: Mapped[str] = mapped_column(String(16))                        # org_admin | team
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    last_used_at: Mapped[datetime | None] = mapped_column()


class RoutingClaim(Base):
    __tablename__ = "routing_claims"
    __table_args__ = (
        UniqueConstraint("kind", "value"),
        Index("ix_routing_claims_owner", "org_id", "team_node_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(255))
    org_id: Mapped[str] = mapped_column(String(ID_LEN))
    team_node_id: Mapped[str] = mapped_column(String(ID_LEN))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RoutingEpoch(Base):
    __tablename__ = "routing_epoch"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    epoch: Mapped[int] = mapped_column(default=0)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_org_id_id", "org_id", "id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(200))
    diff: Mapped[Any] = mapped_column(JSON)              # masked; shape depends on action


class WebhookSecret(Base):
    """A per-org (``node_id == org_id``) or per-team webhook signing secret for one source.

    ``current`` and ``previous`` are Fernet tokens (:mod:`config_service.core.crypto`); ``previous``
    keeps verifying until ``previous_valid_until`` (the rotation grace window), then is ignored.
    Deleting the node (team) deletes its secrets."""

    __tablename__ = "webhook_secrets"
    __table_args__ = (
        UniqueConstraint("org_id", "node_id", "source"),
        ForeignKeyConstraint(["org_id", "node_id"], ["config_nodes.org_id", "config_nodes.node_id"],
                             ondelete="CASCADE"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    org_id: Mapped[str] = mapped_column(String(ID_LEN))
    node_id: Mapped[str] = mapped_column(String(ID_LEN))
    source: Mapped[str] = mapped_column(String(32))
    current: Mapped[str] = mapped_column(String(2048))
    previous: Mapped[str | None] = mapped_column(String(2048))
    previous_valid_until: Mapped[datetime | None] = mapped_column()
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(default=1)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    rotated_at: Mapped[datetime] = mapped_column(default=utcnow)
