"""A witness's side of a tenant checkpoint (c2sp.org/tlog-witness, add-checkpoint): the witness (a separate process
with its own key and storage; locally the transparency-dev omniwitness) cosigns a tenant's checkpoint only when a
consistency proof shows it extends the last one it cosigned for that tenant's log.

codex-lineage sends the checkpoint note, the size it believes the witness holds and the consistency proof from that
size. The witness's answers: 200 its cosignature lines; 409 it holds another size (the body says which): asked again
from that size, unless the database's head is below it (the chain was cut); 422 the proof fails (the entries the
witness cosigned were changed or removed); 404 the log is not (yet) provisioned in the witness; 403 the
note's signature is not the key the witness knows for the log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from moe_audit_verify.note import NoteKey, with_cosignatures

ADD_CHECKPOINT = "/add-checkpoint"


class WitnessRefused(RuntimeError):
    """The witness would not cosign: the tenant's log is not consistent with what it cosigned (or the database's
    head is below the witnessed size)."""


class WitnessUnavailable(RuntimeError):
    """The witness could not be asked (unreachable, the log not provisioned yet, an unexpected answer)."""


def request_body(old: int, proof: list[bytes], note: str) -> bytes:
    import base64

    return (f"old {old}\n" + "".join(base64.b64encode(p).decode() + "\n" for p in proof) + "\n").encode() \
        + note.encode()


@dataclass
class WitnessClient:
    url: str
    key: NoteKey  # the witness's cosignature key (its vkey, given to codex-lineage and to the auditors)
    timeout_s: float = 10.0
    sizes: dict[str, int] = field(default_factory=dict)  # the size the witness last cosigned, per origin

    async def cosign(self, origin: str, note: str, size: int, proof_of: Callable[[int], Awaitable[list[bytes]]],
                     size_of: Callable[[], Awaitable[int]]) -> str:
        """The note (of a tree of `size` leaves) with the witness's cosignature; `proof_of(old)` is the consistency
        proof from size old to the note's size; `size_of` reads the stored chain's head now (against a witnessed size
        above the note's: another replica's newer checkpoint, or a cut)."""
        old = self.sizes.get(origin, 0)
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            for _ in range(2):
                if old > size:
                    head = await size_of()
                    if head >= old:  # another codex-lineage replica's checkpoint was witnessed meanwhile
                        raise WitnessUnavailable(f"the witness already cosigned size {old} of {origin}, beyond this "
                                                 f"checkpoint's {size}: asked again at the next interval")
                    raise WitnessRefused(f"the witness cosigned size {old} of {origin}, but the stored chain's head "
                                         f"is {head}: entries the witness saw were deleted from the database")
                body = request_body(old, await proof_of(old), note)
                try:
                    resp = await client.post(self.url.rstrip("/") + ADD_CHECKPOINT, content=body)
                except httpx.HTTPError as exc:
                    raise WitnessUnavailable(f"witness {self.url}: {exc!r}") from exc
                if resp.status_code == 409:
                    old = int(resp.text.strip().splitlines()[0])
                    self.sizes[origin] = old
                    continue
                return self._answer(origin, note, old, size, resp)
        raise WitnessUnavailable(f"witness {self.url}: the size it holds for {origin} kept changing")

    def _answer(self, origin: str, note: str, old: int, size: int, resp: httpx.Response) -> str:
        if resp.status_code == 200:
            cosigned = with_cosignatures(note, resp.text)
            from moe_audit_verify.note import Note

            if Note.parse(cosigned).cosigned_at(self.key) is None:
                raise WitnessUnavailable(f"witness {self.url}: its answer carries no valid cosignature of key "
                                         f"{self.key.name}")
            self.sizes[origin] = size
            return cosigned
        if resp.status_code == 422:
            raise WitnessRefused(f"the witness refused size {size} of {origin}: it is not consistent with size {old} "
                                 "it cosigned (entries it saw were changed or removed in the database)")
        if resp.status_code == 400 and old > size:
            raise WitnessRefused(f"the witness holds size {old} of {origin}, above the stored chain's {size}")
        if resp.status_code == 404:
            raise WitnessUnavailable(f"witness {self.url}: log {origin} is not provisioned (yet)")
        if resp.status_code == 403:
            raise WitnessRefused(f"the witness refused the checkpoint of {origin}: not signed by the key it holds for "
                                 "that log")
        raise WitnessUnavailable(f"witness {self.url}: add-checkpoint answered {resp.status_code} (the omniwitness "
                                 f"answers 500 for a log it has not provisioned yet: {origin})")


def logs_config(vkey: str, origins: list[str], qpd: int = 86_400) -> str:
    """The logs/v0 list a witness provisions its logs from (its --public_witness_config_url): once provisioned, a
    log's key is never replaced by a later list."""
    return "logs/v0\n" + "".join(f"vkey {vkey}\norigin {o}\nqpd {qpd}\n" for o in sorted(origins))
