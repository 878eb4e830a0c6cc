"""config.yaml: models, loading with precise errors, and live reload."""

from ai_agents.config.live import ConfigWatcher, LiveConfig
from ai_agents.config.loader import load_config, parse_config_text
from ai_agents.config.models import LIVE_KEYS, Settings

__all__ = ["LIVE_KEYS", "ConfigWatcher", "LiveConfig", "Settings", "load_config", "parse_config_text"]
