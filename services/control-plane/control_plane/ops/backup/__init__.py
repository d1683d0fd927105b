"""Backup and restore of every store the fleet keeps (docs/operations.md#backup-and-restore): a logical,
version-portable copy of Postgres (pg_dump -Fc), the Neo4j graph (through the driver), Chroma's collections
(through its client), the Redis state that matters, the topics' configuration and codex-lineage's consumer-group
offsets, with a manifest (sha256 of each file, the time, the fleet's version, each tenant's audit chain head).

    python -m control_plane.ops.backup create --to DIR
    python -m control_plane.ops.backup verify DIR
    python -m control_plane.ops.backup restore --from DIR      # the fleet's services stopped
"""
