"""Events carry the project of the allocation they are about.

Every viewer could read every event, so one project saw another's
allocations (their uuids, queueing, preemptions) in /v1/events and the
console. Existing allocation events take their allocation's project; those
of allocations deleted since keep none and are shown to admins only.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.add_column(sa.Column("project_id", sa.String(255), nullable=True))
    op.execute(sa.text(
        "UPDATE events SET project_id = (SELECT allocations.project_id FROM allocations "
        "WHERE allocations.uuid = events.object_uuid) WHERE object_type = 'allocation'"))


def downgrade():
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("project_id")
