"""Placeholder until the contact assets land."""

import dagster as dg

from spotler_pipeline.defs.config import DeploymentSettings


def build_contact_definitions(settings: DeploymentSettings) -> dg.Definitions:
    return dg.Definitions()
