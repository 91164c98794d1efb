# SPDX-License-Identifier: Apache-2.0
"""Wires between the packet devices of two domains (a service chain): the domain created second
completes the wire, frames cross it, a destroyed end leaves the other with a clean link-down, and
the wire comes back with the domain, also after a daemon restart. The guests here are this
process, driving the regions as a VM's driver would (tests/test_libvirt_chain.py does it with
two VMs under libvirt)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_packet import exchange, frame, until

from libvirt_synth.daemon import client
from libvirt_synth.guest import Device
from libvirt_synth.guest.packet import PacketChannel, device_counters

from daemonctl import Daemon, running

A = "aaaaaaaa-0000-4000-8000-000000000001"
B = "bbbbbbbb-0000-4000-8000-000000000002"
C = "cccccccc-0000-4000-8000-000000000003"


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    with running("synthd-links-") as d:
        yield d


def link_of(d: Daemon, name: str, chan: int = 0) -> dict[str, object]:
    return dict(d.call("stats", name=name)["devices"][name]["packet"]["links"][chan])


def crosses(d: Daemon, a: str, b: str) -> None:
    """Frames go both ways between devices a and b, each driven through its region."""
    with Device.open(str(d.regions / a)) as ga, Device.open(str(d.regions / b)) as gb:
        ca, cb = PacketChannel(ga, 0), PacketChannel(gb, 0)
        until(lambda: device_counters(ga)["links"][0] == "wire" and device_counters(gb)["links"][0] == "wire",
              what="both drivers to see the wire")
        ab = [frame(i, 60 + i) for i in range(40)]
        ba = [frame(500 + i, 1500) for i in range(40)]
        assert exchange(ca, cb, ab) == ab
        assert exchange(cb, ca, ba) == ba
        ca.close()
        cb.close()


def packet(name: str, **options: str) -> dict[str, object]:
    return {"name": name, "class": "packet", "size": 1 << 20, "options": options}


@pytest.mark.parametrize("asker", ["first", "second", "both"])
def test_the_domain_that_starts_second_completes_the_wire(daemon: Daemon, asker: str) -> None:
    a_opts = {"link": "wire:chain-b"} if asker in ("first", "both") else {}
    b_opts = {"link": "wire:chain-a"} if asker in ("second", "both") else {}
    daemon.call("domain.create", uuid=A, name="vnf-a", devices=[packet("chain-a", **a_opts)])
    assert link_of(daemon, "chain-a")["link"] == "none", "the other end is not served yet"
    daemon.call("domain.create", uuid=B, name="vnf-b", devices=[packet("chain-b", **b_opts)])
    la = link_of(daemon, "chain-a")
    assert (la["link"], la["peer"], la["peer_alive"]) == ("wire", "chain-b", True)
    crosses(daemon, "chain-a", "chain-b")
    # One worker serves both ends (and every device stays on one).
    assert [w["devices"] for w in daemon.call("health")["workers"]] == [2]


def test_a_destroyed_end_leaves_a_clean_link_down_and_comes_back(daemon: Daemon) -> None:
    daemon.call("domain.create", uuid=A, name="vnf-a", devices=[packet("chain-a", link="wire:chain-b")])
    daemon.call("domain.create", uuid=B, name="vnf-b", devices=[packet("chain-b")])
    with Device.open(str(daemon.regions / "chain-a")) as ga:
        ca = PacketChannel(ga, 0)
        until(lambda: device_counters(ga)["links"][0] == "wire", what="the wire")
        daemon.call("domain.destroy", uuid=B)
        until(lambda: device_counters(ga)["links"][0] == "none", what="link-down in chain-a's driver")
        sent = ca.send_packets([frame(i) for i in range(8)])
        until(lambda: device_counters(ga)["tx_drops"] == sent, what="frames without a link counted as drops")
        la = link_of(daemon, "chain-a")
        assert (la["peer"], la["peer_alive"]) == (None, False), la
        ca.close()
    daemon.call("domain.create", uuid=B, name="vnf-b", devices=[packet("chain-b")])
    crosses(daemon, "chain-a", "chain-b")


def test_cross_domain_wires_come_back_after_a_daemon_restart(daemon: Daemon) -> None:
    daemon.call("domain.create", uuid=A, name="vnf-a", devices=[packet("chain-a", link="wire:chain-b")])
    daemon.call("domain.create", uuid=B, name="vnf-b", devices=[packet("chain-b")])
    daemon.stop()
    daemon.start()
    la = link_of(daemon, "chain-a")
    assert (la["link"], la["peer"], la["peer_alive"]) == ("wire", "chain-b", True)
    crosses(daemon, "chain-a", "chain-b")


def test_a_channel_wired_to_one_domain_is_refused_to_another(daemon: Daemon) -> None:
    daemon.call("domain.create", uuid=A, name="vnf-a", devices=[packet("chain-a", link="wire:chain-b")])
    daemon.call("domain.create", uuid=B, name="vnf-b", devices=[packet("chain-b")])
    with pytest.raises(client.RpcError, match="chain-a channel 0 is linked"):
        daemon.call("domain.create", uuid=C, name="vnf-c", devices=[packet("chain-c", link="wire:chain-a")])
    assert link_of(daemon, "chain-a")["peer"] == "chain-b", "the refusal changed nothing"
    crosses(daemon, "chain-a", "chain-b")
    # A channel the other domain did not ask for is free: a wire to its second channel works.
    daemon.call("domain.destroy", uuid=A)
    daemon.call("domain.create", uuid=A, name="vnf-a",
                devices=[{"name": "chain-a", "class": "packet", "size": 1 << 20, "queues": 4,
                          "options": {"link": "wire:chain-b"}}])
    daemon.call("domain.create", uuid=C, name="vnf-c", devices=[packet("chain-c", link="wire:chain-a.1")])
    lc = link_of(daemon, "chain-c")
    assert (lc["peer"], lc["peer_channel"]) == ("chain-a", 1)
    assert link_of(daemon, "chain-a")["peer"] == "chain-b"
