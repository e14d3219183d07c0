"""A stand-in for ``GenerateContentWorkflow``, in a module of its own: the workflow sandbox re-imports the module
a workflow is defined in, and the test module's database imports do not survive that."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.content_workflows import GenerateContentInput, GenerationResult


@workflow.defn(name="GenerateContentWorkflow")
class GenerateDouble:
    """Answers with what it was given, ``company|run|publish_to|parent``, so a test can read it back."""

    @workflow.run
    async def run(self, input: GenerateContentInput) -> GenerationResult:
        told = f"{input.company_id}|{input.run_id}|{input.publish_to}|{workflow.info().parent}"
        return GenerationResult(content_id=input.content_id, status=told)
