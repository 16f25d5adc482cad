"""Index for the scheduler's candidate query.

Placing a vGPU reads the GPUs of one pool with enough free compute, in
order of use (busiest first for binpack, idlest first for spread); this
index gives that order, so the read stops at its LIMIT instead of sorting
the pool.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:40:00.000000
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index(
        op.f("ix_physical_gpus_pool_used_compute_pct_used_memory_mb_id"),
        "physical_gpus",
        ["pool", "used_compute_pct", "used_memory_mb", "id"],
        unique=False,
    )


def downgrade():
    op.drop_index(
        op.f("ix_physical_gpus_pool_used_compute_pct_used_memory_mb_id"), table_name="physical_gpus"
    )
