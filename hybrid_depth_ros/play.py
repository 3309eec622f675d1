"""Replay a rosbag2 into ROS 2 at the recorded rate (`hybrid-depth play BAG`), to run the node
against recordings where `ros2 bag` is not installed.

rosbags reads the bag; each message is published as the serialized CDR bytes it was recorded
as (rclpy publishes bytes as they are), so nothing is decoded or re-encoded. A topic is
replayed when its message type's Python package is importable here (sensor_msgs, std_msgs,
geometry_msgs with the wheels; tf2_msgs too on a real ROS install); the others are listed as
skipped.
"""
from __future__ import annotations

import importlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import rclpy
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rclpy.signals import SignalHandlerOptions

from hybrid_depth_core.recordings.bag_opening import RecordingReader
from hybrid_depth_core.errors import UserError

# Reliable so that RViz's default (reliable) subscriptions see the replayed topics too; a
# best-effort subscriber (the depth node) matches it as well.
QOS = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
ACK_TIMEOUT_S = 5.0  # at the end, how long reliable subscribers get to take the last messages


@dataclass
class PlaySummary:
    published: Counter = field(default_factory=Counter)  # topic -> messages
    skipped: dict[str, str] = field(default_factory=dict)  # topic -> type not importable
    loops: int = 0  # complete passes through the bag
    interrupted: bool = False


def message_class(msgtype: str):
    """'sensor_msgs/msg/Image' -> sensor_msgs.msg.Image (ImportError if not installed)."""
    package, kind, name = msgtype.split('/')
    try:
        return getattr(importlib.import_module(f'{package}.{kind}'), name)
    except AttributeError:
        raise ImportError(f'{package}.{kind} has no {name}') from None


def play(bag: Path, node: Node, rate: float = 1.0, repeat: int | None = 1,
         topics: list[str] | None = None, delay: float = 1.0,
         stop: threading.Event | None = None, log=print,
         allow_partial: bool = False) -> PlaySummary:
    """Publish the bag's messages from `node`, spaced by their recorded times / `rate`;
    `repeat` times (None: until `stop` is set). Before the first message, waits up to `delay`
    seconds for DDS discovery to match every publisher with a subscriber, so that the first
    messages are not sent to nobody."""
    if rate <= 0:
        raise UserError(f'rate must be positive, got {rate}')
    stop = stop or threading.Event()
    summary = PlaySummary()
    if not Path(bag).exists():
        raise UserError(f'cannot read bag {bag}: it does not exist')
    reader = RecordingReader(Path(bag), allow_partial)
    if not reader.reader.is2:
        reader.close()
        raise UserError(f'{bag} is a ROS 1 bag; play replays rosbag2 (convert it with '
                        f'`rosbags-convert`)')
    try:
        in_bag = {c.topic for c in reader.connections}
        missing = sorted(set(topics or ()) - in_bag)
        if missing:
            raise UserError(f'{bag} has no topic {", ".join(missing)}; it has '
                            f'{", ".join(sorted(in_bag))}')
        publishers, types = {}, {}
        for connection in reader.connections:
            if topics and connection.topic not in topics or connection.topic in publishers:
                continue
            try:
                publishers[connection.topic] = node.create_publisher(
                    message_class(connection.msgtype), connection.topic, QOS)
                types[connection.topic] = connection.msgtype
            except (ImportError, ValueError):
                summary.skipped[connection.topic] = connection.msgtype
        if not publishers:
            raise UserError(f'nothing to replay from {bag}: no message type of its topics is '
                            f'installed ({", ".join(sorted(summary.skipped.values()))})')
        log(f'replaying {", ".join(sorted(publishers))} at {rate:g}x'
            + (f'; skipped (type not installed): {", ".join(sorted(summary.skipped))}'
               if summary.skipped else ''))
        _wait_for_subscribers(publishers.values(), delay, stop)
        while (repeat is None or summary.loops < repeat) and not stop.is_set():
            if _play_once(reader, types, publishers, rate, stop, node.context,
                          summary.published):
                summary.loops += 1
        # Reliable delivery goes on after publish() returns: leaving now would drop the last
        # messages for a subscriber that is slow to acknowledge them (on a busy machine).
        for publisher in publishers.values():
            publisher.wait_for_all_acked(Duration(seconds=ACK_TIMEOUT_S))
    except KeyboardInterrupt:  # Ctrl-C ends a replay; the summary says how far it got
        summary.interrupted = True
    finally:
        reader.close()
    return summary


def _play_once(reader, types, publishers, rate, stop, context, published: Counter) -> bool:
    """One pass through the bag (the messages of `types`: topic -> type); False if it was
    stopped before the end."""
    start, first = time.monotonic(), None
    for connection, timestamp, rawdata in reader.messages(set(types)):
        if types[connection.topic] != connection.msgtype:
            continue
        first = timestamp if first is None else first
        wait = start + (timestamp - first) / 1e9 / rate - time.monotonic()
        if wait > 0 and stop.wait(wait):
            return False
        if stop.is_set() or not context.ok():  # stopped, or ROS shut down meanwhile
            return False
        publishers[connection.topic].publish(bytes(rawdata))
        published[connection.topic] += 1
    return True


def _wait_for_subscribers(publishers, seconds: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not stop.is_set():
        if all(p.get_subscription_count() > 0 for p in publishers):
            # Matching is not symmetric: the subscriber's side may finish a moment after the
            # publisher's, and a message sent in between is lost.
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
            return
        time.sleep(0.02)


def main(bag: Path, rate: float = 1.0, loop: bool = False, topics: list[str] | None = None,
         delay: float = 1.0, allow_partial: bool = False) -> int:
    """`hybrid-depth play`: its own ROS context and node. Ctrl-C (and SIGTERM, which the
    command line turns into the same) ends the replay cleanly with a summary."""
    # Without rclpy's signal handlers: they would shut the context down under the publishers
    # instead of letting KeyboardInterrupt end the loop between two messages.
    rclpy.init(args=['hybrid_depth_play'], signal_handler_options=SignalHandlerOptions.NO)
    node = rclpy.create_node('hybrid_depth_play')
    try:
        summary = play(bag, node, rate=rate, repeat=None if loop else 1, topics=topics,
                       delay=delay, allow_partial=allow_partial)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    counts = ', '.join(f'{topic} {count}' for topic, count in sorted(summary.published.items()))
    print(f'published {sum(summary.published.values())} messages ({counts or "none"}) in '
          f'{summary.loops} complete pass(es){"; interrupted" if summary.interrupted else ""}')
    return 0
