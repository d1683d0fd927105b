"""Chroma: every collection (its name, metadata and index configuration) with its records (ids, embeddings,
metadatas, documents) through Chroma's client, as JSON lines per collection; restored by dropping a collection of
the same name and adding the records back in batches (the embeddings as they were: nothing is re-embedded)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from control_plane.ops.backup.settings import BackupSettings

FOLDER = "chroma"
INDEX = "chroma/collections.json"


def client(settings: BackupSettings) -> Any:
    import chromadb
    from chromadb.config import Settings

    parts = urlsplit(settings.chroma_url)
    return chromadb.HttpClient(host=parts.hostname or "127.0.0.1",
                               port=parts.port or (443 if parts.scheme == "https" else 8000),
                               ssl=parts.scheme == "https", settings=Settings(anonymized_telemetry=False))


def _configuration(collection: Any) -> dict[str, Any]:
    """The index configuration to create it with again (the space: cosine, l2, ip)."""
    config = getattr(collection, "configuration_json", None) or {}
    space = (config.get("hnsw") or {}).get("space") or (collection.metadata or {}).get("hnsw:space")
    return {"hnsw": {"space": space}} if space else {}


def _plain(values: Any) -> list[Any] | None:
    return None if values is None else [v.tolist() if hasattr(v, "tolist") else v for v in values]


def dump(settings: BackupSettings, folder: Path) -> dict[str, Any]:
    (folder / FOLDER).mkdir(exist_ok=True)
    chroma = client(settings)
    index: list[dict[str, Any]] = []
    for collection in chroma.list_collections():
        file, count = f"{FOLDER}/{len(index):04d}.jsonl", 0
        with (folder / file).open("w") as out:
            offset = 0
            while True:
                got = collection.get(include=["embeddings", "metadatas", "documents"], limit=settings.batch,
                                     offset=offset)
                rows = zip(got["ids"], _plain(got["embeddings"]) or [], got["metadatas"] or [],
                           got["documents"] or [], strict=True)
                for rid, emb, meta, doc in rows:
                    out.write(json.dumps({"id": rid, "embedding": emb, "metadata": meta, "document": doc}) + "\n")
                count += len(got["ids"])
                offset += len(got["ids"])
                if len(got["ids"]) < settings.batch:
                    break
        index.append({"name": collection.name, "metadata": collection.metadata,
                      "configuration": _configuration(collection), "file": file, "records": count})
    (folder / INDEX).write_text(json.dumps(index, indent=1))
    return {"collections": len(index), "records": sum(c["records"] for c in index)}


def _add(collection: Any, rows: list[dict[str, Any]]) -> None:
    collection.add(ids=[r["id"] for r in rows], embeddings=[r["embedding"] for r in rows],
                   metadatas=[r["metadata"] for r in rows] if any(r["metadata"] for r in rows) else None,
                   documents=[r["document"] for r in rows] if any(r["document"] for r in rows) else None)


def restore(settings: BackupSettings, folder: Path) -> dict[str, int]:
    """Every dumped collection replaced by its dump; collections the backup does not know are left alone."""
    chroma, records = client(settings), 0
    index = json.loads((folder / INDEX).read_text())
    existing = {c.name for c in chroma.list_collections()}
    for entry in index:
        if entry["name"] in existing:
            chroma.delete_collection(entry["name"])
        collection = chroma.create_collection(entry["name"], metadata=entry["metadata"] or None,
                                              configuration=entry["configuration"] or None, embedding_function=None)
        batch: list[dict[str, Any]] = []
        with (folder / entry["file"]).open() as f:
            for line in f:
                batch.append(json.loads(line))
                if len(batch) >= settings.batch:
                    _add(collection, batch)
                    records, batch = records + len(batch), []
        if batch:
            _add(collection, batch)
            records += len(batch)
    return {"collections": len(index), "records": records}
