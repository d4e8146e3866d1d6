"""A local Spotler (MailPlus) REST API for tests, the demo and the benchmark.

It implements Spotler's published contract, its Swagger 1.2 ``api-docs``
(``spotler-api-docs.json`` beside this module), on its own, sharing nothing with
``spotler_pipeline.client``, and is deliberately as strict as that contract: OAuth 1.0a
signatures are checked, and a query parameter an operation does not name, a required one
missing or a value not in its documented format (``ISODateParam`` ``yyyy-MM-ddTHH:mm:ss``,
``DateParam`` ``yyyyMMddHHmmss``, integers, booleans, ``pageSize`` up to 10,000) is a 400
``INVALID_PARAMS``. Answers follow the contract's models: optional fields absent (never
null), money in cents, form answers as arrays of strings; ``contract_exact=True`` leaves
out every optional field the data does not need.

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
