"""Processes under test: the zero-latency inference server, LiteLLM's proxy, the fleet; their peak
memory (VmHWM of every process of a tree) and CPU time."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from tests.support.fleet import Fleet, free_port

REPO = Path(__file__).resolve().parents[1]
BENCH_VENV = REPO / ".venv-bench"
LITELLM_CONFIG = REPO / "bench" / "litellm.yaml"
LITELLM_KEY = "sk-bench-local"
LOGS = REPO / ".data" / "logs"
CLK_TCK = os.sysconf("SC_CLK_TCK")


class Proc:
    """One started process (its own session, so the whole tree can be signalled)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        LOGS.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = LOGS / f"bench-{name}.log"
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(argv, env={**os.environ, **(env or {})}, cwd=REPO, stdout=out,  # noqa: S603
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(timeout=10)

    def tail(self, lines: int = 20) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def wait_http(url: str, proc: Proc | Any, timeout_s: float = 120, headers: dict[str, str] | None = None) -> None:
    """Poll until `url` answers 200 (a readiness check may itself take seconds on busy cores)."""
    end = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < end:
        if proc.popen.poll() is not None:
            raise RuntimeError(f"{proc.name} exited with {proc.popen.returncode}; log {proc.log}:\n{proc.tail()}")
        try:
            resp = httpx.get(url, timeout=15, headers=headers)
            if resp.status_code == 200:
                return
            last = f"HTTP {resp.status_code}"
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.2)
    raise RuntimeError(f"{proc.name} not ready after {timeout_s}s ({last}); log {proc.log}:\n{proc.tail()}")


def start_llm_server(script: dict[str, Any]) -> tuple[str, Proc]:
    """The zero-latency inference server on a free port; returns its base URL (no /v1)."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, prefix="bench-script-") as fh:
        json.dump(script, fh)
    port = free_port()
    proc = Proc("llm", [sys.executable, "-m", "bench.llm_server", "--port", str(port), "--script", fh.name])
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/health", proc, 30)
    return url, proc


def litellm_available() -> str | None:
    """None when LiteLLM's proxy is installed in .venv-bench, else the reason it is not."""
    if not (BENCH_VENV / "bin" / "litellm").exists():
        return f"LiteLLM is not installed ({BENCH_VENV}/bin/litellm missing; `make bench` installs it)"
    return None


def litellm_version() -> str | None:
    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        return None
    out = subprocess.run([str(python), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],  # noqa: S603
                         capture_output=True, text=True, check=False)
    return out.stdout.strip() or None


def launch_litellm(llm_url: str, workers: int) -> tuple[str, Proc]:
    """Start LiteLLM's proxy (its own virtualenv) in front of the same inference server; returns its
    base URL and the process. Not ready yet: call ``wait_litellm`` (start-up takes long; overlap it)."""
    port = free_port()
    env = {"BENCH_LLM_URL": f"{llm_url}/v1", "BENCH_LITELLM_KEY": LITELLM_KEY,
           "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start-up
           # docs.litellm.ai/docs/proxy/prod: FastAPI's info logs off, no .env loading in production
           "LITELLM_LOG": "ERROR", "LITELLM_MODE": "PRODUCTION", "LITELLM_TELEMETRY": "False", "PYTHONPATH": "",
           # bytecode cached as an installed package has it (a coding client's PYTHONDONTWRITEBYTECODE=1 would
           # have LiteLLM compile every lazily imported module from source)
           "PYTHONDONTWRITEBYTECODE": ""}
    argv = [str(BENCH_VENV / "bin" / "litellm"), "--config", str(LITELLM_CONFIG), "--host", "127.0.0.1",
            "--port", str(port), "--num_workers", str(workers)]
    if workers > 1:  # uvicorn's default worker health check kills workers that import slowly on 2 busy cores
        argv += ["--timeout_worker_healthcheck", "600"]
    return f"http://127.0.0.1:{port}", Proc("litellm", argv, env)


def wait_litellm(base: str, proc: Proc, timeout_s: float = 600) -> str:
    wait_http(f"{base}/health/readiness", proc, timeout_s)
    return f"{base}/v1"


def start_fleet(env: dict[str, str], gateway_workers: int, extra: tuple[str, ...] = (),
                ready_timeout_s: float = 600, gateway_env: dict[str, str] | None = None) -> Fleet:
    """The test fleet's services as real processes (own namespace), plus the on-demand ones in `extra`
    (graph-ingest, gap-healer), the gateway with `gateway_env` added to its environment; a generous readiness
    wait: on two busy cores a service can take minutes to import and connect."""
    fleet = Fleet(env, gateway_workers=gateway_workers, extra=extra, own_principals=False)  # the admin's (runner)
    fleet.services["gateway"].env |= gateway_env or {}
    try:
        for service in fleet.services.values():
            service.start()
        for service in fleet.services.values():
            wait_http(f"{service.url}/ready", _Started(service), ready_timeout_s)
    except BaseException:
        fleet.stop()
        raise
    return fleet


class _Started:
    """A test-fleet service seen through the attributes wait_http uses (name, popen, log, tail)."""

    def __init__(self, service: Any) -> None:
        self.name, self.popen, self.log = service.name, service.proc, service.log
        self.tail = service.tail


# -- memory and CPU of process trees ---------------------------------------------------------------
def children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def tree(pid: int, children: dict[int, list[int]] | None = None) -> list[int]:
    children = children if children is not None else children_map()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(children.get(current, []))
    return out


def _status_kb(pid: int, field: str) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def peak_memory(roots: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per named process tree: peak RSS (VmHWM) summed over its live processes, and per process."""
    children = children_map()
    out: dict[str, dict[str, Any]] = {}
    for name, pid in roots.items():
        per = {p: kb for p in tree(pid, children) if (kb := _status_kb(p, "VmHWM"))}
        out[name] = {"peak_rss_mb": round(sum(per.values()) / 1024, 1), "processes": len(per),
                     "per_process_mb": sorted((round(kb / 1024, 1) for kb in per.values()), reverse=True)}
    return out


def rss_mb(roots: dict[str, int], field: str = "VmRSS") -> dict[str, float]:
    """Current resident memory (VmRSS; RssAnon: the part no file backs) per named process tree."""
    children = children_map()
    return {name: round(sum(_status_kb(p, field) or 0 for p in tree(pid, children)) / 1024, 1)
            for name, pid in roots.items()}


def growth(before: dict[str, float], after: dict[str, float], anon_before: dict[str, float] | None = None,
           anon_after: dict[str, float] | None = None) -> dict[str, dict[str, float | None]]:
    """Per process tree: resident memory before the load and after it, and the growth; with the anonymous
    resident memory (RssAnon) of both moments, its growth too: the rest of the growth is pages of files mapped in
    (a memory-mapped table read further), which the kernel can drop and which no load makes larger than the file."""
    out: dict[str, dict[str, float | None]] = {}
    for name, end in after.items():
        start = before.get(name)
        if start is None:
            continue
        out[name] = {"start_mb": start, "end_mb": end, "growth_mb": round(end - start, 1),
                     "growth_pct": round(100 * (end - start) / start, 1) if start else None}
        if anon_before and anon_after and name in anon_before and name in anon_after:
            out[name]["anon_growth_mb"] = round(anon_after[name] - anon_before[name], 1)
    return out


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / CLK_TCK


def system_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / CLK_TCK, sum(values) / CLK_TCK
