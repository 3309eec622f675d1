"""`python -m hybrid_depth_ros.cli` == `hybrid-depth`."""
import sys

from hybrid_depth_ros.cli import main

sys.exit(main())
