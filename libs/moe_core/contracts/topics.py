"""Versioned topic names. A breaking change of a message is a new topic version."""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Topics:
    """Topic names under one namespace (default `moe`; tests use their own to stay isolated)."""

    requests: str
    plans: str
    tasks_expert: str
    results: str
    progress: str
    answers: str
    deadletter: str

    @classmethod
    def for_namespace(cls, namespace: str = "moe") -> Topics:
        return cls(
            requests=f"{namespace}.requests.v1",
            plans=f"{namespace}.plans.v1",
            tasks_expert=f"{namespace}.tasks.expert.v1",
            results=f"{namespace}.results.v1",
            progress=f"{namespace}.progress.v1",
            answers=f"{namespace}.answers.v1",
            deadletter=f"{namespace}.deadletter.v1",
        )

    def all(self) -> list[str]:
        return [getattr(self, f.name) for f in fields(self)]


# Which message model travels on which topic (documentation and schema generation).
TOPIC_MESSAGES: dict[str, str] = {
    "requests": "ChatRequest",
    "plans": "Plan",
    "tasks_expert": "ExpertTask",
    "results": "TaskResult",
    "progress": "Progress",
    "answers": "Answer",
    "deadletter": "DeadLetter",
}
