"""The `countersign` command (console script `countersign.cli:main`); see cli/operator.py."""

from countersign.cli.operator import app, err, fail, main, out, save_credentials

__all__ = ["app", "err", "fail", "main", "out", "save_credentials"]
