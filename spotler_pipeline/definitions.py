"""The code location's ``Definitions``."""

import dagster as dg

defs = dg.Definitions()
