"""testing: run the workspace's tests as untrusted code and report the outcome."""

from ai_agents.testing.parsers import parse_test_results
from ai_agents.testing.result import Outcome, TestFailure, TestResult
from ai_agents.testing.runner import TestRunner

__all__ = ["Outcome", "TestFailure", "TestResult", "TestRunner", "parse_test_results"]
