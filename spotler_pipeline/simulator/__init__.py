"""A local Spotler (MailPlus) REST API for tests, the demo and the benchmark.

It implements the published contract (``/work/shared/spotler-api.md``) on its own, sharing
nothing with ``spotler_pipeline.client``, and is deliberately as strict as that contract:
OAuth 1.0a signatures, paging limits and date formats are all checked.

    with Simulator(seed=1, scale=0.01) as sim:
        sim.base_url, sim.consumer_key, sim.consumer_secret
        sim.advance(timedelta(days=1))  # later opens appear, statistics mature
        sim.inject(Fault("rate_limit", path_pattern="/opens", retry_after=0))

Admin endpoints (no auth) beside the API prefix: ``GET/POST /_simulator/clock``,
``GET/POST/DELETE /_simulator/faults``, ``GET /_simulator/summary``,
``POST /_simulator/prewarm``.
"""

from spotler_pipeline.simulator._account import Account
from spotler_pipeline.simulator._faults import KINDS as FAULT_KINDS
from spotler_pipeline.simulator._faults import Fault
from spotler_pipeline.simulator._simulator import Simulator

__all__ = ["FAULT_KINDS", "Account", "Fault", "Simulator"]
