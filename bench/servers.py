"""The HTTP server configurations the bench compares, started as the app is served in
production (``DEBUG`` off, the app's settings and middleware) on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerConfig:
    key: str
    label: str
    kind: str  # "gunicorn" or "granian"
    workers: int
    threads: int = 1
    worker_class: str = "sync"
    # Extra environment for the app (e.g. CLICK_BUFFER=false for the direct-write variant).
    app_env: dict[str, str] = field(default_factory=dict)

    def argv(self, port: int) -> list[str]:
        if self.kind == "gunicorn":
            # config/gunicorn.conf.py is the production configuration; only the knobs under
            # comparison are set, through the environment variables it reads.
            return [str(BIN / "gunicorn"), "config.wsgi", "-c", "config/gunicorn.conf.py", "--no-control-socket"]
        if self.kind == "granian":
            return [
                str(BIN / "granian"),
                "--interface",
                "wsgi",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(self.workers),
                "--blocking-threads",
                str(self.threads),
                "--no-access-log",
                "--log-level",
                "warning",
                "config.wsgi:application",
            ]
        raise ValueError(self.kind)

    def env(self, port: int) -> dict[str, str]:
        env = dict(self.app_env)
        if self.kind == "gunicorn":
            env.update(
                BIND=f"127.0.0.1:{port}",
                WEB_CONCURRENCY=str(self.workers),
                WEB_THREADS=str(self.threads),
                WORKER_CLASS=self.worker_class,
                # Worker recycling (50,000 requests in production) would restart workers every few
                # seconds at these rates: a restarted worker's CPU counters read as negative CPU.
                MAX_REQUESTS="0",
            )
        return env


@dataclass
class Server:
    config: ServerConfig
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the server's processes: the master and its
        current workers (every thread)."""
        return sum(self.cpu_split())

    def cpu_split(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the master and its current workers."""
        user = system = 0
        for pid in [self.process.pid, *self.worker_pids()]:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            # utime, stime are fields 14 and 15 of stat; after the ")" they are at 11 and 12.
            user += int(fields[11])
            system += int(fields[12])
        return user / CLOCK_TICKS, system / CLOCK_TICKS

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(config: ServerConfig, base_env: dict[str, str], log_dir: Path, *, root: Path = ROOT, tag: str = "") -> Server:
    """Start ``config`` serving the code in ``root`` (another checkout for A/B runs)."""
    port = free_port()
    log_path = log_dir / f"server-{config.key}{tag}.log"
    env = {**base_env, **config.env(port)}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            config.argv(port),
            cwd=root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(config=config, port=port, process=process, log_path=log_path)
    wait_ready(server)
    return server


def wait_ready(server: Server, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.config.label} exited; see {server.log_path}")
        try:
            with urllib.request.urlopen(server.url + "/healthz", timeout=2) as response:
                if response.status == 200:
                    # Every worker loads the app lazily: knock a few times so none pays its
                    # import time inside a measured run.
                    for _ in range(4 * server.config.workers):
                        urllib.request.urlopen(server.url + "/healthz", timeout=5).read()
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    stop(server)
    raise RuntimeError(f"{server.config.label} did not answer /healthz in {timeout:.0f} s; see {server.log_path}")


def stop(server: Server) -> None:
    if server.process.poll() is not None:
        return
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.process.wait(timeout=25)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
