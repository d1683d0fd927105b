"""Start Neo4j as the neo4j image does: neo4j.conf from the NEO4J_* variables (NEO4J_server_memory_pagecache_size
-> server.memory.pagecache.size, `__` -> `_`), NEO4J_AUTH=neo4j/<password> set as the initial password before the
first start (neo4j-admin dbms set-initial-password), then the server in the foreground."""

import os
import subprocess
import sys

HOME = "/var/lib/neo4j"
CONF = f"{HOME}/conf/neo4j.conf"
JAVA = ["java", "-cp", f"{HOME}/lib/*"]
OPENS = ["--add-opens=java.base/java.nio=ALL-UNNAMED", "--add-opens=java.base/java.io=ALL-UNNAMED",
         "--add-opens=java.base/sun.nio.ch=ALL-UNNAMED", "-Dio.netty.tryReflectionSetAccessible=true"]
BASE = {"server.default_listen_address": "0.0.0.0", "server.bolt.listen_address": ":7687",
        "server.http.listen_address": ":7474", "server.https.enabled": "false",
        "server.directories.data": "/data", "server.directories.logs": "/logs",
        "dbms.usage_report.enabled": "false"}
SKIP = {"NEO4J_AUTH", "NEO4J_PASSWORD", "NEO4J_HOME", "NEO4J_CONF"}


def settings() -> dict[str, str]:
    out = dict(BASE)
    for key, value in os.environ.items():
        if key.startswith("NEO4J_") and key not in SKIP:
            out[key[len("NEO4J_"):].replace("__", "\0").replace("_", ".").replace("\0", "_")] = value
    return out


def main() -> None:
    auth = os.environ.get("NEO4J_AUTH", "")
    user, _, password = auth.partition("/")
    if auth != "none" and (user != "neo4j" or not password):
        sys.exit("neo4j: NEO4J_AUTH must be neo4j/<password> (or none)")
    conf = settings() | {"dbms.security.auth_enabled": "false" if auth == "none" else "true"}
    with open(CONF, "w") as out:
        out.writelines(f"{k}={v}\n" for k, v in conf.items())
    env = {**os.environ, "NEO4J_HOME": HOME, "NEO4J_CONF": f"{HOME}/conf"}
    if auth != "none" and not os.path.exists("/data/dbms/auth.ini") and not os.path.exists("/data/databases"):
        # "--": a generated password may begin with "-" (token_urlsafe), which the tool took for an option and
        # refused, so the container restarted for ever (a CI run's compose stage, 1 start in 32)
        subprocess.run([*JAVA, "org.neo4j.cli.AdminTool", "dbms", "set-initial-password", "--", password],
                       check=True, env=env)
    heap = ["-Xms256m", f"-Xmx{conf.get('server.memory.heap.max_size', '768m')}"]
    os.execvpe("java", [JAVA[0], *heap, "-XX:+UseG1GC", *OPENS, *JAVA[1:], "org.neo4j.server.CommunityEntryPoint",
                        f"--home-dir={HOME}", f"--config-dir={HOME}/conf", "--console-mode"], env)


if __name__ == "__main__":
    main()
