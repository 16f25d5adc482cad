"""SQLAlchemy models of the pool: nodes, physical GPUs, allocations and
their vGPUs, events, users and API tokens.

The Alembic migrations in ``migrations/versions`` must produce exactly this
schema; ``tests/functional/test_migrations.py`` compares the two on SQLite,
PostgreSQL and MariaDB.

Portability notes: enumerations are VARCHAR with a CHECK constraint (no
native ENUM types, which differ per database and are awkward to migrate);
string lengths are bounded so MySQL can index them; timestamps are naive UTC.
"""

import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Deterministic constraint names, so migrations can drop what they create
# on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

UUID_LEN = 36

NODE_STATES = ("up", "down")
GPU_POOLS = ("orionx", "native")
GPU_HEALTH = ("healthy", "unhealthy")
ALLOCATION_MODES = ("reserve", "acquire")
# queued: waiting for capacity; active: placed (reserve) or ready to bind
# (acquire); preempted: evicted by higher-priority work; degraded: placed on a
# node that went down; deleted rows are removed, not kept in a state.
ALLOCATION_STATES = ("queued", "active", "preempted", "degraded")
EVENT_LEVELS = ("info", "warning", "error")
USER_ROLES = ("admin", "operator", "viewer")


def utcnow():
    """Naive UTC now: every timestamp in the database is UTC."""
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _enum(values, name):
    return Enum(
        *values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(v) for v in values),
    )


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class TimestampMixin:
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime.datetime | None] = mapped_column(DateTime, onupdate=utcnow)


class Node(TimestampMixin, Base):
    """A host running orionx-agent, with or without GPUs."""

    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(UUID_LEN), unique=True)
    hostname: Mapped[str] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(_enum(NODE_STATES, "node_state"), default="up")
    last_heartbeat_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # JSON object of data-plane endpoints the agent offers, e.g.
    # {"unix": "/run/orionx/agent.sock", "tcp": "10.0.0.5:8701"}.
    endpoints: Mapped[str | None] = mapped_column(Text)
    # When its agent last (re)started: bindings older than this cannot have
    # a session that survived the restart (reconciliation, docs/scheduler.md).
    # To the microsecond, as placed_at, which it is compared with.
    registered_at: Mapped[datetime.datetime | None] = mapped_column(
        DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"))

    gpus: Mapped[list["PhysicalGpu"]] = relationship(back_populates="node")


class PhysicalGpu(TimestampMixin, Base):
    """One physical GPU. ``allocated_*`` are the sums over its bound vGPUs,
    kept on the row so a claim reads and updates one row, guarded by
    ``generation`` (optimistic concurrency, as Placement does for resource
    providers); ``measured_*`` are what its agent last observed."""

    __tablename__ = "physical_gpus"
    __table_args__ = (
        UniqueConstraint("node_id", "index"),
        # The scheduler's candidate query filters on pool and free compute
        # and reads GPUs in usage order, which this index gives presorted.
        # Named here: the generated name would pass the 63/64 characters
        # PostgreSQL and MySQL allow.
        Index("ix_physical_gpus_pool_allocated", "pool", "allocated_compute_pct",
              "allocated_memory_mb", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(UUID_LEN), unique=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(255))
    pci_address: Mapped[str | None] = mapped_column(String(32))
    memory_mb: Mapped[int] = mapped_column(Integer)
    pool: Mapped[str] = mapped_column(_enum(GPU_POOLS, "gpu_pool"), default="orionx")
    # Set while a switch to the other pool waits for the GPU to empty.
    draining: Mapped[bool] = mapped_column(Boolean, default=False)
    memory_oversub_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    health: Mapped[str] = mapped_column(_enum(GPU_HEALTH, "gpu_health"), default="healthy")
    allocated_compute_pct: Mapped[int] = mapped_column(Integer, default=0)
    allocated_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    # What the agent last measured (heartbeats), kept in the database so that
    # every controller and API process sees the same figures. NULL: not
    # reported. Changing them does not bump ``generation``: they are not
    # capacity.
    measured_compute_pct: Mapped[float | None] = mapped_column(Float)
    measured_memory_mb: Mapped[int | None] = mapped_column(Integer)
    measured_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    node: Mapped[Node] = relationship(back_populates="gpus")
    vgpus: Mapped[list["VGpu"]] = relationship(back_populates="physical_gpu")


class Allocation(TimestampMixin, Base):
    """A consumer's request for vGPUs (or whole native GPUs) and its state."""

    __tablename__ = "allocations"
    __table_args__ = (
        # The queue is read in (state, priority, age) order.
        Index(None, "state", "priority", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(UUID_LEN), unique=True)
    consumer: Mapped[str | None] = mapped_column(String(255), index=True)
    project_id: Mapped[str | None] = mapped_column(String(255), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    mode: Mapped[str] = mapped_column(_enum(ALLOCATION_MODES, "allocation_mode"), default="reserve")
    native: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[int] = mapped_column(Integer, default=50)
    preemptible: Mapped[bool] = mapped_column(Boolean, default=False)
    can_preempt: Mapped[bool] = mapped_column(Boolean, default=False)
    requeue: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the consumer runs; GPUs on this host are preferred.
    host: Mapped[str | None] = mapped_column(String(255))
    allow_remote: Mapped[bool] = mapped_column(Boolean, default=True)
    # Acquire mode: unbind when the application's data-plane session ends
    # without unbinding (killed). False where something else owns the
    # binding: a libvirt domain in reserve mode is bound while it runs,
    # whatever programs in it do. Always False in reserve mode.
    unbind_on_session_end: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false())
    state: Mapped[str] = mapped_column(
        _enum(ALLOCATION_STATES, "allocation_state"), default="queued"
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    # To the microsecond on every backend (MySQL's DATETIME keeps whole
    # seconds unless told): a binding is compared with the moment an ended
    # session was last seen, to tell a new application's binding from the
    # old one's.
    placed_at: Mapped[datetime.datetime | None] = mapped_column(
        DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"))
    # Bumped whenever the vGPUs are bound anew, unbound, preempted, resized
    # down, moved or deleted; session tokens carry it and GPU servers refuse
    # tokens older than the generation they were told (docs/scheduler.md).
    binding_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The binding generation of the newest session token minted; NULL: none
    # yet. A binding no token was minted for has no session to wait for.
    token_generation: Mapped[int | None] = mapped_column(Integer)

    vgpus: Mapped[list["VGpu"]] = relationship(
        back_populates="allocation",
        cascade="all, delete-orphan",
        order_by="VGpu.index",
    )


class VGpu(Base):
    """One slice of an allocation. ``physical_gpu_id`` is NULL while unbound
    (queued, or acquire-mode between applications)."""

    __tablename__ = "vgpus"
    __table_args__ = (UniqueConstraint("allocation_id", "index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uuid: Mapped[str] = mapped_column(String(UUID_LEN), unique=True)
    allocation_id: Mapped[int] = mapped_column(ForeignKey("allocations.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    physical_gpu_id: Mapped[int | None] = mapped_column(
        ForeignKey("physical_gpus.id", ondelete="RESTRICT"), index=True
    )
    compute_pct: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    bound_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    # Measured by the agent of the GPU it is bound to; see PhysicalGpu.
    measured_compute_pct: Mapped[float | None] = mapped_column(Float)
    measured_memory_mb: Mapped[int | None] = mapped_column(Integer)
    measured_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    allocation: Mapped[Allocation] = relationship(back_populates="vgpus")
    physical_gpu: Mapped[PhysicalGpu | None] = relationship(back_populates="vgpus")


class CapacityHold(Base):
    """A released vGPU's capacity, still counted in its GPU's
    ``allocated_*``, while a session of the allocation may be alive on the
    GPU server: until its host reports no session of the allocation older
    than ``below_generation``, the host is declared down, or
    ``expires_at`` (``[controller] revocation_timeout_s``) passes."""

    __tablename__ = "capacity_holds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The allocation's uuid, not a foreign key: a deleted allocation's
    # capacity is held too.
    allocation_uuid: Mapped[str] = mapped_column(String(UUID_LEN))
    physical_gpu_id: Mapped[int] = mapped_column(
        ForeignKey("physical_gpus.id", ondelete="CASCADE"))
    hostname: Mapped[str] = mapped_column(String(255), index=True)
    compute_pct: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    below_generation: Mapped[int] = mapped_column(BigInteger)
    # deleted, unbound, preempted, moved: what the revocation said.
    reason: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)


class Event(Base):
    """Something operators should see: a state change, an error, an alert."""

    __tablename__ = "events"
    __table_args__ = (Index(None, "object_type", "object_uuid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow, index=True)
    level: Mapped[str] = mapped_column(_enum(EVENT_LEVELS, "event_level"), default="info")
    # node, gpu, allocation, user, ...
    object_type: Mapped[str] = mapped_column(String(32))
    object_uuid: Mapped[str | None] = mapped_column(String(UUID_LEN))
    # The project of the allocation an event is about (NULL for the pool's
    # own objects): who outside the admins may read it.
    project_id: Mapped[str | None] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)


class User(TimestampMixin, Base):
    """An API account for ``[api] auth_strategy = local``."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(_enum(USER_ROLES, "user_role"), default="viewer")
    project_id: Mapped[str | None] = mapped_column(String(255))
    # Wrong passwords in a row from any source, and until when a source
    # that sent wrong passwords may not try this account (a delay that
    # doubles with each failure; docs/console.md, "Login lockout").
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime.datetime | None] = mapped_column(DateTime)

    tokens: Mapped[list["ApiToken"]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )


class LoginSource(Base):
    """Wrong passwords sent from one client address (for any account), and
    until when it may send none ([api] lockout_failure_attempts,
    lockout_duration_s): the guesser is stopped, not the account."""

    __tablename__ = "login_sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(64), unique=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime.datetime | None] = mapped_column(DateTime)
    last_failed_at: Mapped[datetime.datetime | None] = mapped_column(DateTime)


class ApiToken(Base):
    """A bearer token; only its SHA-256 digest is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTime)

    user: Mapped[User] = relationship(back_populates="tokens")


class GpuUsageSample(Base):
    """One physical GPU's use at one moment, for the console's charts.

    ``allocated_*`` are what the scheduler handed out; ``measured_*`` are
    what the GPU server reported in its agent's heartbeat, NULL until an
    agent reports them (never filled in with guesses)."""

    __tablename__ = "gpu_usage_samples"
    __table_args__ = (Index(None, "gpu_uuid", "sampled_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The GPU's uuid, not a foreign key: history outlives a removed GPU.
    gpu_uuid: Mapped[str] = mapped_column(String(UUID_LEN))
    sampled_at: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    allocated_compute_pct: Mapped[int] = mapped_column(Integer)
    allocated_memory_mb: Mapped[int] = mapped_column(Integer)
    measured_compute_pct: Mapped[float | None] = mapped_column(Float)
    measured_memory_mb: Mapped[int | None] = mapped_column(Integer)


class VGpuUsageSample(Base):
    """One bound vGPU of an allocation at one moment (same columns as
    :class:`GpuUsageSample`, per slice)."""

    __tablename__ = "vgpu_usage_samples"
    __table_args__ = (
        Index(None, "allocation_uuid", "sampled_at"),
        Index(None, "gpu_uuid", "sampled_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    allocation_uuid: Mapped[str] = mapped_column(String(UUID_LEN))
    vgpu_uuid: Mapped[str] = mapped_column(String(UUID_LEN))
    gpu_uuid: Mapped[str] = mapped_column(String(UUID_LEN))
    sampled_at: Mapped[datetime.datetime] = mapped_column(DateTime, index=True)
    allocated_compute_pct: Mapped[int] = mapped_column(Integer)
    allocated_memory_mb: Mapped[int] = mapped_column(Integer)
    measured_compute_pct: Mapped[float | None] = mapped_column(Float)
    measured_memory_mb: Mapped[int | None] = mapped_column(Integer)
