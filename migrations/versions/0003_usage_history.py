"""Usage history for the operator console's charts.

Samples of each physical GPU and each bound vGPU: compute share and memory,
allocated and (once agents report it) measured. Pruned by age.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 13:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_UUID = sa.String(length=36)


def _usage_columns():
    return [
        sa.Column("sampled_at", sa.DateTime(), nullable=False),
        sa.Column("allocated_compute_pct", sa.Integer(), nullable=False),
        sa.Column("allocated_memory_mb", sa.Integer(), nullable=False),
        sa.Column("measured_compute_pct", sa.Float(), nullable=True),
        sa.Column("measured_memory_mb", sa.Integer(), nullable=True),
    ]


def upgrade():
    op.create_table(
        "gpu_usage_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gpu_uuid", _UUID, nullable=False),
        *_usage_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gpu_usage_samples")),
    )
    op.create_index(
        op.f("ix_gpu_usage_samples_gpu_uuid_sampled_at"),
        "gpu_usage_samples",
        ["gpu_uuid", "sampled_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_gpu_usage_samples_sampled_at"), "gpu_usage_samples", ["sampled_at"], unique=False
    )
    op.create_table(
        "vgpu_usage_samples",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("allocation_uuid", _UUID, nullable=False),
        sa.Column("vgpu_uuid", _UUID, nullable=False),
        sa.Column("gpu_uuid", _UUID, nullable=False),
        *_usage_columns(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vgpu_usage_samples")),
    )
    op.create_index(
        op.f("ix_vgpu_usage_samples_allocation_uuid_sampled_at"),
        "vgpu_usage_samples",
        ["allocation_uuid", "sampled_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_vgpu_usage_samples_gpu_uuid_sampled_at"),
        "vgpu_usage_samples",
        ["gpu_uuid", "sampled_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_vgpu_usage_samples_sampled_at"), "vgpu_usage_samples", ["sampled_at"], unique=False
    )


def downgrade():
    op.drop_table("vgpu_usage_samples")
    op.drop_table("gpu_usage_samples")
