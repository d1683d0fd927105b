"""Start Kafka as apache/kafka does: server.properties from the KAFKA_* variables (KAFKA_FOO_BAR -> foo.bar,
`__` -> `_`, `___` -> `-`), the storage formatted with CLUSTER_ID on the first start, then the broker."""

import os
import subprocess
import sys

CONFIG = "/opt/kafka/config/server.properties"
NOT_PROPERTIES = {"KAFKA_HEAP_OPTS", "KAFKA_OPTS", "KAFKA_JVM_PERFORMANCE_OPTS"}


def prop_name(variable: str) -> str:
    name = variable[len("KAFKA_"):].lower()
    return name.replace("___", "\0").replace("__", "\1").replace("_", ".").replace("\0", "-").replace("\1", "_")


def properties() -> str:
    lines = [f"{prop_name(k)}={v}" for k, v in sorted(os.environ.items())
             if k.startswith("KAFKA_") and k not in NOT_PROPERTIES]
    return "\n".join(lines) + "\n"


def main() -> None:
    cluster_id = os.environ.get("CLUSTER_ID")
    if not cluster_id:
        sys.exit("kafka: CLUSTER_ID is not set (url-safe base64 of 16 bytes)")
    fd = os.open(CONFIG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the admin's password
    with os.fdopen(fd, "w") as out:
        out.write(properties())
    java = ["java", "-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties", "-cp", "/opt/kafka/libs/*"]
    subprocess.run([*java, "-Xmx256m", "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", CONFIG,
                    "--ignore-formatted"], check=True)
    heap = os.environ.get("KAFKA_HEAP_OPTS", "-Xms256m -Xmx512m").split()
    os.execvp("java", [java[0], *heap, "-XX:+UseG1GC", *java[1:], "kafka.Kafka", CONFIG])


if __name__ == "__main__":
    main()
