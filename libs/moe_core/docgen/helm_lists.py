"""The chart's components for the registry's services (helm/moe-fleet/values.yaml, `components:`), written from
the registry (moe_core.stage_registry), each declaration (its stores, what it consumes) and its Deployment.
The other components of the chart (opa, llm) stay hand-written below the generated ones."""

from __future__ import annotations

from pathlib import Path

from moe_core import stage_registry
from moe_core.docgen.compose_lists import needs, uses_postgres
from moe_core.docgen.retention_doc import topic_label
from moe_core.docgen.yaml_lines import env_lines, flow
from moe_core.stage import EVERY_TOPIC
from moe_core.stage_registry import Service


def scaling_topic(entry: Service) -> str:
    """The topic whose consumer lag scales the component: its Deployment's, else the first it consumes."""
    if entry.deploy.autoscaling.topic is not None:
        return entry.deploy.autoscaling.topic
    declared = entry.declaration()
    consumed = [c.topic for c in declared.consumes if c.topic != EVERY_TOPIC] if declared is not None else []
    return topic_label(consumed[0]) if consumed else ""


def component(entry: Service) -> str:
    deploy, scaling = entry.deploy, entry.deploy.autoscaling
    lines = [f"  {entry.name}:" + (f"  # {deploy.note}" if deploy.note else ""), "    enabled: true",
             f"    module: {entry.package}", f"    replicas: {deploy.replicas}", f"    port: {entry.port}"]
    lines += ["    postgres: true"] if uses_postgres(entry) else []
    lines += ["    neo4j: true"] if "neo4j" in needs(entry) else []
    lines += [f"    {key}: {flow(value)}" for key, value in deploy.helm.items()]
    env = deploy.env | deploy.helm_env
    lines += ["    env:", *env_lines(env, "      ")] if env else ["    env: {}"]
    topic = scaling_topic(entry)
    lines += ["    resources:" + (f"  # {deploy.resources_note}" if deploy.resources_note else ""),
              f"      requests: {{cpu: {deploy.cpu}, memory: {deploy.memory}}}",
              f"      limits: {{memory: {deploy.memory_limit}}}",
              "    autoscaling:", "      enabled: false", f"      minReplicas: {scaling.min}",
              f"      maxReplicas: {scaling.max}", f"      lagThreshold: {scaling.lag}",
              f"      topic: {flow(topic)}" + (f"  # {scaling.note}" if scaling.note else "")]
    lines += ["      targetCPUUtilizationPercentage: 75"] if not topic else []
    return "\n".join(lines)


def components(repo: Path) -> str:
    """Every registry service's component, in the registry's order."""
    return "\n\n".join(component(entry) for entry in stage_registry.FLEET)
