"""A real Dask cluster for tests: `dask scheduler` and `dask worker` processes on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

DASK = str(Path(sys.executable).with_name("dask"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class DaskCluster:
    """A scheduler (that leaves retries to lockgate: allowed-failures 0) and named workers,
    each a process of its own; `stop()` ends them all."""

    def __init__(self, folder: Path, tls: list[str] | None = None) -> None:
        """`tls`: `--tls-ca-file/--tls-cert/--tls-key` arguments for the scheduler and the
        workers (the address is then tls://)."""
        self.folder = folder
        self.port = free_port()
        self.tls = tls or []
        self.address = f"{'tls' if tls else 'tcp'}://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        self.env.pop("LOCKGATE_DB_URL", None)
        self.scheduler = self._spawn(
            "scheduler",
            [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(self.port)]
            + ["--no-dashboard", "--no-show"]
            + (["--protocol", "tls", *self.tls] if self.tls else []),
        )
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self._wait_port()

    def _spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        out = open(self.folder / f"{name}.out", "wb")  # noqa: SIM115 - kept for the process
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def _wait_port(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.scheduler.poll() is not None:
                raise RuntimeError(f"dask scheduler exited: {self.output('scheduler')}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise RuntimeError(f"dask scheduler did not listen: {self.output('scheduler')}")

    def add_worker(
        self, name: str, nthreads: int = 4, resources: str | None = None, nanny: bool = False
    ) -> None:
        argv = [DASK, "worker", self.address, "--host", "127.0.0.1", "--no-dashboard"]
        argv += ["--name", name, "--nthreads", str(nthreads)]
        argv += ["--local-directory", str(self.folder / name), *self.tls]
        if not nanny:
            argv.append("--no-nanny")
        if resources:
            argv += ["--resources", resources]
        self.workers[name] = self._spawn(name, argv)

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        from distributed.security import Security

        from distributed import Client

        security = None
        if self.tls:
            ca, cert, key = self.tls[1], self.tls[3], self.tls[5]
            security = Security(
                tls_ca_file=ca, tls_client_cert=cert, tls_client_key=key, require_encryption=True
            )
        with Client(
            self.address, timeout=timeout, set_as_default=False, security=security
        ) as client:
            client.wait_for_workers(count, timeout=timeout)

    def worker_pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.workers.items()}

    def output(self, name: str) -> str:
        try:
            return (self.folder / f"{name}.out").read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Disconnect this process's clients, then stop the processes (a worker still
        running an abandoned task is killed after a few seconds)."""
        from lockgate.engine.executors.dask_executor import close_clusters

        close_clusters()
        procs = [*self.workers.values(), self.scheduler]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def start_cluster(
    folder: Path, workers: int = 2, tls: list[str] | None = None, **options: object
) -> DaskCluster:
    """A scheduler and `workers` workers (w1, w2, ...), all registered."""
    folder.mkdir(parents=True, exist_ok=True)
    cluster = DaskCluster(folder, tls)
    try:
        for i in range(1, workers + 1):
            cluster.add_worker(f"w{i}", **options)  # type: ignore[arg-type]
        cluster.wait_for_workers(workers)
    except BaseException:
        cluster.stop()
        raise
    return cluster
