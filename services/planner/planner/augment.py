"""What is added to a plan after it is made (one function per concern, each in its own module):
the mode's forced or extra tasks, knowledge-graph context, web research, the metadata filters that scope
the tenant-document lookup (planner.filters)."""

from __future__ import annotations

from collections.abc import Callable

from moe_core.contracts import ChatRequest, Plan
from planner import filters, graph_tasks, modes, research_tasks
from planner.settings import PlannerSettings

Augmenter = Callable[[Plan, ChatRequest, PlannerSettings], Plan]

# Each augmenter returns the plan unchanged when it does not apply. Order matters: modes first.
AUGMENTERS: list[Augmenter] = [modes.apply_mode, research_tasks.add_for_current_facts,
                               research_tasks.ensure_answering, graph_tasks.add_graph_task,
                               filters.add_metadata_filters]


def augment(plan: Plan, request: ChatRequest, settings: PlannerSettings) -> Plan:
    for step in AUGMENTERS:
        plan = step(plan, request, settings)
    return plan
