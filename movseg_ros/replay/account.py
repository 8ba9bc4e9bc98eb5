"""Where every input frame of a replay went: processed, dropped, bad, failed or lost."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class FrameAccount:
    """Counts that must add up: frames in the bag = bad in bag + sent; sent = lost + received; ...

    In-process replay has no transport, so `lost_in_transport`, `dropped_by_queue` and
    `lost_on_output` stay 0 and `received` equals `sent`.
    """

    in_bag: int = 0  # image messages on the topic
    bad_in_bag: int = 0  # messages that could not be decoded from the bag (not sent)
    sent: int = 0  # frames handed to the pipeline or published to the node
    received: int = 0  # frames the node took from its subscription
    dropped_by_queue: int = 0  # replaced in the node's queue by a newer frame
    bad_at_node: int = 0  # rejected by the node's image decoder
    failed: int = 0  # the pipeline raised on them
    processed: int = 0  # segmented; each gives one output
    outputs: int = 0  # outputs published (node) or returned (in-process)
    recorded: int = 0  # outputs that reached the recorder

    @property
    def lost_in_transport(self) -> int:
        return self.sent - self.received

    @property
    def pending(self) -> int:
        """Frames segmented but still held by a near-online pipeline when the stream ended."""
        return self.processed - self.outputs

    @property
    def lost_on_output(self) -> int:
        return self.outputs - self.recorded

    def problems(self) -> list[str]:
        """The equations that do not hold (empty when every frame is accounted for)."""
        checks = {
            "in_bag = bad_in_bag + sent": self.in_bag == self.bad_in_bag + self.sent,
            "sent = lost_in_transport + received": self.lost_in_transport >= 0,
            "received = dropped + bad + failed + processed":
                self.received == self.dropped_by_queue + self.bad_at_node + self.failed + self.processed,
            "processed = outputs + pending": self.pending >= 0,
            "outputs = recorded + lost_on_output": self.lost_on_output >= 0,
        }
        return [name for name, ok in checks.items() if not ok]

    def to_dict(self) -> dict[str, int | bool | list[str]]:
        d: dict[str, int | bool | list[str]] = dict(asdict(self))
        d["lost_in_transport"] = self.lost_in_transport
        d["pending"] = self.pending
        d["lost_on_output"] = self.lost_on_output
        d["adds_up"] = not self.problems()
        d["problems"] = self.problems()
        return d

    def lines(self) -> list[str]:
        """Human summary, one line per stage."""
        return [
            f"frames in bag {self.in_bag}  (undecodable in the bag: {self.bad_in_bag})",
            f"sent {self.sent}  -> received {self.received}  (lost in transport {self.lost_in_transport})",
            f"received {self.received} = processed {self.processed} + dropped by queue {self.dropped_by_queue}"
            f" + bad {self.bad_at_node} + failed {self.failed}",
            f"processed {self.processed} = outputs {self.outputs} + still pending {self.pending}",
            f"outputs {self.outputs}  -> recorded {self.recorded}  (lost on output {self.lost_on_output})",
            "account adds up" if not self.problems() else f"ACCOUNT DOES NOT ADD UP: {'; '.join(self.problems())}",
        ]
