"""The traffic mix the live observability tests send through a fleet: every dashboard concern gets work.

- a two-expert question (planner model, two experts, graph context, judge) and its exact repeat (cache hit);
- a streamed question (time to first token);
- a translation whose first inference server fails once (failover: the breaker opens);
- a precision question (the mcp tools, no model);
- an unreadable message on the requests topic (the planner dead-letters it).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import openai
from aiokafka import AIOKafkaProducer

from moe_core.runtime.kafka_clients import client_kwargs
from tests.conftest import Scripted
from tests.support.fleet import Fleet


@dataclass
class Traffic:
    requests: int = 0
    merged_response_id: str = ""  # the two-expert request: gateway -> planner -> experts -> merger -> gateway
    response_ids: list[str] = field(default_factory=list)
    more: Callable[[], Traffic] | None = field(default=None, repr=False, compare=False)  # one more round


def plan_reply(*tasks: tuple[str, str]) -> str:
    return json.dumps({"tasks": [{"category": c, "instruction": i} for c, i in tasks]})


def send_traffic(base_url: str, api_key: str, fleet: Fleet, scripted: Scripted, scripted_b: Scripted,
                 kafka: str, round_no: int) -> Traffic:
    m = f"O{round_no}{uuid.uuid4().hex[:6]}"
    scripted.script([
        {"model": "planner-model", "contains": f"tides {m}",
         "reply": plan_reply(("general", f"Explain tides {m}"), ("science", f"Give the physics of tides {m}"))},
        {"model": "expert-model", "contains": f"Explain tides {m}",
         "reply": "The moon pulls the sea.\nCONFIDENCE: medium"},
        {"model": "expert-model", "contains": f"physics of tides {m}",
         "reply": "Differential gravity of moon and sun.\nCONFIDENCE: medium"},
        {"model": "judge-model", "contains": m, "reply": "Tides come from the moon's differential gravity."},
        {"model": "planner-model", "contains": f"capital {m}", "reply": plan_reply(("general", f"Capital {m}"))},
        {"model": "expert-model", "contains": f"Capital {m}", "reply": "Paris.\nCONFIDENCE: high"},
        {"model": "planner-model", "contains": f"Italian {m}",
         "reply": plan_reply(("translation", f"Translate it {m}"))},
        {"model": "fleet-model", "contains": m, "reply": "Grazie mille.\nCONFIDENCE: high"},
    ])
    scripted_b.script([{"model": "fleet-model", "contains": m, "reply": "Grazie mille (B).\nCONFIDENCE: high"}])
    scripted_b.state.up()
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=90)
    out = Traffic()

    def ask(question: str, user: str = "observability") -> str:
        response = client.chat.completions.create(model="moe-orchestrator", user=user,
                                                  messages=[{"role": "user", "content": question}])
        assert response.choices[0].message.content, question
        out.requests += 1
        rid = response.id.removeprefix("chatcmpl-")
        out.response_ids.append(rid)
        return rid

    out.merged_response_id = ask(f"Why are there tides {m}?")
    ask(f"Why are there tides {m}?")  # the exact repeat: answered by the gateway's cache
    stream = client.chat.completions.create(model="moe-orchestrator", stream=True,
                                            messages=[{"role": "user", "content": f"What is the capital {m}?"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    out.requests += 1
    scripted_b.state.fail(503, 1)  # server B's next call fails: the call moves to server A
    try:
        ask(f"Translate 'thank you very much' into Italian {m}", user=m)  # a new user: no affinity to A yet
    finally:
        scripted_b.state.fail(503, 0)
    ask(f"What is 17% of {2340 + round_no}?")
    asyncio.run(_publish_garbage(kafka, fleet["planner"].env["MOE_TOPIC_NAMESPACE"], m))
    return out


async def _publish_garbage(kafka: str, namespace: str, marker: str) -> None:
    producer = AIOKafkaProducer(**client_kwargs(bootstrap=kafka))
    await producer.start()
    try:
        await producer.send_and_wait(f"{namespace}.requests.v1", b'{"not": "a request"}', key=marker.encode())
    finally:
        await producer.stop()
