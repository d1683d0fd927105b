#!/usr/bin/env python3
"""compose's Neo4j healthcheck in CI's image: `cypher-shell -u USER -p PASSWORD 'QUERY'` run over Neo4j's HTTP
API (POST /db/neo4j/tx/commit); exit 0 when the query ran without an error."""

import base64
import json
import sys
import urllib.request


def main() -> int:
    args = sys.argv[1:]
    user, password = args[args.index("-u") + 1], args[args.index("-p") + 1]
    query = args[-1]
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(
        "http://127.0.0.1:7474/db/neo4j/tx/commit", data=json.dumps({"statements": [{"statement": query}]}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=55) as response:  # within compose's healthcheck timeout (60 s)
        body = json.load(response)
    if body.get("errors"):
        print(body["errors"], file=sys.stderr)
        return 1
    print(json.dumps(body["results"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
