"""Where the approval engine finds the metrics hook (the metrics live in countersign.metrics)."""

from countersign.metrics import observe_time_to_approval

__all__ = ["observe_time_to_approval"]
