"""AMI frames from a hostile or broken peer: huge values, missing keys, binary, bad encodings,
arbitrary chunking. The parser never raises and agrees with the line-by-line reference; the
tracker turns a malformed known event into `ami_bad_event`, never an exception."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from ccrouter.calls.model.book import CallBook
from ccrouter.calls.tracker import CallTracker
from ccrouter.dialplan import AMI_EVENTS
from ccrouter.pbx.ami.protocol import FastAMIProtocol, Headers, _parse_block_slow, parse_block
from ccrouter.pbx.ami.translate import EVENT_TABLE, BadEvent, translate
from tests.fuzz_settings import fuzz

KEYS = [
    "Event", "Uniqueid", "Linkedid", "Channel", "Queue", "Interface", "MemberName", "HoldTime",
    "TalkTime", "RingTime", "Position", "Count", "Cause", "Cause-txt", "ActionID", "Response",
    "Reason", "Penalty", "Paused", "Status", "OriginalPosition",
]  # fmt: skip
values = st.one_of(
    st.text(max_size=20), st.integers(-(10**30), 10**30).map(str),
    st.text(min_size=2000, max_size=70000, alphabet="x9"),  # huge value
    st.sampled_from(["", " ", "unknown", "<unknown>", "1795443825.1", "-1", "1e9", "٣"]),
)  # fmt: skip
headers = st.lists(st.tuples(st.sampled_from(KEYS) | st.text(max_size=12), values), max_size=12)
raw_line = st.one_of(
    st.binary(max_size=80),
    st.tuples(st.sampled_from(KEYS), values).map(lambda kv: f"{kv[0]}: {kv[1]}".encode()),
    st.sampled_from([b"Header:", b"\xff\xfe: \xc3(", b"Event: Hangup", b": x", b"K:v", b"\r"]),
)


def event_dict(name: str, pairs: list[tuple[str, str]]) -> dict[str, Any]:
    msg: dict[str, Any] = {"Event": name}
    for k, v in pairs:
        if k != "Event":
            msg[k] = v
    return msg


@fuzz(80)
@given(st.lists(raw_line, max_size=15))
def test_parse_block_agrees_with_the_line_by_line_reference(lines: list[bytes]) -> None:
    block = b"\r\n".join(lines)
    msg = parse_block(block)
    assert msg == _parse_block_slow(block.decode("utf-8", "replace"))
    if type(msg) is Headers:  # the translator trusts this: every value one str
        assert all(type(v) is str for v in msg.values())


@fuzz(80)
@given(st.sampled_from(sorted(EVENT_TABLE)), headers, st.floats(0, 2e9))
def test_known_event_with_any_headers_translates_or_names_the_header(
    name: str, pairs: list[tuple[str, str]], at: float
) -> None:
    msg = event_dict(name, pairs)
    try:
        event = translate(msg, at)
    except BadEvent as e:
        assert e.event == name and e.header and e.header in str(e)
    else:  # a VarSet is of use only for MIXMONITOR_FILENAME (the Filter admits no other)
        other_var = name == "VarSet" and msg.get("Variable") != "MIXMONITOR_FILENAME"
        assert (event is None) == other_var


class _Sink:
    def __init__(self) -> None:
        self.writes: list[Any] = []

    def submit(self, write: Any) -> None:
        self.writes.append(write)


def _feed(data: bytes, cuts: list[int]) -> tuple[list[dict[str, Any]], CallTracker]:
    seen: list[dict[str, Any]] = []
    tracker = CallTracker(CallBook(new_number=lambda: f"{len(seen):07d}"), _Sink())

    def sink(msg: dict[str, Any]) -> None:
        seen.append(msg)
        tracker.on_ami_event(msg)  # must never raise

    proto = FastAMIProtocol()
    proto.responses, proto.sink, proto._buf = {}, sink, b""
    proto.version = None
    last = 0
    for cut in [*sorted({min(c, len(data)) for c in cuts}), len(data)]:
        proto.data_received(data[last:cut])
        last = cut
    return seen, tracker


frames = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(AMI_EVENTS), headers).map(
            lambda t: "\r\n".join([f"Event: {t[0]}"] + [f"{k}: {v}" for k, v in t[1]])
            .encode("utf-8", "surrogatepass")),
        st.binary(max_size=200).map(lambda b: b.replace(b"\r\n\r\n", b"")),
    ),
    max_size=8,
)  # fmt: skip


@fuzz(60)
@given(frames, st.lists(st.integers(0, 5000), max_size=6), st.booleans())
@example([b"Event: FullyBooted\r\nActionID: 1\r\nActionID: 2"], [], False)  # was a TypeError
def test_any_stream_any_chunking_gives_the_same_events_and_never_raises(
    blocks: list[bytes], cuts: list[int], banner: bool
) -> None:
    data = b"".join(b + b"\r\n\r\n" for b in blocks)
    if banner:
        data = b"Asterisk Call Manager/11.0.0\r\n" + data
    whole, tracker = _feed(data, [])
    chunked, _ = _feed(data, cuts)
    assert chunked == whole
    assert tracker.events_seen == len(whole)
    assert all("Event" in m for m in whole)
