"""Do camera images reach a subscriber's callback? A camera process publishes rgb8 images (or
their JPEG CompressedImage) at a rate with the default QoS of a camera driver (reliable, depth
10), and a subscriber process counts the images that reach its callback, with the depth node's
input QoS (best effort, depth 1: the newest only) or another. Each in its own process, on
loopback, on a fresh ROS_DOMAIN_ID, with the middleware settings of the environment or of a
Fast DDS profile (config/fastdds_large_images.xml).

    python benchmarks/image_delivery.py --sizes 320x96 640x480 1280x720 --rate 30 --seconds 10
    python benchmarks/image_delivery.py ... --profile config/fastdds_large_images.xml

Prints a Markdown row per case: published, reached the callback, share.
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path


def camera(width: int, height: int, rate: float, seconds: float, compressed: bool) -> None:
    import cv2
    import numpy as np
    import rclpy
    from sensor_msgs.msg import CompressedImage, Image

    rclpy.init()
    node = rclpy.create_node('delivery_camera')
    kind = CompressedImage if compressed else Image
    topic = '/camera/image_raw' + ('/compressed' if compressed else '')
    publisher = node.create_publisher(kind, topic, 10)  # a driver's default: reliable, depth 10
    deadline = time.monotonic() + 20
    while publisher.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # discovery of the reader's locators
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height // 8, width // 8, 3), np.uint8) for _ in range(4)]
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in frames]
    sent, start = 0, time.monotonic()
    while time.monotonic() - start < seconds:
        stamp = node.get_clock().now().to_msg()
        if compressed:
            _, jpeg = cv2.imencode('.jpg', frames[sent % 4], [cv2.IMWRITE_JPEG_QUALITY, 90])
            message = CompressedImage(format='rgb8; jpeg compressed bgr8', data=jpeg.tobytes())
        else:
            message = Image(height=height, width=width, encoding='rgb8', step=3 * width,
                            data=frames[sent % 4].tobytes())
        message.header.stamp = stamp
        publisher.publish(message)
        sent += 1
        time.sleep(max(0.0, start + sent / rate - time.monotonic()))
    print(json.dumps({'sent': sent}), flush=True)
    rclpy.shutdown()


def subscriber(qos_name: str, compressed: bool, seconds: float) -> None:
    """qos_name: RELIABILITY[:DEPTH], e.g. best_effort:1 (the node's default)."""
    import rclpy
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CompressedImage, Image

    rclpy.init()
    node = rclpy.create_node('delivery_subscriber')
    reliability, _, depth = qos_name.partition(':')
    qos = QoSProfile(depth=int(depth or 1), history=HistoryPolicy.KEEP_LAST,
                     reliability=(ReliabilityPolicy.BEST_EFFORT if reliability == 'best_effort'
                                  else ReliabilityPolicy.RELIABLE),
                     durability=DurabilityPolicy.VOLATILE)
    received = []
    kind = CompressedImage if compressed else Image
    topic = '/camera/image_raw' + ('/compressed' if compressed else '')
    node.create_subscription(kind, topic, lambda m: received.append(1), qos)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.1)
    print(json.dumps({'received': len(received)}), flush=True)
    rclpy.shutdown()


def run_case(width: int, height: int, rate: float, seconds: float, compressed: bool,
             qos: str, profile: Path | None, side: str = 'both') -> dict:
    env = {**os.environ, 'ROS_DOMAIN_ID': str(random.SystemRandom().randint(1, 100)),
           'ROS_AUTOMATIC_DISCOVERY_RANGE': 'LOCALHOST'}
    env.pop('FASTRTPS_DEFAULT_PROFILES_FILE', None)
    env.pop('FASTDDS_DEFAULT_PROFILES_FILE', None)
    with_profile = dict(env)
    if profile is not None:
        with_profile['FASTRTPS_DEFAULT_PROFILES_FILE'] = str(profile.resolve())
    camera_env = with_profile if side in ('both', 'camera') else env
    subscriber_env = with_profile if side in ('both', 'subscriber') else env
    me = [sys.executable, __file__]
    listener = subprocess.Popen(me + ['--role', 'subscriber', '--qos', qos,
                                      '--seconds', str(seconds + 8)]
                                + (['--compressed'] if compressed else []),
                                env=subscriber_env, stdout=subprocess.PIPE, text=True)
    time.sleep(1.0)
    sender = subprocess.run(me + ['--role', 'camera', '--sizes', f'{width}x{height}',
                                  '--rate', str(rate), '--seconds', str(seconds)]
                            + (['--compressed'] if compressed else []),
                            env=camera_env, capture_output=True, text=True,
                            timeout=seconds + 60)
    out, _ = listener.communicate(timeout=60)  # it ends by itself, after the camera
    sent = json.loads(sender.stdout.strip().splitlines()[-1])['sent']
    lines = [line for line in (out or '').splitlines() if line.startswith('{')]
    received = json.loads(lines[-1])['received'] if lines else None
    return {'sent': sent, 'received': received}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--role', choices=('camera', 'subscriber'))
    parser.add_argument('--sizes', nargs='+', default=['320x96', '640x480', '1280x720'])
    parser.add_argument('--rate', type=float, default=30.0)
    parser.add_argument('--seconds', type=float, default=10.0)
    parser.add_argument('--qos', nargs='+', default=['best_effort:1'],
                        help='subscriber QoS, RELIABILITY:DEPTH (best_effort or reliable)')
    parser.add_argument('--compressed', action='store_true')
    parser.add_argument('--profile', type=Path, help='a Fast DDS XML profile')
    parser.add_argument('--profile-side', choices=('both', 'camera', 'subscriber'),
                        default='both', help='which process gets --profile')
    args = parser.parse_args()
    if args.role == 'camera':
        width, height = map(int, args.sizes[0].split('x'))
        return camera(width, height, args.rate, args.seconds, args.compressed)
    if args.role == 'subscriber':
        return subscriber(args.qos[0], args.compressed, args.seconds)
    transport = 'JPEG CompressedImage' if args.compressed else 'rgb8 Image'
    setting = (f'profile {args.profile} ({args.profile_side})' if args.profile
               else 'default middleware settings')
    print(f'{transport}, {args.rate:g} Hz for {args.seconds:g} s, {setting}')
    print('| camera | subscriber QoS | published | reached the callback | share |')
    print('|---|---|---|---|---|')
    for size in args.sizes:
        width, height = map(int, size.split('x'))
        for qos in args.qos:
            result = run_case(width, height, args.rate, args.seconds, args.compressed, qos,
                              args.profile, args.profile_side)
            share = (f'{100 * result["received"] / result["sent"]:.1f}%'
                     if result['received'] is not None else 'n/a')
            print(f'| {size} | {qos} | {result["sent"]} | {result["received"]} | {share} |',
                  flush=True)


if __name__ == '__main__':
    main()
