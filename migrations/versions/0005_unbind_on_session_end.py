"""Whether an acquire-mode allocation is unbound when its session ends.

Until now every acquire-mode allocation was; a libvirt domain in reserve
mode needs one that stays bound while the domain runs, whatever the
programs in it do. Existing acquire-mode allocations keep the old rule.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("allocations") as batch_op:
        batch_op.add_column(sa.Column("unbind_on_session_end", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    # A literal, not a bound string: PostgreSQL compares its enum column
    # with an untyped literal but not with a varchar parameter.
    op.execute(sa.text("UPDATE allocations SET unbind_on_session_end = :yes "
                       "WHERE mode = 'acquire'").bindparams(yes=True))


def downgrade():
    with op.batch_alter_table("allocations") as batch_op:
        batch_op.drop_column("unbind_on_session_end")
