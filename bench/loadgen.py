"""Driving wrk (1 thread, 32 connections) with the Lua scripts in bench/lua/ and reading the
JSON line their ``done()`` prints."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent / "lua"
THREADS = 1
CONNECTIONS = 32


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int
    timeouts: int
    s2xx: int
    s3xx: int
    s4xx: int
    s5xx: int
    s409: int
    sent: int
    # CPU time the server's processes spent per answered request (µs), when measured.
    server_cpu_us: float = 0.0
    server_sys_us: float = 0.0

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def as_dict(self) -> dict:
        return {**self.__dict__, "rps": self.rps}


def wrk_version() -> str:
    result = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (result.stdout + result.stderr).strip().splitlines()[0]


def run_wrk(url: str, script: str, duration: float, env: dict[str, str] | None = None) -> WrkResult:
    """One wrk run against ``url`` with ``bench/lua/<script>``."""
    argv = [
        "wrk",
        f"-t{THREADS}",
        f"-c{CONNECTIONS}",
        f"-d{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA_DIR / script),
        url,
    ]
    full_env = {**os.environ, "BENCH_LUA_DIR": str(LUA_DIR), **(env or {})}
    result = subprocess.run(argv, capture_output=True, text=True, env=full_env, timeout=duration + 60, check=False)
    line = next((x for x in result.stdout.splitlines() if x.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({result.returncode}): {result.stdout[-2000:]} {result.stderr[-2000:]}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        socket_errors=data["connect_errors"] + data["read_errors"] + data["write_errors"],
        timeouts=data["timeouts"],
        s2xx=data["s2xx"],
        s3xx=data["s3xx"],
        s4xx=data["s4xx"],
        s5xx=data["s5xx"],
        s409=data["s409"],
        sent=data["sent"],
    )


@dataclass(frozen=True)
class Summary:
    """Medians over the interleaved rounds of one scenario on one server."""

    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    rps_all: list[float]
    requests: int
    errors: int
    non_success: int
    server_cpu_us: float
    server_sys_us: float

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def summarise(results: list[WrkResult]) -> Summary:
    return Summary(
        rounds=len(results),
        rps=statistics.median(r.rps for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        rps_all=[round(r.rps, 1) for r in results],
        requests=sum(r.requests for r in results),
        errors=sum(r.socket_errors + r.timeouts for r in results),
        non_success=sum(r.s4xx + r.s5xx for r in results),
        server_cpu_us=statistics.median(r.server_cpu_us for r in results),
        server_sys_us=statistics.median(r.server_sys_us for r in results),
    )
