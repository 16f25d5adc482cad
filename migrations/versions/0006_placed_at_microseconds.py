"""allocations.placed_at to the microsecond on MySQL and MariaDB.

Their DATETIME dropped the fraction, so a binding made in the same second
as an ended session was last seen looked older than it, and the session's
report unbound the new application. PostgreSQL and SQLite kept microseconds
already.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _is_mysql():
    return op.get_bind().dialect.name in ("mysql", "mariadb")


def upgrade():
    if _is_mysql():
        op.alter_column("allocations", "placed_at", type_=mysql.DATETIME(fsp=6),
                        existing_type=sa.DateTime(), existing_nullable=True)


def downgrade():
    if _is_mysql():
        op.alter_column("allocations", "placed_at", type_=sa.DateTime(),
                        existing_type=mysql.DATETIME(fsp=6), existing_nullable=True)
