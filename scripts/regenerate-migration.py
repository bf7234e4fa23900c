"""Regenerate the initial migration from the models (no release has shipped yet, so the schema
is one revision). Run `make migration` after changing store/tables.py."""

from __future__ import annotations

import tempfile
from pathlib import Path

from alembic import command

from countersign.store.migrate import MIGRATIONS, alembic_config

for old in (MIGRATIONS / "versions").glob("0001_*.py"):
    old.unlink()
with tempfile.TemporaryDirectory() as scratch:
    config = alembic_config(f"sqlite:///{Path(scratch) / 'empty.db'}")
    command.revision(config, message="initial schema", autogenerate=True, rev_id="0001")
generated = next((MIGRATIONS / "versions").glob("0001_*.py"))
text = generated.read_text().replace("astext_type=Text()", "astext_type=sa.Text()")
text = "\n".join(line for line in text.splitlines() if not line.startswith("Create Date:")) + "\n"
generated.write_text(text)
print(f"wrote {generated}")
