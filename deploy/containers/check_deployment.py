"""The compose deployment, asked as its users ask it (CI's container stage, deploy/containers/compose_ci.sh):

- the public address (the proxy): the official openai SDK's first request, not streamed and streamed; then
  `POST /v1/feedback` on that answer and `GET /v1/provider-status`, at the same address; the admin API is not there;
- the control plane's own address: the console signs in with the operator key; the request's audit record is there,
  verified with the anchors (signed, RFC 3161-timestamped, cosigned by the witness).

    python deploy/containers/check_deployment.py --public https://127.0.0.1:38002 --ca tls.crt \
        --control-plane http://127.0.0.1:38110 --admin-key-file admin.key --user-key-file user.key

Exit 0 when every check passed; each check prints one line; a failure names what was expected and what came.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from openai import APIStatusError, DefaultHttpxClient, OpenAI

QUESTION = "What is Kafka?"
MODEL = "moe-orchestrator"


class CheckFailed(Exception):
    pass


def expect(ok: bool, what: str, got: object) -> None:
    if not ok:
        raise CheckFailed(f"{what}: got {str(got)[:400]}")


def chat(client: OpenAI) -> str:
    """The first request, not streamed: an answer with the fleet's response_id in `moe`."""
    started = time.monotonic()
    try:
        answer = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": QUESTION}])
    except APIStatusError as exc:  # how long it took tells a store's timeout (5 s) from an error answered at once
        raise CheckFailed(f"the first request, after {time.monotonic() - started:.1f} s: {exc.message}") from exc
    text = answer.choices[0].message.content or ""
    expect(bool(text.strip()), "a non-streamed answer with text", answer)
    fields = answer.to_dict().get("moe")  # the fleet's own fields (OpenAI's `metadata` holds strings only)
    response_id = fields.get("response_id") if isinstance(fields, dict) else None
    expect(bool(response_id), "moe.response_id in the answer", answer.to_dict())
    print(f"ok  chat, not streamed: {len(text)} characters, response_id {response_id}")
    return str(response_id)


def chat_streamed(client: OpenAI) -> None:
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True))
    text = "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)
    finished = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    expect(bool(text.strip()) and finished == ["stop"], "a streamed answer ending with finish_reason stop",
           (text[:200], finished))
    print(f"ok  chat, streamed: {len(chunks)} chunks, {len(text)} characters")


def public_routes(public: httpx.Client, response_id: str) -> None:
    feedback = public.post("/v1/feedback", json={"response_id": response_id, "rating": 5})
    expect(feedback.status_code == 202 and feedback.json().get("status") == "recorded",
           "POST /v1/feedback at the public address: 202 recorded", (feedback.status_code, feedback.text))
    print(f"ok  POST /v1/feedback at the public address: {feedback.status_code} {feedback.json()['status']}")
    status = public.get("/v1/provider-status")
    expect(status.status_code == 200 and isinstance(status.json(), dict),
           "GET /v1/provider-status at the public address: 200", (status.status_code, status.text))
    print(f"ok  GET /v1/provider-status at the public address: 200 ({', '.join(sorted(status.json()))[:120]})")
    admin = public.get("/v1/admin/keys")
    expect(admin.status_code == 404, "the admin API is not at the public address (404)", (admin.status_code,
                                                                                           admin.text))
    print("ok  GET /v1/admin/keys at the public address: 404 (the admin API keeps its own address)")


def console_signs_in(control_plane: str, admin_key: str) -> None:
    with httpx.Client(base_url=control_plane, timeout=30) as console:
        form = console.get("/console/login")
        nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        expect(nonce is not None, "the console's sign-in form with a CSRF token", form.text[:300])
        assert nonce is not None
        signed = console.post("/console/login", data={"csrf_token": nonce.group(1), "api_key": admin_key})
        expect(signed.status_code == 303, "the console signs the operator in (303)", (signed.status_code,
                                                                                     signed.text[:300]))
        page = console.get("/console/keys")
        expect(page.status_code == 200, "the console's keys page after signing in", page.status_code)
    print("ok  the console signs the operator in (/console/keys 200)")


def audit_verified(control_plane: str, admin_key: str, response_id: str, wait_s: float = 300) -> None:
    """codex-lineage recorded the request and anchored it: the control plane's audit API, verifying with the anchors
    compose gave it (public key, keyring, TSA chain, witness vkey), says `verified`, `anchored` and `witnessed` once
    a checkpoint covers it (the first within MOE_AUDIT_CHECKPOINT_INTERVAL_S, 60 s, after the witness learnt the
    tenant's log)."""
    deadline = time.monotonic() + wait_s
    body: Any = None
    with httpx.Client(base_url=control_plane, timeout=30, headers={"Authorization": f"Bearer {admin_key}"}) as cp:
        while time.monotonic() < deadline:
            got = cp.get(f"/v1/audit/{response_id}", params={"verify": "true"})
            body = (got.status_code, got.text[:300] if got.status_code != 200 else got.json().get("verification"))
            check = got.json().get("verification") or {} if got.status_code == 200 else {}
            if check.get("verified") and check.get("anchored") and check.get("witnessed"):
                print(f"ok  GET /v1/audit/{response_id}?verify=true: verified, anchored (TSA) and witnessed, "
                      f"{check.get('records')} records, with the anchors compose gave the control plane")
                return
            if check.get("problems"):  # something is wrong, not merely not yet anchored: no point waiting
                break
            time.sleep(5)
    raise CheckFailed(f"the request's audit record, verified with the anchors: got {body}")


def egress_simulated(control_plane: str, operator_key: str, response_id: str) -> None:
    """The fleet operator simulates the egress policy in force over the recorded decisions: the control plane runs
    the opa binary of the fleet image over what OPA holds; the policy against itself changes nothing."""
    module = (Path(__file__).resolve().parents[2] / "policy" / "opa" / "egress.rego").read_text()
    with httpx.Client(base_url=control_plane, timeout=120, headers={"Authorization": f"Bearer {operator_key}"}) as cp:
        got = cp.post("/v1/egress/simulations", json={"module": module, "days": 1})
    counts = got.json().get("counts") or {} if got.status_code == 200 else {}
    expect(got.status_code == 200 and counts.get("decisions", 0) > 0 and counts.get("changed") == 0,
           "the egress policy simulated over the recorded decisions (200, some decisions, none changed)",
           (got.status_code, got.text[:300]))
    print(f"ok  POST /v1/egress/simulations: {counts.get('decisions')} recorded decisions of "
          f"{counts.get('requests')} requests (the answer {response_id} among them) decided again by opa, 0 changed")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--public", required=True)
    p.add_argument("--ca", type=Path, help="the public address's certificate (TLS)")
    p.add_argument("--control-plane", required=True)
    p.add_argument("--admin-key-file", type=Path, required=True)
    p.add_argument("--user-key-file", type=Path, required=True)
    p.add_argument("--operator-key-file", type=Path, required=True)
    args = p.parse_args(argv)
    admin_key, user_key = args.admin_key_file.read_text().strip(), args.user_key_file.read_text().strip()
    verify: Any = str(args.ca) if args.ca else True
    headers = {"Authorization": f"Bearer {user_key}"}
    try:
        with DefaultHttpxClient(verify=verify, timeout=300) as http, \
                httpx.Client(base_url=args.public, verify=verify, timeout=60, headers=headers) as public:
            client = OpenAI(base_url=f"{args.public}/v1", api_key=user_key, http_client=http, max_retries=0)
            response_id = chat(client)
            chat_streamed(client)
            public_routes(public, response_id)
        console_signs_in(args.control_plane, admin_key)
        audit_verified(args.control_plane, admin_key, response_id)
        egress_simulated(args.control_plane, args.operator_key_file.read_text().strip(), response_id)
    except CheckFailed as exc:
        print(f"FAILED  {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
