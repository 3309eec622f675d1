"""hybrid_depth_core must work where ROS is not installed: importing all of it loads no ROS."""
import subprocess
import sys

ROS_MODULES = ('rclpy', 'rosidl_runtime_py', 'sensor_msgs', 'std_msgs', 'geometry_msgs',
               'builtin_interfaces', 'launch', 'launch_ros', 'rmw_implementation')

SCRIPT = f'''
import importlib, pkgutil, sys
import hybrid_depth_core
names = [m.name for m in pkgutil.walk_packages(hybrid_depth_core.__path__, 'hybrid_depth_core.')
         if not m.name.endswith('__main__')]
for name in names:
    importlib.import_module(name)
loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({ROS_MODULES!r}))
print(len(names), ','.join(loaded))
'''


def test_importing_every_core_module_loads_no_ros_module():
    result = subprocess.run([sys.executable, '-c', SCRIPT], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    count, loaded = result.stdout.strip().split(' ', 1) if ' ' in result.stdout.strip() else (
        result.stdout.strip(), '')
    assert int(count) >= 8  # really walked the package
    assert loaded == '', f'hybrid_depth_core imported ROS modules: {loaded}'
