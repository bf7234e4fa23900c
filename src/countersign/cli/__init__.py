"""The `countersign` command (console script `countersign.cli:main`): operator commands run on
the server's host against the database (cli/operator.py), administrator commands call a server
with the sign-in `login` keeps (cli/client.py; requests, policies and channels). cli/output.py
holds what they share: exit codes, errors, tables and short ids.

The modules depend one way: output <- client <- requests, policies, channels; output <- operator;
this module imports them all and mounts their commands, and none of them imports it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
import typer.core

from countersign.cli import channels, client, operator, policies, requests
from countersign.cli.client import save_credentials
from countersign.cli.output import err, fail, out

if TYPE_CHECKING:
    from typer._click import Context

__all__ = ["app", "err", "fail", "main", "out", "save_credentials"]


def _help_type(self: Any, ctx: Context) -> str | None:
    """Help shows an option's value as click does (TEXT, INTEGER, PATH) and nothing for a flag
    or an argument (its name says it), not Typer's `<str>` and `<bool>`."""
    if getattr(self, "is_flag", False) or getattr(self, "count", False):
        return None
    if self.metavar:
        return str(self.metavar)
    if isinstance(self, typer.core.TyperArgument):
        return None
    label = typer.core._TyperParameter.display_type(self, ctx).strip("<>")
    if "|" in label:  # a choice: its values, as they are typed
        return label
    plain = {"str": "TEXT", "int": "INTEGER", "float": "NUMBER", "bool": None}
    return plain.get(label.removeprefix("list[").removesuffix("]"), label.upper())


typer.core.TyperOption.display_type_rich = _help_type  # type: ignore[method-assign]
typer.core.TyperArgument.display_type_rich = _help_type  # type: ignore[method-assign]

app = typer.Typer(
    no_args_is_help=True,
    help="Countersign: device management where high-impact changes need a second administrator.",
)
# The order of registration is the order of `countersign --help`: commands, then groups.
app.command("worker")(operator.worker_command)
app.command()(operator.serve)
app.command()(operator.demo)
app.command()(client.login)
app.command()(client.whoami)
app.command("change-password")(client.change_password)
app.add_typer(operator.db_app, name="db")
app.add_typer(operator.tenant_app, name="tenant")
app.add_typer(operator.audit_app, name="audit")
app.add_typer(channels.channels_app, name="channels")
app.add_typer(requests.requests_app, name="requests")
app.add_typer(policies.policies_app, name="policies")
app.add_typer(operator.devices_app, name="devices")


def main() -> None:
    app()
