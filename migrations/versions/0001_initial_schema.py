"""Initial schema of the pool.

Nodes, physical GPUs, allocations, vGPUs, events, users and API tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-28 12:21:26.932429
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "allocations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("consumer", sa.String(length=255), nullable=True),
        sa.Column("project_id", sa.String(length=255), nullable=True),
        sa.Column("user_id", sa.String(length=255), nullable=True),
        sa.Column(
            "mode",
            sa.Enum(
                "reserve",
                "acquire",
                name="allocation_mode",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("native", sa.Boolean(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("preemptible", sa.Boolean(), nullable=False),
        sa.Column("can_preempt", sa.Boolean(), nullable=False),
        sa.Column("requeue", sa.Boolean(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("allow_remote", sa.Boolean(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "queued",
                "active",
                "preempted",
                "degraded",
                name="allocation_state",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("state_reason", sa.Text(), nullable=True),
        sa.Column("placed_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_allocations")),
        sa.UniqueConstraint("uuid", name=op.f("uq_allocations_uuid")),
    )
    op.create_index(op.f("ix_allocations_consumer"), "allocations", ["consumer"], unique=False)
    op.create_index(op.f("ix_allocations_project_id"), "allocations", ["project_id"], unique=False)
    op.create_index(
        op.f("ix_allocations_state_priority_created_at"),
        "allocations",
        ["state", "priority", "created_at"],
        unique=False,
    )

    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column(
            "level",
            sa.Enum(
                "info",
                "warning",
                "error",
                name="event_level",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("object_type", sa.String(length=32), nullable=False),
        sa.Column("object_uuid", sa.String(length=36), nullable=True),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(op.f("ix_events_created_at"), "events", ["created_at"], unique=False)
    op.create_index(
        op.f("ix_events_object_type_object_uuid"),
        "events",
        ["object_type", "object_uuid"],
        unique=False,
    )

    op.create_table(
        "nodes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column(
            "state",
            sa.Enum("up", "down", name="node_state", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("last_heartbeat_at", sa.DateTime(), nullable=True),
        sa.Column("endpoints", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nodes")),
        sa.UniqueConstraint("hostname", name=op.f("uq_nodes_hostname")),
        sa.UniqueConstraint("uuid", name=op.f("uq_nodes_uuid")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "operator",
                "viewer",
                name="user_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("project_id", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("name", name=op.f("uq_users_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)

    op.create_table(
        "physical_gpus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("node_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("pci_address", sa.String(length=32), nullable=True),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column(
            "pool",
            sa.Enum("orionx", "native", name="gpu_pool", native_enum=False, create_constraint=True),
            nullable=False,
        ),
        sa.Column("draining", sa.Boolean(), nullable=False),
        sa.Column("memory_oversub_ratio", sa.Float(), nullable=False),
        sa.Column(
            "health",
            sa.Enum(
                "healthy", "unhealthy", name="gpu_health", native_enum=False, create_constraint=True
            ),
            nullable=False,
        ),
        sa.Column("used_compute_pct", sa.Integer(), nullable=False),
        sa.Column("used_memory_mb", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["node_id"],
            ["nodes.id"],
            name=op.f("fk_physical_gpus_node_id_nodes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_physical_gpus")),
        sa.UniqueConstraint("node_id", "index", name=op.f("uq_physical_gpus_node_id_index")),
        sa.UniqueConstraint("uuid", name=op.f("uq_physical_gpus_uuid")),
    )
    op.create_table(
        "vgpus",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("allocation_id", sa.Integer(), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("physical_gpu_id", sa.Integer(), nullable=True),
        sa.Column("compute_pct", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("bound_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["allocation_id"],
            ["allocations.id"],
            name=op.f("fk_vgpus_allocation_id_allocations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["physical_gpu_id"],
            ["physical_gpus.id"],
            name=op.f("fk_vgpus_physical_gpu_id_physical_gpus"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vgpus")),
        sa.UniqueConstraint("allocation_id", "index", name=op.f("uq_vgpus_allocation_id_index")),
        sa.UniqueConstraint("uuid", name=op.f("uq_vgpus_uuid")),
    )
    op.create_index(op.f("ix_vgpus_physical_gpu_id"), "vgpus", ["physical_gpu_id"], unique=False)


def downgrade():
    # Dropping a table drops its indexes; dropping them first fails on MySQL
    # where an index backs a foreign key.
    op.drop_table("vgpus")
    op.drop_table("physical_gpus")
    op.drop_table("api_tokens")
    op.drop_table("users")
    op.drop_table("nodes")
    op.drop_table("events")
    op.drop_table("allocations")
