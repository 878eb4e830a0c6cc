#!/usr/bin/env python3
"""Entry point: ``python main.py run --config config.yaml`` (same as the ``ai-agents`` command)."""

import sys

from ai_agents.cli import main

if __name__ == "__main__":
    sys.exit(main())
