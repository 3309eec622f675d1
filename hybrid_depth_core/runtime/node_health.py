"""The depth node's health as /diagnostics reports it (diagnostic_msgs/DiagnosticStatus levels),
without ROS: what a robot's supervisor or rqt_robot_monitor needs to tell a node that works
from one that waits for its camera or fails."""
from __future__ import annotations

from dataclasses import dataclass

from hybrid_depth_core.runtime.frame_handoff import Interval

OK, WARN, ERROR = 0, 1, 2  # DiagnosticStatus.OK, .WARN, .ERROR
NO_IMAGE_WARN_S = 5.0      # no image for this long: WARN (a camera that stopped, a bad remap)


@dataclass(frozen=True)
class Health:
    level: int
    message: str
    values: dict[str, str]


def health(interval: Interval, totals: dict[str, int], since_image_s: float | None,
           failing: str | None, waiting: str | None, device: str, input_topic: str,
           bad_input: str | None = None) -> Health:
    """The status for one reporting interval: ERROR while inference fails (`failing`: the last
    failure), WARN without images for NO_IMAGE_WARN_S (`since_image_s`: None before the first),
    while waiting for something else (`waiting`: e.g. the camera_info), or when images came
    and were all bad input (`bad_input`: the last problem), else OK."""
    latencies = sorted(interval.latencies)
    values = {
        'input topic': input_topic,
        'images received per second': f'{interval.received_hz:.1f}',
        'depth published per second': f'{interval.served_hz:.1f}',
        'latency median (ms)': (f'{1000 * latencies[len(latencies) // 2]:.0f}'
                                if latencies else ''),
        'latency max (ms)': f'{1000 * latencies[-1]:.0f}' if latencies else '',
        'images received': str(totals['received']),
        'depth images published': str(totals['served']),
        'images skipped (a newer one came first)': str(totals['skipped']),
        'bad input': str(totals['bad']),
        'failed frames': str(totals['failed']),
        'device': device,
    }
    if failing is not None:
        return Health(ERROR, f'inference failing: {failing}', values)
    if since_image_s is None:
        return Health(WARN, f'no image received yet on {input_topic}', values)
    if since_image_s > NO_IMAGE_WARN_S:
        return Health(WARN, f'no image for {since_image_s:.0f} s on {input_topic}', values)
    if waiting is not None:
        return Health(WARN, waiting, values)
    if interval.counts['bad'] and not interval.latencies:
        return Health(WARN, f'every image was bad input: {bad_input}', values)
    return Health(OK, f'depth at {interval.served_hz:.1f} Hz', values)
