"""Revocation of ended allocations (issue 17): a binding generation per
allocation, capacity held while an ended binding's sessions may still run,
and the moment each node last registered.

``allocations.binding_generation`` is bumped whenever the allocation's vGPUs
are bound anew, unbound, preempted, resized down, moved or deleted; session
tokens carry it, and GPU servers refuse tokens older than what they were
told. ``token_generation`` is the generation of the newest token minted:
a binding no token was minted for has no session to wait for.
``capacity_holds`` keeps a released vGPU's capacity counted on its GPU
until its host reports no live session of the allocation.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


# Columns are added and dropped in place (SQLite has ALTER TABLE DROP COLUMN
# since 3.35): batch mode would copy ``nodes`` and ``allocations``, and
# dropping the originals with foreign keys on deletes their GPUs and vGPUs.
def upgrade():
    op.add_column("allocations", sa.Column("binding_generation", sa.Integer(), nullable=False,
                                           server_default="0"))
    op.add_column("allocations", sa.Column("token_generation", sa.Integer(), nullable=True))
    # To the microsecond, as allocations.placed_at, which it is compared with.
    op.add_column("nodes", sa.Column(
        "registered_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb"),
        nullable=True))
    op.create_table(
        "capacity_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("allocation_uuid", sa.String(36), nullable=False),
        sa.Column("physical_gpu_id", sa.Integer(), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=False),
        sa.Column("compute_pct", sa.Integer(), nullable=False),
        sa.Column("memory_mb", sa.Integer(), nullable=False),
        sa.Column("below_generation", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["physical_gpu_id"], ["physical_gpus.id"],
                                name="fk_capacity_holds_physical_gpu_id_physical_gpus",
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name="pk_capacity_holds"),
    )
    op.create_index("ix_capacity_holds_hostname", "capacity_holds", ["hostname"])
    op.create_index("ix_capacity_holds_expires_at", "capacity_holds", ["expires_at"])


def downgrade():
    op.drop_index("ix_capacity_holds_expires_at", table_name="capacity_holds")
    op.drop_index("ix_capacity_holds_hostname", table_name="capacity_holds")
    op.drop_table("capacity_holds")
    op.drop_column("nodes", "registered_at")
    op.drop_column("allocations", "token_generation")
    op.drop_column("allocations", "binding_generation")
