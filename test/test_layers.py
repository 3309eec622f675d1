"""The layers point one way: the core never reaches into the ROS package (not even lazily),
inference never loads training, the datasets or the synthetic worlds, and the core's packages
import each other without a cycle. Read from the source text, so that an import hidden inside a
function counts too."""
import ast
import subprocess
import sys
from pathlib import Path

import hybrid_depth_core

CORE = Path(hybrid_depth_core.__file__).parent
ROS_MODULES = ('rclpy', 'rosidl_runtime_py', 'sensor_msgs', 'std_msgs', 'geometry_msgs',
               'diagnostic_msgs', 'builtin_interfaces', 'launch', 'launch_ros',
               'rmw_implementation')


def core_sources() -> dict[str, str]:
    """{dotted module name: source text} of every module of hybrid_depth_core (a package's own
    module named `package.__init__`, so that relative imports resolve alike)."""
    sources = {}
    for path in sorted(CORE.rglob('*.py')):
        name = '.'.join(path.relative_to(CORE.parent).with_suffix('').parts)
        sources[name] = path.read_text()
    return sources


def imported_modules(source: str, module: str) -> set[str]:
    """Every module an import statement anywhere in `source` names (function bodies too);
    `module`, the source's own name, resolves relative imports."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = module.split('.')[:-node.level]
                base = '.'.join(parts + ([base] if base else []))
            names.add(base)
            names |= {f'{base}.{alias.name}' for alias in node.names}  # submodules
    return names


def unit(module: str) -> str | None:
    """The core package (or top-level module) `module` belongs to; None outside the core."""
    parts = module.split('.')
    if parts[0] != 'hybrid_depth_core' or len(parts) < 2:
        return None
    return parts[1]


def test_core_source_never_names_the_ros_package_or_rclpy():
    sources = core_sources()
    assert len(sources) > 50  # really read the package
    offenders = {name: sorted(m for m in imported_modules(text, name)
                              if m.split('.')[0] in ('hybrid_depth_ros',) + ROS_MODULES)
                 for name, text in sources.items()}
    assert not {name: found for name, found in offenders.items() if found}
    assert not [name for name, text in sources.items() if 'hybrid_depth_ros' in text]


# The README's code map, top to bottom: a unit imports only from its own row or rows above.
# Inference (runtime) sits above the synthetic worlds and the datasets, so it cannot load them.
LAYERS = (('errors', 'user_files', 'atomic', 'device', 'geometry', 'camera', 'config_dicts'),
          ('networks',), ('messages',), ('tracks',), ('recordings',), ('runtime',),
          ('synthetic',), ('datasets',), ('evaluation',), ('training', 'deploy'))


def import_graph() -> dict[str, set[str]]:
    """{core unit: the other core units its modules import}."""
    sources = core_sources()
    units = {unit(name) for name in sources} - {None, '__init__'}
    graph: dict[str, set[str]] = {}
    for name, text in sources.items():
        source = unit(name)
        if source in units:
            targets = {unit(m) for m in imported_modules(text, name)}
            graph.setdefault(source, set()).update((targets & units) - {source})
    return graph


def test_core_units_import_only_from_their_layer_or_above():
    graph = import_graph()
    row = {name: index for index, names in enumerate(LAYERS) for name in names}
    assert set(graph) == set(row), 'a core unit missing from LAYERS (and the README code map)'
    upward = sorted(f'{source} -> {target}' for source, targets in graph.items()
                    for target in targets if row[target] > row[source])
    assert not upward, f'imports against the layers: {upward}'


def test_the_readme_code_map_lists_the_layers_in_order():
    readme = (CORE.parent / 'README.md').read_text()
    code_map = readme.split('## Code map', 1)[1].split('\n## ', 1)[0]

    def position(name: str) -> int:
        found = [code_map.find(f'`{form}`') for form in (f'hybrid_depth_core.{name}', name)]
        assert max(found) >= 0, f'{name} is missing from the README code map'
        return min(p for p in found if p >= 0)
    rows = [[position(name) for name in layer] for layer in LAYERS]
    assert all(max(upper) < min(lower) for upper, lower in zip(rows, rows[1:]))


def test_core_packages_import_each_other_without_a_cycle():
    graph = import_graph()
    assert {'recordings', 'datasets', 'evaluation', 'runtime', 'training',
            'networks'} <= set(graph)
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 'open'
        for target in sorted(graph.get(node, ())):
            assert state.get(target) != 'open', f'import cycle: {" -> ".join(path + [target])}'
            if target not in state:
                visit(target, path + [target])
        state[node] = 'done'

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_cycle_check_finds_a_lazy_import_back():
    """The helpers see an import inside a function, relative ones resolved."""
    source = 'def f():\n    from ..evaluation import drivers\n'
    names = imported_modules(source, 'hybrid_depth_core.datasets.kitti')
    assert 'hybrid_depth_core.evaluation.drivers' in names
    assert unit('hybrid_depth_core.evaluation.drivers') == 'evaluation'


INFERENCE_SCRIPT = '''
import sys
import hybrid_depth_core.runtime.predictor, hybrid_depth_core.runtime.loader
import hybrid_depth_core.runtime.pipeline, hybrid_depth_core.runtime.bag_inference
print(','.join(sorted(m for m in sys.modules if m.startswith(
    ('hybrid_depth_core.training', 'hybrid_depth_core.datasets', 'hybrid_depth_core.synthetic')))))
'''


def test_inference_loads_no_training_dataset_or_synthetic_world_module():
    result = subprocess.run([sys.executable, '-c', INFERENCE_SCRIPT], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ''


IMPORT_ALL_SCRIPT = f'''
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
    result = subprocess.run([sys.executable, '-c', IMPORT_ALL_SCRIPT], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count, _, loaded = result.stdout.strip().partition(' ')
    assert int(count) >= 50  # really walked the package
    assert loaded == '', f'hybrid_depth_core imported ROS modules: {loaded}'
