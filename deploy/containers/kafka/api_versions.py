#!/usr/bin/env python3
"""compose's Kafka healthcheck in CI's image: an ApiVersions request (answered before SASL, by a broker that has
started serving) to --bootstrap-server; exit 0 when the broker answers without an error. Other arguments
(--command-config) are accepted and not needed."""

import socket
import struct
import sys


def main() -> int:
    args = sys.argv[1:]
    host, _, port = args[args.index("--bootstrap-server") + 1].rpartition(":")
    client = b"healthcheck"
    body = struct.pack(">hhih", 18, 0, 7, len(client)) + client  # ApiVersions v0, correlation id 7
    with socket.create_connection((host, int(port)), timeout=25) as sock:
        sock.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", sock.recv(4))[0]
        reply = b""
        while len(reply) < size:
            chunk = sock.recv(size - len(reply))
            if not chunk:
                break
            reply += chunk
    correlation, error = struct.unpack(">ih", reply[:6])
    if correlation != 7 or error != 0:
        print(f"ApiVersions: correlation {correlation}, error {error}", file=sys.stderr)
        return 1
    print(f"{host}:{port} answers ApiVersions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
