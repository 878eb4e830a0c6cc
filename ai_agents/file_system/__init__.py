"""file_system: workspace-confined, atomic, backed-up file operations for the agents."""

from ai_agents.file_system.code_parse import ClassInfo, FunctionInfo, ImportInfo, ModuleStructure
from ai_agents.file_system.doctor import check_workspace
from ai_agents.file_system.manager import FileSystemManager

__all__ = [
    "ClassInfo",
    "FileSystemManager",
    "FunctionInfo",
    "ImportInfo",
    "ModuleStructure",
    "check_workspace",
]
