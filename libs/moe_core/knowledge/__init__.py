"""Knowledge: the learned `graph` (Neo4j), `memory` (documents in Chroma), `embeddings` and its model,
`question_vectors`, the knowledge `kinds` (factual or procedural) and `learning` (what an answer teaches)."""
