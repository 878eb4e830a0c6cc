"""Read config.yaml: environment interpolation, validation, errors with key path and line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ai_agents.config.models import Settings
from ai_agents.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def interpolate(value: str, env: Mapping[str, str]) -> str | None:
    """Fill ``${VAR}`` and ``${VAR:-default}``.

    A scalar that is exactly one unset ``${VAR}`` becomes ``None`` (so an unset
    API key means "no key", not an empty key); inside a longer string it is "".
    """
    whole = _VAR.fullmatch(value)
    if whole and whole.group(2) is None and not env.get(whole.group(1)):
        return None

    def fill(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        got = env.get(name)
        if got:
            return got
        return default if default is not None else ""

    return _VAR.sub(fill, value)


def _interpolate_tree(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_interpolate_tree(v, env) for v in node]
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env) for k, v in node.items()}
    return node


def _key_lines(node: yaml.Node | None, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], int]:
    """Map every key path to its 1-based line in the file."""
    lines: dict[tuple[str, ...], int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            path = (*prefix, str(key_node.value))
            lines[path] = key_node.start_mark.line + 1
            lines.update(_key_lines(value_node, path))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, str(i))
            lines[path] = item.start_mark.line + 1
            lines.update(_key_lines(item, path))
    return lines


def _line_for(loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> int | None:
    # The deepest prefix of the error's location that exists in the file.
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _describe(error: Mapping[str, Any]) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key"
    msg = msg.removeprefix("Value error, ")
    msg = msg[0].lower() + msg[1:] if msg else msg
    return msg.replace("input should be", "must be", 1)


def format_validation_error(exc: ValidationError, lines: dict[tuple[str, ...], int], filename: str) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(str(p) for p in err["loc"])
        path = ".".join(loc) or "(top level)"
        line = _line_for(loc, lines)
        where = f" ({filename} line {line})" if line else f" ({filename})"
        problems.append(f"{path}: {_describe(err)}{where}")
    return problems


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make relative paths relative to the directory holding config.yaml."""

    def fix(p: Path | None) -> Path | None:
        if p is None:
            return None
        p = p.expanduser()
        return p if p.is_absolute() else (base / p).resolve()

    fs = settings.file_system
    fs.workspace_path = fix(fs.workspace_path)  # type: ignore[assignment]
    fs.git_repo_path = fix(fs.git_repo_path)
    fs.backup_dir = fix(fs.backup_dir)  # type: ignore[assignment]
    settings.memory.database_path = fix(settings.memory.database_path)  # type: ignore[assignment]
    settings.logging.file = fix(settings.logging.file)
    for provider in (settings.llm, *settings.llm.fallback):
        provider.script_path = fix(provider.script_path)
    settings.deployment.direct.key_path = fix(settings.deployment.direct.key_path)
    settings.deployment.direct.known_hosts = fix(settings.deployment.direct.known_hosts)
    return settings


def parse_config_text(text: str, *, filename: str = "config.yaml", base: Path | None = None,
                      env: Mapping[str, str] | None = None) -> Settings:
    """Validate config text; raise :class:`ConfigError` listing every problem."""
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" ({filename} line {mark.line + 1})" if mark else f" ({filename})"
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{filename} is not valid YAML: {problem}{where}",
                          [f"not valid YAML: {problem}{where}"]) from e
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{filename} must be a mapping of sections, not {type(data).__name__}")
    data = _interpolate_tree(data, os.environ if env is None else env)
    try:
        settings = Settings.model_validate(data)
    except ValidationError as e:
        problems = format_validation_error(e, _key_lines(root), filename)
        raise ConfigError(problems[0] if len(problems) == 1 else f"{len(problems)} problems in {filename}",
                          problems) from e
    return resolve_paths(settings, base or Path.cwd())


def load_config(path: Path | str, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate a config file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ConfigError(f"config file {path} does not exist") from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"config file {path} cannot be read: {e}") from e
    return parse_config_text(text, filename=path.name, base=path.resolve().parent, env=env)
