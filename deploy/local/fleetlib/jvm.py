"""Locate the Java 17 runtime used by Kafka and Neo4j (override with MOE_JAVA)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

CANDIDATES = ("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", "/usr/lib/jvm/java-17-openjdk-arm64/bin/java")


def java() -> str:
    override = os.environ.get("MOE_JAVA")
    if override:
        return override
    for cand in CANDIDATES:
        if Path(cand).exists():
            return cand
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").exists():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java") or "java"


def classpath(lib: Path) -> str:
    return f"{lib}/*"
