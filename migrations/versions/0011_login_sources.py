"""Wrong passwords are counted per source (client address) as well as per
account: the source that guesses is slowed and stopped, not the account's
owner.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "login_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("locked_until", sa.DateTime(), nullable=True),
        sa.Column("last_failed_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_login_sources"),
        sa.UniqueConstraint("source", name="uq_login_sources_source"),
    )


def downgrade():
    op.drop_table("login_sources")
