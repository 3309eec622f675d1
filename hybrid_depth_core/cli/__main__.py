"""`python -m hybrid_depth_core.cli` == `hybrid-depth`."""
import sys

from hybrid_depth_core.cli import main

sys.exit(main())
