"""The Valkey Cluster launcher: slots spread over the masters, a killed master's replica
takes over, and nothing outlives the cluster."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from foundation.testcluster import ClusterView, ValkeyCluster

pytestmark = pytest.mark.e2e


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_every_node_says_ok_and_each_master_has_its_replica(valkey_cluster: ValkeyCluster) -> None:
    for node in valkey_cluster.nodes:
        assert "cluster_state:ok" in node.ask("CLUSTER", "INFO")
    view = valkey_cluster.view()
    masters = {owner for *_, owner in view.ranges}
    assert len(masters) == 3
    assert sorted(view.master_of.values()) == sorted(masters)
    assert sum(last - first + 1 for first, last, _ in view.ranges) == 16384


def test_keys_under_different_hash_tags_land_on_different_masters(
    valkey_cluster: ValkeyCluster,
) -> None:
    keys = [f"{{{tag}}}:events" for tag in ("a", "b", "c", "d", "e", "f", "g", "h")]
    masters = {key: valkey_cluster.master_for_key(key) for key in keys}
    assert len(set(masters.values())) == 3
    client = RedisCluster.from_url(valkey_cluster.url)
    try:
        for key in keys:
            client.set(key, key)
    finally:
        client.close()
    for key, master in masters.items():
        assert master.ask("GET", key) == key


def test_a_killed_masters_replica_takes_over_and_takes_writes(
    valkey_cluster: ValkeyCluster,
) -> None:
    key = "{failover}:stream"
    slot = valkey_cluster.slot(key)
    old = valkey_cluster.master_for_slot(slot)
    replica = next(n for n, m in valkey_cluster.view().master_of.items() if m == old.node_id)
    valkey_cluster.kill(old)
    try:
        seconds = valkey_cluster.wait_promoted(slot, timeout=15)
        new = valkey_cluster.master_for_slot(slot)
        assert new.node_id == replica
        assert seconds < 10
        client = RedisCluster.from_url(valkey_cluster.url)
        try:
            client.xadd(key, {"n": "1"})
            assert client.xlen(key) == 1
        finally:
            client.close()
        assert new.ask("XLEN", key) == 1
    finally:
        valkey_cluster.restart(old)
    # The old master is back as its replacement's replica.
    assert valkey_cluster.view().master_of[old.node_id] == new.node_id


def test_stop_leaves_no_process(tmp_path: Path) -> None:
    cluster = ValkeyCluster(tmp_path, masters=1, replicas=1).start()
    pids = [node.pid for node in cluster.nodes]
    assert all(_running(pid) for pid in pids)
    cluster.stop()
    assert not any(_running(pid) for pid in pids)
    with pytest.raises(redis.ConnectionError):
        cluster.nodes[0].ask("PING")


def test_a_cluster_dropped_without_stop_is_killed_anyway(tmp_path: Path) -> None:
    cluster = ValkeyCluster(tmp_path, masters=1, replicas=0).start()
    pids = [node.pid for node in cluster.nodes]
    del cluster
    gc.collect()
    assert not any(_running(pid) for pid in pids)


def test_cluster_nodes_lines_are_read_with_their_slot_ranges() -> None:
    text = (
        "aaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460 [5461->-bbb]\n"
        "bbb 127.0.0.1:7001@17001 master - 0 0 2 connected 5461 5462-10922\n"
        "ccc 127.0.0.1:7002@17002 slave aaa 0 0 1 connected\n"
    )
    view = ClusterView.parse(text)
    assert view.master_for_slot(5460) == "aaa"
    assert view.master_for_slot(5461) == "bbb"
    assert view.master_for_slot(10923) is None
    assert view.master_of == {"ccc": "aaa"}
