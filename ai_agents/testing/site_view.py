"""What a pytest run may import besides the standard library: the test framework and the project's locked packages.

The tests run on the daemon's interpreter, whose site-packages hold the daemon's own packages, next to the
project's virtualenv, which holds every package any task ever installed. Neither is what a fresh checkout of
the project has. So each run gets two views, directories of links made for that run:

* the framework: pytest and the packages it needs, from the daemon's environment;
* the project: exactly the distributions the workspace's lock file pins, from the project's virtualenv.

The reporter (pytest_boot.py) puts the views on ``sys.path`` in place of the daemon's site-packages. A
package that another task installed but this workspace's lock lacks cannot be imported: the tests fail as
they would on a fresh checkout, the Developer is told, and the merge queue never makes main depend on it.
"""

from __future__ import annotations

import functools
import os
import re
import site
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

FRAMEWORK = "pytest"


def canonical(name: str) -> str:
    """A distribution's name as the package index compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def daemon_sites() -> list[str]:
    """The daemon's own site-packages directories: what the tests must not see."""
    paths = [*site.getsitepackages(), site.getusersitepackages()]
    return sorted({os.path.realpath(p) for p in paths} | set(paths))


def _entries(dist: metadata.Distribution) -> list[Path]:
    """The top-level files and directories a distribution installed into its site-packages."""
    tops: set[str] = set()
    for file in dist.files or []:
        parts = Path(str(file)).parts
        if parts and parts[0] not in ("..", "/", "__pycache__", "bin") and not parts[0].endswith(".pth"):
            tops.add(parts[0])
    return [Path(str(dist.locate_file(top))) for top in sorted(tops)]


def _installed(paths: list[str] | None) -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=paths) if paths is not None else metadata.distributions():
        name = dist.metadata["Name"] if dist.metadata else None
        if name:
            found.setdefault(canonical(name), dist)
    return found


@functools.lru_cache(maxsize=4)
def framework_entries(root: str = FRAMEWORK) -> tuple[Path, ...]:
    """``root`` and every distribution it requires (transitively) in the daemon's environment. Found once per
    process (reading every distribution's metadata takes ~0.1 s): the daemon's own packages do not change
    under it."""
    installed = _installed(None)
    todo, seen, entries = [canonical(root)], set(), []
    while todo:
        name = todo.pop()
        if name in seen or name not in installed:
            continue
        seen.add(name)
        dist = installed[name]
        entries += _entries(dist)
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            # An optional extra, or a requirement of another platform or Python ("tomli; python_version <
            # '3.11'"): not what pytest needs here.
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            todo.append(canonical(requirement.name))
    return tuple(entries)


def locked(lock_text: str) -> dict[str, str]:
    """name -> version of every ``name==version`` line of a lock (or requirements) file."""
    pins: dict[str, str] = {}
    for line in lock_text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[canonical(name.strip())] = version.split(";", 1)[0].split()[0].strip() if version.strip() else ""
    return pins


@dataclass
class ProjectView:
    """The project's packages one run may import, and what the lock pins that the virtualenv does not match."""

    pinned: int = 0                                     # lines of the lock
    entries: list[Path] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)    # pinned, not installed
    other: list[str] = field(default_factory=list)      # pinned, installed at another version (still offered)
    hidden: list[str] = field(default_factory=list)     # installed, not pinned: not importable


def project_view(site_packages: Path | None, lock_text: str) -> ProjectView:
    view = ProjectView()
    installed = _installed([str(site_packages)]) if site_packages is not None and site_packages.is_dir() else {}
    pins = locked(lock_text)
    view.pinned = len(pins)
    for name, version in sorted(pins.items()):
        dist = installed.get(name)
        if dist is None:
            view.missing.append(f"{name}=={version}")
            continue
        if version and dist.version != version:
            view.other.append(f"{name}=={version} (installed: {dist.version})")
        view.entries += _entries(dist)
    view.hidden = sorted(set(installed) - set(pins) - {"pip", "setuptools", "wheel"})
    return view


def link_all(directory: Path, entries: Iterable[Path]) -> Path:
    """``directory`` holding one link per entry (same name); entries that do not exist are left out."""
    directory.mkdir(parents=True, exist_ok=True)
    for entry in entries:
        if entry.exists() and not (directory / entry.name).exists():
            (directory / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    return directory


PROJECT_LOCK = "requirements.lock"  # the daemon's lock of the project's Python packages (deps/python_env.py)


@dataclass(frozen=True)
class SiteViews:
    """One run's two views (directories of links) and what the project's view holds."""

    framework: Path
    project: Path
    found: ProjectView

    def describe(self) -> str:
        """The run's protection line: what its tests could import."""
        text = (f"imports: the standard library, pytest and the {self.found.pinned} package(s) {PROJECT_LOCK} "
                "pins; not the daemon's packages")
        if self.found.hidden:
            text += f", nor installed packages the lock lacks ({', '.join(self.found.hidden[:5])})"
        if self.found.missing:
            text += f"; pinned but not installed: {', '.join(self.found.missing[:5])}"
        return text

