"""GPU rows say ``allocated_*`` for what their vGPUs hold.

``used_compute_pct``/``used_memory_mb`` read like the ``measured_*`` figures
the agents report; they are the sums of the bound vGPUs' sizes. The
scheduler's index over them is renamed with them.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

OLD_INDEX = "ix_physical_gpus_pool_used_compute_pct_used_memory_mb_id"
NEW_INDEX = "ix_physical_gpus_pool_allocated"
RENAMES = (("used_compute_pct", "allocated_compute_pct"),
           ("used_memory_mb", "allocated_memory_mb"))


def _rename(index_before, index_after, renames):
    # The index goes first: SQLite's batch mode copies the table, and an
    # index naming the old columns would not survive the copy.
    op.drop_index(index_before, table_name="physical_gpus")
    with op.batch_alter_table("physical_gpus") as batch_op:
        for old, new in renames:
            batch_op.alter_column(old, new_column_name=new, existing_type=sa.Integer(),
                                  existing_nullable=False)
    op.create_index(index_after, "physical_gpus",
                    ["pool", *(new for _old, new in renames), "id"], unique=False)


def upgrade():
    _rename(OLD_INDEX, NEW_INDEX, RENAMES)


def downgrade():
    _rename(NEW_INDEX, OLD_INDEX, tuple((new, old) for old, new in RENAMES))
