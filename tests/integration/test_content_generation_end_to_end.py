"""Content written by a model through the real parts: API -> Temporal dev server -> worker (LLM task queue)
-> the real ``openai`` client -> an OpenAI-compatible server on loopback that is rate-limited or refuses."""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest

from tests.api.test_content_generation import content_when
from tests.conftest import Account
from tests.support.openai_server import OpenAIServer


@pytest.mark.usefixtures("worker")
async def test_a_rate_limited_model_is_retried_and_a_refusing_one_fails_the_run_with_its_reason(
    client: httpx2.AsyncClient, owner: Account, llm: OpenAIServer
) -> None:
    llm.reply = lambda _request: json.dumps(
        {"title": "Automation, honestly", "body": "Automate the boring parts first. " * 120, "tags": [], "sections": []}
    )

    llm.failures = [429]
    first = await client.post(
        "/api/content-generation/social-media",
        headers=owner.headers,
        json={"topic": "automation", "platform": "x", "hashtags": "#automation"},
    )
    post = await content_when(client, owner, first.json()["content_id"].replace("content-", "cont_"), "draft")
    assert post["title"] == "Automation, honestly"
    assert len(post["body"]) <= 280 and post["body"].endswith("…\n\n#automation")  # cut to X's limit
    assert post["metadata"]["tokens_used"] == 2 and post["metadata"]["model"] == "test-model"
    assert len(llm.requests) == 2  # the 429, then the retry that wrote it

    llm.failures = [400]
    second = await client.post("/api/content-generation/blog-post", headers=owner.headers, json={"topic": "refused"})
    failed = await content_when(client, owner, second.json()["content_id"].replace("content-", "cont_"), "failed")
    assert "test server answers 400" in failed["metadata"]["error"]
    run_id = second.json()["run_id"].replace("run-", "run_")
    async with asyncio.timeout(30):
        while (run := (await client.get(f"/v1/workflow-runs/{run_id}", headers=owner.headers)).json())[
            "status"
        ] != "failed":
            await asyncio.sleep(0.1)
    assert "test server answers 400" in run["error"]
    assert len(llm.requests) == 3  # a 400 is not retried
