"""lines.row_digest: a 64-bit digest of what a waiting or finished line's row holds

A re-run stores every line it read again. A held, skipped or rejected line whose row would be
written with exactly the values it already has (same digest, same status) is only marked as
seen by the run (``last_run_id``, ``updated_at``) instead of being rewritten with its payload.
NULL (every row before this revision, and planned lines) means "unknown": the row is written
in full, as before.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 05:25:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0002'
down_revision: Union[str, Sequence[str], None] = '0001'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the nullable column: no row is rewritten."""
    op.add_column('lines', sa.Column('row_digest', sa.BigInteger(), nullable=True))


def downgrade() -> None:
    """Drop the column in place (SQLite 3.35 or later): rebuilding ``lines`` would trip the
    foreign keys of the tables that refer to it."""
    op.drop_column('lines', 'row_digest')
