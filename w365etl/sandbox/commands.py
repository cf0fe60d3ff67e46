"""``w365etl sandbox partner-center``: run the Partner Center simulator until Ctrl-C / SIGTERM.

A typer sub-app; the CLI registers it as ``app.add_typer(sandbox.commands.app, name="sandbox")``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(no_args_is_help=True, help="Local provider simulators (for demos, tests and `make run`).")


@app.callback()
def _sandbox() -> None:
    """Local provider simulators."""


@app.command("partner-center")
def partner_center(
    port: Annotated[int, typer.Option("--port", help="TCP port on 127.0.0.1 (0 = any free port).")] = 8765,
    reference: Annotated[Optional[Path], typer.Option(
        "--reference", help="Reference folder: products.csv → catalog, provider_accounts.csv → customers.",
        exists=True, file_okay=False, dir_okay=True)] = None,
    latency_ms: Annotated[float, typer.Option("--latency-ms", min=0, help="Delay added to every API answer.")] = 0,
    fault_rate: Annotated[float, typer.Option(
        "--fault-rate", min=0.0, max=1.0,
        help="Share of API requests that get a fault (429, 500/503, slow, dropped, commit-then-fail).")] = 0.0,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed of the fault RNG (repeatable runs).")] = None,
    host: Annotated[str, typer.Option("--host", help="Interface to listen on.")] = "127.0.0.1",
) -> None:
    """Simulate Microsoft Partner Center (NCE) on http://HOST:PORT until Ctrl-C or SIGTERM."""
    from w365etl.sandbox.partner_center import serve

    try:
        serve(port=port, host=host, reference=reference, latency_ms=latency_ms, fault_rate=fault_rate, seed=seed)
    except OSError as error:
        typer.echo(f"w365etl: cannot listen on {host}:{port} ({error.strerror or error})", err=True)
        raise typer.Exit(2) from None
