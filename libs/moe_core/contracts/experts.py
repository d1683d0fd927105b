"""The expert categories (a shared vocabulary of planner, workers and merger)."""

EXPERT_CATEGORIES: dict[str, str] = {
    "general": "general knowledge and anything that fits no other category",
    "math": "calculations, proofs, equations",
    "technical_support": "software, systems, networks, troubleshooting",
    "creative_writer": "stories, poems, marketing copy",
    "code_reviewer": "writing, reviewing and explaining code",
    "medical_consult": "health, symptoms, drugs, treatments",
    "legal_advisor": "law, contracts, regulations",
    "translation": "translating text between languages",
    "reasoning": "logic puzzles, multi-step reasoning, planning",
    "vision": "describing or analysing images",
    "data_analyst": "data, statistics, tables, charts",
    "science": "physics, chemistry, biology, astronomy",
}

# The categories whose answers the critic reviews before the user sees them (the original's critic node): the
# merger sends them to the critic, and no stage streams their answer text to the client.
CRITIC_CATEGORIES = frozenset({"medical_consult", "legal_advisor"})
