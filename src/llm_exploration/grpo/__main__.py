"""``python -m llm_exploration.grpo fit|evaluate --config <yaml>``."""

import sys

from llm_exploration.grpo.cli import main

sys.exit(main())
