"""Names Temporal needs on both sides of the wire: task queues and search attributes.

They live here (not in ``core``) because workflow code may import ``schemas`` and nothing else of ours.
"""

from enum import StrEnum

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes


class QueueKind(StrEnum):
    MAIN = "main"
    """Workflows and every activity without a limit of its own."""
    LLM = "llm"
    """LLM calls, so a worker caps them (``BAS_LLM_MAX_CONCURRENT``) without slowing email or records."""


def task_queue(prefix: str, kind: QueueKind) -> str:
    """``bas-main``, ``bas-llm``. The prefix (``BAS_TASK_QUEUE_PREFIX``) separates deployments and tests."""
    return f"{prefix}-{kind}"


def sibling_queue(workflow_task_queue: str, kind: QueueKind) -> str:
    """The queue of another kind in the same deployment as the workflow's own queue.

    Workflow code cannot read settings, so it derives the LLM queue from ``workflow.info().task_queue``.
    """
    prefix = workflow_task_queue.rsplit("-", 1)[0]
    return task_queue(prefix, kind)


COMPANY_ID = SearchAttributeKey.for_keyword("CompanyId")
ENTITY_ID = SearchAttributeKey.for_keyword("EntityId")
WORKFLOW_CONFIG_ID = SearchAttributeKey.for_keyword("WorkflowConfigId")

SEARCH_ATTRIBUTES = (COMPANY_ID, ENTITY_ID, WORKFLOW_CONFIG_ID)


def run_attributes(company_id: str, entity_id: str, config_id: str | None = None) -> TypedSearchAttributes:
    """What the Temporal UI filters one tenant's runs by: its company, the record, and the config if any."""
    pairs = [SearchAttributePair(COMPANY_ID, company_id), SearchAttributePair(ENTITY_ID, entity_id)]
    if config_id is not None:
        pairs.append(SearchAttributePair(WORKFLOW_CONFIG_ID, config_id))
    return TypedSearchAttributes(pairs)
