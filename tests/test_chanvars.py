"""manager.conf `channelvars = CCROUTER_CARD`: the simulator prints `ChanVariable` like
Asterisk 22 (main/manager_channels.c: one `ChanVariable: NAME=value` header per name, right
after the snapshot's `Linkedid`), ccrouter reads it, and the call book keeps that card."""

from __future__ import annotations

import itertools

from ccrouter import dialplan as dp
from ccrouter.asterisk_conf import CHANNELVARS, manager_conf
from ccrouter.calls.model.book import CallBook
from ccrouter.calls.model.cards import Outcome, card_number
from ccrouter.pbx import events as ev
from ccrouter.pbx.ami.translate import chan_card, channel_from_item, interface_of, translate
from ccrouter.sim import PbxSimulator, SimCaller
from ccrouter.sim.testing import AmiClient, ScriptedAgi, parse, route_to

CARD = card_number(4242)


async def _events_until(ami: AmiClient, name: str) -> list[bytes]:
    blocks = []
    while True:
        block = await ami.read()
        blocks.append(block)
        if block.startswith(f"Event: {name}\r\n".encode()):
            return blocks


async def _call_in_queue(channelvars: tuple[str, ...]) -> tuple[list[bytes], bytes]:
    agi = ScriptedAgi(route_to("support-ru", ((dp.VAR_CARD, CARD),)))
    sim = PbxSimulator(agi_port=await agi.start(), time_scale=50.0, noise=True,
                       channelvars=channelvars)  # fmt: skip
    sim.add_queue("support-ru", timeout=10)
    await sim.start()
    ami = await AmiClient.connect(sim.ami_port)
    try:
        await ami.login()
        sim.place_call(SimCaller("79001112233", "Ivan", patience_s=600))
        blocks = await _events_until(ami, "QueueCallerJoin")
        await ami.send("CoreShowChannels", ActionID="csc-1")
        listing = b"".join(await _events_until(ami, "CoreShowChannelsComplete"))
        return blocks, listing
    finally:
        await ami.close()
        await sim.close()
        await agi.close()


async def test_sim_prints_chanvariable_after_linkedid_like_asterisk() -> None:
    blocks, listing = await _call_in_queue(CHANNELVARS)
    join = blocks[-1]
    (first,) = [b for b in blocks if b.startswith(b"Event: Newchannel\r\n")][:1]
    assert f"ChanVariable: {dp.VAR_CARD}=\r\n".encode() in first  # unset: empty value
    head = join.split(b"Linkedid: ", 1)[1].split(b"\r\n", 2)
    assert head[1] == f"ChanVariable: {dp.VAR_CARD}={CARD}".encode()
    assert head[2].startswith(b"Queue: support-ru\r\n")
    assert f"ChanVariable: {dp.VAR_CARD}={CARD}\r\n".encode() in listing
    event = translate(parse(join), 1.0)
    assert isinstance(event, ev.CallerJoined) and event.chan.card == CARD


async def test_sim_without_channelvars_prints_none() -> None:
    blocks, listing = await _call_in_queue(())
    assert not any(b"ChanVariable" in b for b in blocks) and b"ChanVariable" not in listing


def test_generated_manager_conf_sets_channelvars_in_general() -> None:
    lines = manager_conf().splitlines()
    at = lines.index("[general](+)")
    assert lines[at + 1] == f"channelvars = {dp.VAR_CARD}"
    assert lines.index("[ccrouter]") > at


def test_chan_card_reads_one_or_many_chanvariable_headers() -> None:
    assert chan_card(f"{dp.VAR_CARD}={CARD}") == CARD
    assert chan_card(["OTHER=1", f"{dp.VAR_CARD}={CARD}"]) == CARD
    assert chan_card(f"{dp.VAR_CARD}=") == "" and chan_card("OTHER=5") == ""
    item = {"Event": "CoreShowChannel", "Uniqueid": "1.5", "Channel": "PJSIP/trunk-00000001",
            "ChanVariable": f"{dp.VAR_CARD}={CARD}"}  # fmt: skip
    assert channel_from_item(item).card == CARD
    assert channel_from_item({"Uniqueid": "1.5"}).card == ""


def test_interface_of_channel_names() -> None:
    assert interface_of("PJSIP/1001-0000000a") == "PJSIP/1001"
    assert interface_of("SIP/op-7-00000001") == "SIP/op-7"
    assert interface_of("Local/agent7@lab-agents-00000003;1") == "Local/agent7@lab-agents"
    assert interface_of("DAHDI/1") == "DAHDI/1"


def _book() -> CallBook:
    serials = itertools.count(1)
    return CallBook(new_number=lambda: card_number(next(serials)))


def _chan(uid: str, card: str = "") -> ev.ChannelRef:
    return ev.ChannelRef(uid, uid, "PJSIP/trunk-00000001", "7900", "Ivan", "2000", "inbound",
                         card)  # fmt: skip


def test_first_sight_join_keeps_the_channels_valid_card() -> None:
    b = _book()
    writes = b.apply(ev.CallerJoined(1.0, _chan("1.1", CARD), "wallet-ru", 1, 1))
    assert writes[0].insert and writes[0].number == CARD


def test_first_sight_join_rejects_a_bad_or_taken_card() -> None:
    b = _book()
    bad = CARD[:-1] + str((int(CARD[-1]) + 1) % 10)  # wrong check digit
    (w, *_) = b.apply(ev.CallerJoined(1.0, _chan("1.1", bad), "wallet-ru", 1, 1))
    assert w.number == card_number(1)
    b.apply(ev.CallerJoined(1.0, _chan("1.2", CARD), "wallet-ru", 1, 1))
    (w3, *_) = b.apply(ev.CallerJoined(1.0, _chan("1.3", CARD), "wallet-ru", 1, 1))
    assert w3.number == card_number(2)  # CARD is held by 1.2


def test_adopt_then_bridged_then_hangup_closes_answered() -> None:
    b = _book()
    (w,) = b.adopt(at=5.0, chan=_chan("1.1", CARD))
    assert w.insert and w.number == CARD and w.fields["uniqueid"] == "1.1"
    assert b.adopt(at=5.0, chan=_chan("1.9", CARD)) == []  # one call per card
    (a,) = b.bridged(at=6.0, uniqueid="1.1", interface="PJSIP/1001", operator="Dilnoza")
    assert a.fields["outcome"] == Outcome.ANSWERED.value and a.fields["operator"] == "Dilnoza"
    assert b.bridged(at=7.0, uniqueid="1.1", interface="PJSIP/1002", operator="") == []
    b.apply(ev.AgentFinished(30.0, _chan("1.1"), "wallet-ru", "PJSIP/1001", "Dilnoza", 0, 24,
                             "agent"))  # fmt: skip
    closing = b.apply(ev.ChannelHungUp(31.0, "1.1", "1.1", "PJSIP/trunk-00000001", 16,
                                       "Normal Clearing"))  # fmt: skip
    assert closing[-1].fields["state"] == "closed"
    assert closing[-1].fields["outcome"] == Outcome.ANSWERED.value
