"""An Asterisk restart while ccrouter stays connected: the PBX accepts logins while it still
boots, its queue actions answer `Response: Error` (app_queue not loaded yet) until `FullyBooted`;
ccrouter keeps the connection, resyncs right after `FullyBooted`, and the calls the restart
killed are closed `lost_on_pbx_restart` (issue 11 item 2)."""

from __future__ import annotations

from ccrouter.ami.protocol import FastAMIProtocol
from tests.conftest import fixture_bytes

BOOT_FIXTURE = "ami-queuestatus-during-boot.txt"


def boot_request_and_reply() -> tuple[bytes, bytes]:
    """The fixture's QueueStatus request block and Asterisk's only reply, as sent."""
    raw = fixture_bytes(BOOT_FIXTURE)
    request, sep, reply = raw.partition(b"\r\n\r\n")
    return request + sep, reply


class _Transport:
    def __init__(self) -> None:
        self.sent = b""

    def write(self, data: bytes) -> None:
        self.sent += data

    def close(self) -> None:
        pass


def test_a_list_action_completes_on_its_only_reply_an_error() -> None:
    request, reply = boot_request_and_reply()
    action_id = next(line.split(": ", 1)[1] for line in request.decode().split("\r\n")
                     if line.startswith("ActionID: "))  # fmt: skip
    protocol = FastAMIProtocol()
    protocol.connection_made(_Transport())
    future = protocol.send({"Action": "QueueStatus", "ActionID": action_id}, as_list=True)
    protocol.data_received(reply)
    assert future.done(), "a list action answered only by Response: Error must complete"
    [message] = future.result()
    assert message["Response"] == "Error"
    assert message["Message"].startswith("Invalid/unknown command: QueueStatus.")
    assert protocol.responses == {}  # nothing left pending


def test_a_list_action_still_collects_its_items_after_a_success_reply() -> None:
    protocol = FastAMIProtocol()
    protocol.connection_made(_Transport())
    future = protocol.send({"Action": "CoreShowChannels", "ActionID": "l1"}, as_list=True)
    protocol.data_received(b"Response: Success\r\nActionID: l1\r\nEventList: start\r\n"
                           b"Message: Channels will follow\r\n\r\n")  # fmt: skip
    assert not future.done()
    protocol.data_received(b"Event: CoreShowChannelsComplete\r\nActionID: l1\r\n"
                           b"EventList: Complete\r\nListItems: 0\r\n\r\n")  # fmt: skip
    assert [m["Response"] if "Response" in m else m["Event"] for m in future.result()] == [
        "Success", "CoreShowChannelsComplete"]  # fmt: skip
