"""runs.owner: the process that runs it, so a killed run is recognised as interrupted

A run killed outright (out of memory, a reboot, ``kill -9``) cannot record that it stopped: its
row stayed ``running`` for ever. Each run now records its owner (machine, boot, process
namespace, process number); the next run on the database marks a ``running`` run whose owner
is gone ``interrupted``. NULL (every run before this revision) is never marked.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 08:40:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Add the nullable column: no row is rewritten."""
    op.add_column('runs', sa.Column('owner', sa.Text(), nullable=True))


def downgrade() -> None:
    """Drop the column in place (SQLite 3.35 or later): rebuilding ``runs`` would trip the
    foreign keys of the tables that refer to it."""
    op.drop_column('runs', 'owner')
