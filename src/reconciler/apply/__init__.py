from .executor import ApplyReport, Executor, Outcome

__all__ = ["ApplyReport", "Executor", "Outcome"]
