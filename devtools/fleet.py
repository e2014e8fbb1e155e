"""The fleet as separate OS processes: start, stop, kill and restart services and their replicas.

Used by the demo, the end-to-end tests, the benchmark and the fault suite, so all of them run the
services exactly as an operator would (`creditwindow run <service>`), each its own process.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

__all__ = ["SERVICES", "Fleet", "ServiceProcess"]

SERVICES = ("scoring", "policy", "notification")
_SERVING = re.compile(r"Uvicorn running on (http://[0-9.]+:[0-9]+)")
# The customer-data API logs its own line (`customer_api_listening`, url=...), in any field order.
_API = re.compile(r"(?=.*customer_api_listening).*?(http://[0-9.]+:[0-9]+)")


@dataclass(slots=True)
class ServiceProcess:
    service: str
    replica: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    stopped_on_purpose: bool = False

    @property
    def name(self) -> str:
        return f"{self.service}-{self.replica}"

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass(slots=True)
class Fleet:
    """Services as child processes sharing an environment (endpoints, namespace, keys)."""

    env: dict[str, str]
    log_dir: Path
    replicas: int = 1
    services: tuple[str, ...] = SERVICES
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)  # per service
    instance_prefix: str = ""  # two fleets in one namespace need distinct instance ids
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            for replica in range(self.replicas):
                proc = ServiceProcess(service, replica, self.log_dir / f"{service}-{replica}.log")
                self.processes[proc.name] = proc

    def _spawn(self, proc: ServiceProcess) -> None:
        env = {
            # A service refuses to start without CW_ENVIRONMENT: the fleet runs here, so `local`
            # unless this process says otherwise (the test suite says `test`).
            "CW_ENVIRONMENT": "local",
            **os.environ,
            "CW_LOG_FORMAT": "json",
            "CW_POLICY_API_PORT": "0",  # replicas on one host: each its own free port
            **self.env,
            **self.extra_env.get(proc.service, {}),
            "CW_INSTANCE_ID": f"{self.instance_prefix}{proc.name}",
        }
        with proc.log_path.open("ab") as log:
            proc.process = subprocess.Popen(
                [sys.executable, "-m", "creditwindow", "run", proc.service, "--port", "0"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def start(self) -> None:
        for proc in self.processes.values():
            if not proc.alive:
                proc.stopped_on_purpose = False
                self._spawn(proc)

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.processes[name]
        if proc.alive and proc.process is not None:
            proc.stopped_on_purpose = True
            proc.process.send_signal(sig)
            proc.process.wait(timeout=30)

    def restart(self, name: str) -> None:
        proc = self.processes[name]
        if not proc.alive:
            proc.restarts += 1
            proc.stopped_on_purpose = False
            self._spawn(proc)

    def stop(self, timeout: float = 20.0) -> None:
        running = [p for p in self.processes.values() if p.alive]
        for proc in running:
            proc.stopped_on_purpose = True
            assert proc.process is not None
            proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in running:
            assert proc.process is not None
            try:
                proc.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait(timeout=10)

    def http_address(self, name: str) -> str | None:
        """Where a process serves /health and /metrics, read from its log (it binds a free port)."""
        return self._logged_address(name, _SERVING)

    def api_address(self, name: str) -> str | None:
        """Where a process serves its customer-data API (bearer tokens only), read from its log."""
        return self._logged_address(name, _API)

    def _logged_address(self, name: str, pattern: re.Pattern[str]) -> str | None:
        proc = self.processes[name]
        if not proc.log_path.exists():
            return None
        found = None
        with proc.log_path.open(errors="replace") as log:
            for line in log:
                match = pattern.search(line)
                if match:
                    found = match.group(1)  # the latest start wins after a restart
        return found

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Wait until every live process answers /health with 200 (Kafka and Redis reachable)."""
        deadline = time.monotonic() + timeout_s
        pending = {name for name, p in self.processes.items() if p.alive}
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                proc = self.processes[name]
                if not proc.alive:
                    raise RuntimeError(f"{name} exited while starting:\n{self.tail(name)}")
                address = self.http_address(name)
                if address is None:
                    continue
                try:
                    if httpx.get(f"{address}/health", timeout=2.0).status_code == 200:
                        pending.discard(name)
                except httpx.HTTPError:
                    continue
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout_s:.0f} s: {sorted(pending)}")

    def exited(self) -> list[ServiceProcess]:
        """Processes that died on their own (not those we killed and did not restart yet)."""
        return [
            p
            for p in self.processes.values()
            if p.process is not None and p.process.poll() is not None and not p.stopped_on_purpose
        ]

    def resources(self) -> dict[str, dict[str, float]]:
        """CPU seconds and resident memory (MiB) of each live service process."""
        usage = {}
        for proc in self.processes.values():
            if proc.alive and proc.process is not None:
                try:
                    p = psutil.Process(proc.process.pid)
                    times = p.cpu_times()
                    usage[proc.name] = {"cpu_s": times.user + times.system, "rss_mib": p.memory_info().rss / 2**20}
                except psutil.Error:
                    continue
        return usage

    def logged(self, name: str, *needles: str) -> bool:
        """Whether one line of the process's log holds every needle (an event name and its values)."""
        path = self.processes[name].log_path
        if not path.exists():
            return False
        with path.open(errors="replace") as log:
            return any(all(n in line for n in needles) for line in log)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.processes[name].log_path
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> Fleet:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
