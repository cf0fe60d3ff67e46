"""A whole provisioning run without Prefect: the flow's stages in the flow's order, as plain calls.

``flows/provision_orders.py`` is the source of truth; this mirrors its body (read orders →
waiting lines → state → plan → verify accounts → persist → provision → fulfil → outputs →
finish the run) calling the same task functions (``task.fn``) and ``w365etl.provisioning``,
so property tests can run hundreds of runs on a real database in seconds. It writes no report
files (``build_outputs`` still checks the conservation equations) — the flow tests cover those.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from pathlib import Path

from w365etl import provisioning
from w365etl.domain.outcomes import PLANNED
from w365etl.reference import ReferenceData
from w365etl.settings import Settings


def run_stages(store, settings: Settings, files: list[Path], *, run_id: str, as_of: dt.date,
               reference: ReferenceData | None = None) -> dict:
    """One real (not dry) run on ``store``; returns its ``summary.json`` content."""
    from flows import provision_orders as stages
    from flows import wiring

    stages.load_reference.fn(store, reference, False)
    ingest, line_issues = stages.read_orders.fn(files, settings)
    lines = stages.add_waiting_lines.fn(store, ingest.lines)
    state = stages.load_state.fn(store, lines, reference, False)
    plan = stages.make_plan.fn(lines, line_issues, state, settings, as_of)
    provisioning.ensure_providers(plan, settings)
    providers = wiring.build_providers(settings, provisioning.required_providers(plan), store=store, run_id=run_id,
                                       state=state)
    try:
        invalid = stages.verify_provider_accounts.fn(plan, providers)
        if invalid:
            plan = stages.make_plan.fn(lines, line_issues, state, settings, as_of, invalid)
        persisted = stages.persist_plan.fn(store, run_id, plan)
        plan = provisioning.as_persisted(plan, persisted)
        planned = persisted[persisted["bucket"] == PLANNED]
        results = stages.provision.fn(store, run_id, plan, planned, providers)
        lines, issues = provisioning.apply_results(plan, planned, results, keep_line_ids=True,
                                                   line_pks=persisted["line_pk"])
        fulfilled = stages.fulfil_orders.fn(store, run_id, lines, as_of)
        files_records = [asdict(record) for record in ingest.files]
        outputs = provisioning.build_outputs(
            run_id=run_id, plan=plan, lines=lines, line_issues=issues, file_issues=ingest.file_issues,
            files=files_records, headers=ingest.headers, fulfilled=fulfilled, stored_contracts=state.contracts,
            provider_modes=wiring.provider_modes(settings), is_dry_run=False,
        )
        store.finish_run(run_id, outputs.summary, files_records, outputs.exceptions, outputs.outcomes)
    finally:
        for provider in providers.values():
            provider.close()
        store.release_customers()
    return outputs.summary
