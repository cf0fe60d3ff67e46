"""initial schema: every table as it stood when migrations were introduced

Generated with autogenerate from ``w365etl/adapters/tables.py`` and reviewed by hand:

- exact money and quantities (``tables.ExactDecimal``) are frozen here as their DDL —
  ``NUMERIC(38, 10)`` on PostgreSQL, ``VARCHAR(48)`` text on SQLite — so that this revision
  never changes when the model's Python type does;
- unique constraints keep the database's default names, exactly as ``create_all`` made them,
  so a database built before migrations matches this revision and can be adopted (stamped);
- indexes are the models' ``index=True`` names (``ix_<table>_<column>``) plus
  ``ix_provider_accounts_name``.

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-29 16:15:01.552125

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa

#: tables.ExactDecimal as DDL: NUMERIC on PostgreSQL, canonical decimal text on SQLite
EXACT_DECIMAL = sa.String(length=48).with_variant(sa.Numeric(38, 10), "postgresql")


# revision identifiers, used by Alembic.
revision: str = '0001'
down_revision: Union[str, Sequence[str], None] = None
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Create every table, parents first."""
    op.create_table('customers',
    sa.Column('customer_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('crm_customer_id', sa.String(length=64), nullable=True),
    sa.Column('customer_name', sa.String(length=400), nullable=False),
    sa.Column('name_key', sa.String(length=400), nullable=False),
    sa.PrimaryKeyConstraint('customer_pk'),
    sa.UniqueConstraint('crm_customer_id')
    )
    op.create_index('ix_customers_name_key', 'customers', ['name_key'])

    op.create_table('products',
    sa.Column('product_number', sa.String(length=100), nullable=False),
    sa.Column('product_name', sa.String(length=400), nullable=False),
    sa.Column('product_type', sa.String(length=40), nullable=False),
    sa.Column('provider_code', sa.String(length=60), nullable=False),
    sa.Column('provider_sku', sa.String(length=200), nullable=True),
    sa.Column('is_recurring', sa.Boolean(), nullable=False),
    sa.Column('billing_frequency', sa.String(length=20), nullable=True),
    sa.Column('provisioning_unit', sa.String(length=20), nullable=True),
    sa.Column('term_duration', sa.String(length=10), nullable=True),
    sa.Column('min_quantity', sa.Integer(), nullable=True),
    sa.Column('max_quantity', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('product_number')
    )
    op.create_table('provider_accounts',
    sa.Column('account_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('provider_code', sa.String(length=60), nullable=False),
    sa.Column('crm_customer_id', sa.String(length=64), nullable=True),
    sa.Column('customer_name', sa.String(length=400), nullable=False),
    sa.Column('name_key', sa.String(length=400), nullable=False),
    sa.Column('provider_customer_id', sa.String(length=200), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('account_pk')
    )
    op.create_index('ix_provider_accounts_name', 'provider_accounts', ['provider_code', 'name_key'])

    op.create_table('provider_submissions',
    sa.Column('submission_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('provider_code', sa.String(length=60), nullable=False),
    sa.Column('provider_customer_id', sa.String(length=200), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.Column('cart_id', sa.String(length=200), nullable=True),
    sa.Column('order_ids', sa.Text(), nullable=True),
    sa.Column('friendly_names', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('submission_pk'),
    sa.UniqueConstraint('request_id')
    )
    op.create_index('ix_provider_submissions_provider_customer_id', 'provider_submissions', ['provider_customer_id'])

    op.create_table('runs',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('as_of_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('summary_json', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('run_id')
    )
    op.create_table('billing_contracts',
    sa.Column('contract_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('contract_number', sa.String(length=40), nullable=False),
    sa.Column('contract_name', sa.String(length=600), nullable=False),
    sa.Column('customer_pk', sa.Integer(), nullable=False),
    sa.Column('contract_type', sa.String(length=20), nullable=False),
    sa.Column('contract_product_type', sa.String(length=40), nullable=False),
    sa.Column('billing_frequency', sa.String(length=20), nullable=True),
    sa.Column('currency_code', sa.String(length=3), nullable=False),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('end_date', sa.Date(), nullable=False),
    sa.Column('payment_terms', sa.String(length=40), nullable=False),
    sa.Column('process_refunds', sa.String(length=40), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_run_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['customer_pk'], ['customers.customer_pk'], ),
    sa.PrimaryKeyConstraint('contract_pk'),
    sa.UniqueConstraint('contract_number')
    )
    op.create_index('ix_billing_contracts_customer_pk', 'billing_contracts', ['customer_pk'])

    op.create_table('exceptions',
    sa.Column('exception_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('reason_code', sa.String(length=60), nullable=False),
    sa.Column('file', sa.Text(), nullable=True),
    sa.Column('row', sa.Integer(), nullable=True),
    sa.Column('sheet', sa.String(length=200), nullable=True),
    sa.Column('order_number', sa.String(length=200), nullable=True),
    sa.Column('line_key', sa.Text(), nullable=True),
    sa.Column('customer_name', sa.String(length=400), nullable=True),
    sa.Column('column', sa.String(length=400), nullable=True),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('message', sa.Text(), nullable=False),
    sa.Column('suggested_action', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('exception_pk')
    )
    op.create_index('ix_exceptions_run_id', 'exceptions', ['run_id'])

    op.create_table('files',
    sa.Column('file_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('layout', sa.String(length=20), nullable=True),
    sa.Column('dialect', sa.String(length=20), nullable=True),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('file_pk')
    )
    op.create_index('ix_files_sha256', 'files', ['sha256'])

    op.create_table('orders',
    sa.Column('order_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('order_number', sa.String(length=200), nullable=False),
    sa.Column('order_id', sa.String(length=64), nullable=True),
    sa.Column('customer_pk', sa.Integer(), nullable=True),
    sa.Column('currency_code', sa.String(length=3), nullable=True),
    sa.Column('is_fulfilled', sa.Boolean(), nullable=False),
    sa.Column('fulfilled_date', sa.Date(), nullable=True),
    sa.Column('fulfilled_run_id', sa.String(length=40), nullable=True),
    sa.Column('last_run_id', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['customer_pk'], ['customers.customer_pk'], ),
    sa.PrimaryKeyConstraint('order_pk'),
    sa.UniqueConstraint('order_number')
    )
    op.create_table('lines',
    sa.Column('line_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('line_key', sa.Text(), nullable=False),
    sa.Column('order_number', sa.String(length=200), nullable=True),
    sa.Column('customer_pk', sa.Integer(), nullable=True),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('status_reason', sa.String(length=60), nullable=True),
    sa.Column('content_signature', sa.Text(), nullable=False),
    sa.Column('last_run_id', sa.String(length=40), nullable=True),
    sa.Column('provisioned_run_id', sa.String(length=40), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=True),
    sa.Column('contract_pk', sa.Integer(), nullable=True),
    sa.Column('target_subscription_pk', sa.Integer(), nullable=True),
    sa.Column('provider_code', sa.String(length=60), nullable=True),
    sa.Column('provider_customer_id', sa.String(length=200), nullable=True),
    sa.Column('product_number', sa.String(length=100), nullable=True),
    sa.Column('quantity', EXACT_DECIMAL, nullable=True),
    sa.Column('price_per_unit', EXACT_DECIMAL, nullable=True),
    sa.Column('extended_amount', EXACT_DECIMAL, nullable=True),
    sa.Column('provisioning_unit', sa.String(length=20), nullable=True),
    sa.Column('term_duration', sa.String(length=10), nullable=True),
    sa.Column('billing_frequency', sa.String(length=20), nullable=True),
    sa.Column('provider_sku', sa.String(length=200), nullable=True),
    sa.Column('provider_subscription_id', sa.String(length=200), nullable=True),
    sa.Column('error_code', sa.String(length=200), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_pk'], ['billing_contracts.contract_pk'], ),
    sa.ForeignKeyConstraint(['customer_pk'], ['customers.customer_pk'], ),
    sa.PrimaryKeyConstraint('line_pk')
    )
    op.create_index('ix_lines_last_run_id', 'lines', ['last_run_id'])
    op.create_index('ix_lines_order_number', 'lines', ['order_number'])
    op.create_index('ix_lines_status', 'lines', ['status'])

    op.create_table('line_identifiers',
    sa.Column('identifier', sa.Text(), nullable=False),
    sa.Column('line_pk', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=10), nullable=False),
    sa.ForeignKeyConstraint(['line_pk'], ['lines.line_pk'], ),
    sa.PrimaryKeyConstraint('identifier')
    )
    op.create_index('ix_line_identifiers_line_pk', 'line_identifiers', ['line_pk'])

    op.create_table('line_outcomes',
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('line_pk', sa.Integer(), nullable=False),
    sa.Column('bucket', sa.String(length=30), nullable=False),
    sa.Column('reason_code', sa.String(length=60), nullable=True),
    sa.ForeignKeyConstraint(['line_pk'], ['lines.line_pk'], ),
    sa.ForeignKeyConstraint(['run_id'], ['runs.run_id'], ),
    sa.PrimaryKeyConstraint('run_id', 'line_pk')
    )
    op.create_table('one_time_charges',
    sa.Column('charge_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('charge_number', sa.String(length=40), nullable=False),
    sa.Column('customer_pk', sa.Integer(), nullable=False),
    sa.Column('contract_pk', sa.Integer(), nullable=False),
    sa.Column('product_number', sa.String(length=100), nullable=False),
    sa.Column('provider_code', sa.String(length=60), nullable=False),
    sa.Column('quantity', EXACT_DECIMAL, nullable=False),
    sa.Column('price_per_unit', EXACT_DECIMAL, nullable=True),
    sa.Column('extended_amount', EXACT_DECIMAL, nullable=True),
    sa.Column('charge_date', sa.Date(), nullable=False),
    sa.Column('source_line_pk', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['contract_pk'], ['billing_contracts.contract_pk'], ),
    sa.ForeignKeyConstraint(['customer_pk'], ['customers.customer_pk'], ),
    sa.ForeignKeyConstraint(['source_line_pk'], ['lines.line_pk'], ),
    sa.PrimaryKeyConstraint('charge_pk'),
    sa.UniqueConstraint('charge_number'),
    sa.UniqueConstraint('source_line_pk')
    )
    op.create_index('ix_one_time_charges_customer_pk', 'one_time_charges', ['customer_pk'])

    op.create_table('subscriptions',
    sa.Column('subscription_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subscription_number', sa.String(length=40), nullable=False),
    sa.Column('customer_pk', sa.Integer(), nullable=False),
    sa.Column('contract_pk', sa.Integer(), nullable=False),
    sa.Column('product_number', sa.String(length=100), nullable=False),
    sa.Column('provider_code', sa.String(length=60), nullable=False),
    sa.Column('provider_subscription_id', sa.String(length=200), nullable=True),
    sa.Column('quantity', EXACT_DECIMAL, nullable=False),
    sa.Column('price_per_unit', EXACT_DECIMAL, nullable=True),
    sa.Column('provisioning_unit', sa.String(length=20), nullable=True),
    sa.Column('term_duration', sa.String(length=10), nullable=True),
    sa.Column('start_date', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('source_line_pk', sa.Integer(), nullable=False),
    sa.Column('created_run_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contract_pk'], ['billing_contracts.contract_pk'], ),
    sa.ForeignKeyConstraint(['customer_pk'], ['customers.customer_pk'], ),
    sa.ForeignKeyConstraint(['source_line_pk'], ['lines.line_pk'], ),
    sa.PrimaryKeyConstraint('subscription_pk'),
    sa.UniqueConstraint('source_line_pk'),
    sa.UniqueConstraint('subscription_number')
    )
    op.create_index('ix_subscriptions_customer_pk', 'subscriptions', ['customer_pk'])

    op.create_table('subscription_changes',
    sa.Column('change_pk', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('subscription_pk', sa.Integer(), nullable=False),
    sa.Column('line_pk', sa.Integer(), nullable=False),
    sa.Column('quantity_before', EXACT_DECIMAL, nullable=False),
    sa.Column('quantity_after', EXACT_DECIMAL, nullable=False),
    sa.Column('run_id', sa.String(length=40), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['line_pk'], ['lines.line_pk'], ),
    sa.ForeignKeyConstraint(['subscription_pk'], ['subscriptions.subscription_pk'], ),
    sa.PrimaryKeyConstraint('change_pk'),
    sa.UniqueConstraint('line_pk')
    )
    op.create_index('ix_subscription_changes_subscription_pk', 'subscription_changes', ['subscription_pk'])


def downgrade() -> None:
    """Drop every table (children first)."""
    op.drop_table('subscription_changes')
    op.drop_table('subscriptions')
    op.drop_table('one_time_charges')
    op.drop_table('line_outcomes')
    op.drop_table('line_identifiers')
    op.drop_table('lines')
    op.drop_table('orders')
    op.drop_table('files')
    op.drop_table('exceptions')
    op.drop_table('billing_contracts')
    op.drop_table('runs')
    op.drop_table('provider_submissions')
    op.drop_table('provider_accounts')
    op.drop_table('products')
    op.drop_table('customers')
