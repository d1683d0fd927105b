"""The chart's public address and the review's findings (issue 48): an Ingress with the client routes over TLS, the
ingress controller let in to the control plane only when listed, and the console's Data health page addressing the
release's codex-lineage Service."""

from __future__ import annotations

import pytest

from tests.deploy.deploy_support import ANCHORS, CHART, helm, rendered_docs, run
from tests.deploy.test_compose_public import CLIENT_ROUTES

pytestmark = pytest.mark.unit

INGRESS = ["ingress.enabled=true", "ingress.host=moe.example.org", "ingress.tls.secretName=moe-tls"]


def test_the_ingress_sends_each_client_route_to_its_service_over_tls() -> None:
    docs = rendered_docs([], INGRESS)
    ingress = next(d for d in docs if d["kind"] == "Ingress")
    assert ingress["spec"]["tls"] == [{"hosts": ["moe.example.org"], "secretName": "moe-tls"}]
    paths = {p["path"]: (p["pathType"], p["backend"]["service"]["name"])
             for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    services = {"gateway": "moe-gateway", "control_plane": "moe-control-plane"}
    for path, upstream in CLIENT_ROUTES.items():
        matches = [(kind, svc) for p, (kind, svc) in paths.items()
                   if path == p or (kind == "Prefix" and path.startswith(p))]
        assert matches == [(matches[0][0], services[upstream])], (path, matches)
    assert not any(p.startswith(("/v1/admin", "/v1/audit", "/console")) for p in paths)
    policy = next(d for d in docs
                  if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "moe-control-plane-ingress")
    froms = [r["from"] for r in policy["spec"]["ingress"]]
    assert [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}] in froms
    assert not [d for d in rendered_docs([]) if d["kind"] == "Ingress"]  # off by default


def test_an_ingress_needs_a_host_and_the_controllers_pods() -> None:
    no_host = run([helm(), "template", "moe", str(CHART), *ANCHORS, "--set", "ingress.enabled=true"])
    assert no_host.returncode != 0 and "ingress.host" in no_host.stderr
    anyone = run([helm(), "template", "moe", str(CHART), *ANCHORS, *[a for kv in INGRESS for a in ("--set", kv)],
                  "--set-json", "networkPolicy.ingressFrom=[]"])
    assert anyone.returncode != 0 and "networkPolicy.ingressFrom" in anyone.stderr


def test_the_console_reaches_the_releases_codex_lineage() -> None:
    docs = rendered_docs([], ["fullnameOverride=acme"])
    service_names = {d["metadata"]["name"] for d in docs if d["kind"] == "Service"}
    deployment = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "acme-control-plane")
    env = {e["name"]: e.get("value") for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MOE_CONSOLE_CODEX_LINEAGE_URL"] == "http://acme-codex-lineage:8109"
    assert "acme-codex-lineage" in service_names
