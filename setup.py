"""One package, two installers: `colcon build` (ament_python) and `pip install -e .`."""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = 'hybrid_depth_ros'

setup(
    name=PACKAGE,
    version='0.1.0',
    packages=find_packages(include=['hybrid_depth_core', 'hybrid_depth_core.*',
                                    'hybrid_depth_ros', 'hybrid_depth_ros.*']),
    data_files=[
        ('share/ament_index/resource_index/packages', [f'resource/{PACKAGE}']),
        (f'share/{PACKAGE}', ['package.xml']),
        (f'share/{PACKAGE}/launch', glob('launch/*.launch.py')),
        (f'share/{PACKAGE}/config', glob('config/*.yaml') + glob('config/*.xml')),
        (f'share/{PACKAGE}/rviz', glob('rviz/*.rviz')),
        (f'share/{PACKAGE}/models', glob('models/*.pt') + glob('models/*.md')),
    ],
    python_requires='>=3.10',
    # Pinned versions live in requirements.txt; these are the ranges the code is written for.
    install_requires=[
        'numpy>=1.24',
        'opencv-python-headless>=4.6',
        'mcap>=1.2',
        'PyYAML>=6',
        'rosbags>=0.10',
        'rosbags-image>=0.10',
        'torch>=2.7',  # torch.compiler.is_exporting (ONNX export tracing); tested with 2.13.0
        'tqdm>=4.60',
    ],
    extras_require={'export': ['onnx>=1.16', 'onnxscript>=0.5', 'onnxruntime>=1.18']},
    package_data={'hybrid_depth_core.networks': ['*.cpp']},  # the fused kernel, built on use
    zip_safe=False,
    maintainer='hybrid-depth maintainers',
    maintainer_email='maintainers@hybrid-depth.dev',
    description='Self-supervised hybrid CNN-transformer monocular depth for ROS 2.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        'console_scripts': [
            'hybrid-depth = hybrid_depth_ros.cli:main',
            'depth_node = hybrid_depth_ros.node:main',
        ],
    },
)
