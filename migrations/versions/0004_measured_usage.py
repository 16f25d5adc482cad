"""Measured usage on GPUs and vGPUs.

The figures agents report in heartbeats were kept in the memory of the
controller that received them; in the database every controller and the API
see them.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLES = ("physical_gpus", "vgpus")


def upgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("measured_compute_pct", sa.Float(), nullable=True))
            batch_op.add_column(sa.Column("measured_memory_mb", sa.Integer(), nullable=True))
            batch_op.add_column(sa.Column("measured_at", sa.DateTime(), nullable=True))


def downgrade():
    for table in TABLES:
        with op.batch_alter_table(table) as batch_op:
            batch_op.drop_column("measured_at")
            batch_op.drop_column("measured_memory_mb")
            batch_op.drop_column("measured_compute_pct")
