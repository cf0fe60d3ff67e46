"""Local simulators of the providers w365etl buys from (stdlib HTTP servers, no network).

``w365etl.sandbox.partner_center`` simulates Microsoft Partner Center; ``commands`` is the
``w365etl sandbox …`` command group that runs one standalone.
"""
