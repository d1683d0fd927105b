"""An RFC 3161 timestamp for a checkpoint from the configured timestamp authority (MOE_AUDIT_TSA_URL), over
HTTP as RFC 3161 section 3.4 describes (a DER TimeStampReq posted as application/timestamp-query)."""

from __future__ import annotations

import hashlib

import httpx
from rfc3161_client import HashAlgorithm, PKIStatus, TimestampRequestBuilder, decode_timestamp_response

from moe_audit_verify.format import b64
from moe_audit_verify.timestamps import TsaChain


class TsaError(RuntimeError):
    pass


class TsaClient:
    def __init__(self, url: str, chain: TsaChain | None = None, timeout_s: float = 10.0) -> None:
        self.url = url
        self.chain = chain  # when known, every answer is verified before it is stored
        self.timeout_s = timeout_s

    async def stamp(self, data: bytes) -> str:
        """The DER TimeStampResp over sha256(data), base64; TsaError when the authority does not grant one."""
        request = (TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).nonce(nonce=True)
                   .cert_request(cert_request=True).build())
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                reply = await client.post(self.url, content=request.as_bytes(),
                                          headers={"Content-Type": "application/timestamp-query"})
        except httpx.HTTPError as exc:
            raise TsaError(f"the timestamp authority {self.url} cannot be reached: {exc}") from exc
        if reply.status_code not in (200, 201):
            raise TsaError(f"the timestamp authority answered {reply.status_code}: {reply.text[:200]}")
        try:
            response = decode_timestamp_response(reply.content)
        except ValueError as exc:
            raise TsaError(f"the timestamp authority's answer is not a TimeStampResp: {exc}") from exc
        if response.status not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
            raise TsaError(f"the timestamp authority refused: status {response.status}")
        info = response.tst_info
        if info.nonce != request.nonce or info.message_imprint.message != hashlib.sha256(data).digest():
            raise TsaError("the timestamp authority's answer is not for this request (nonce or imprint)")
        if self.chain is not None:
            try:
                self.chain.verify(reply.content, data)
            except ValueError as exc:
                raise TsaError(f"the timestamp does not verify with MOE_AUDIT_TSA_CHAIN: {exc}") from exc
        return b64(reply.content)
