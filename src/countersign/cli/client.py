"""The administrator commands' side of the API: the stored sign-in (`login`, mode 0600 in the
config directory), calls to the server with its token (`api_call`), the server's refusals as
exit codes, and `whoami` and `change-password`. The requests, policies and channels commands
call the server through here."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, NoReturn

import httpx
import typer

from countersign.cli.output import JSON, REFUSED, UNREACHABLE, fail, http_exit_code, out


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "countersign"


def _credentials_path() -> Path:
    return config_dir() / "credentials.json"


def load_credentials() -> dict[str, Any]:
    path = _credentials_path()
    if not path.exists():
        fail("not signed in: run 'countersign login --url URL --username UPN' first", REFUSED)
    try:
        data: dict[str, Any] = json.loads(path.read_text())
        if not isinstance(data.get("url"), str) or not data.get("access_token"):
            raise ValueError("incomplete")
    except (ValueError, KeyError, TypeError):
        fail(f"{path} is not a sign-in this CLI wrote: run 'countersign login' again", REFUSED)
    return data


def save_credentials(data: dict[str, Any]) -> Path:
    path = _credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return path


def server_error(response: httpx.Response) -> NoReturn:
    """Exit with the server's refusal: its message and reason on one line, or (--json) its
    Graph error object as is; the exit code from the README's table."""
    error: dict[str, Any] | None = None
    try:
        body = response.json()
        error = body["error"] if isinstance(body.get("error"), dict) else None
    except (ValueError, AttributeError):
        pass
    if error is not None:
        reason = (error.get("innerError") or {}).get("reason")
        message = str(error.get("message", "")) + (f" (reason: {reason})" if reason else "")
    else:
        message = response.text or response.reason_phrase
    fail(
        f"{response.status_code} {message}",
        http_exit_code(response.status_code, error),
        error or {"code": response.reason_phrase or "error", "message": message},
    )


def api_call(
    method: str, path: str, *, allow: tuple[int, ...] = (), **kwargs: Any
) -> httpx.Response:
    """Call the server with the stored token. An error answer (unless its status is in
    `allow`) exits with the server's reason; an unreachable server exits 6."""
    creds = load_credentials()
    url = path if path.startswith(("http://", "https://")) else creds["url"].rstrip("/") + path
    try:
        response = httpx.request(
            method,
            url,
            timeout=30,
            headers={
                "Authorization": f"Bearer {creds['access_token']}",
                **kwargs.pop("headers", {}),
            },
            **kwargs,
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {creds['url']}: {exc}", UNREACHABLE)
    if response.status_code >= 400 and response.status_code not in allow:
        server_error(response)
    return response


def login(
    url: str = typer.Option(..., help="The server, e.g. http://127.0.0.1:8000"),
    username: str = typer.Option(..., help="Your user principal name."),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, help="Your password (asked for when omitted)."
    ),
    json_output: bool = JSON,
) -> None:
    """Sign in and keep the token in your config directory (mode 0600)."""
    try:
        response = httpx.post(
            url.rstrip("/") + "/oauth2/token",
            timeout=30,
            data={"grant_type": "password", "username": username, "password": password},
        )
    except httpx.HTTPError as exc:
        fail(f"cannot reach {url}: {exc}", UNREACHABLE)
    if response.status_code != 200:
        try:
            description = response.json().get("error_description", response.text)
        except ValueError:
            description = response.text
        code = REFUSED if response.status_code in (400, 401, 403) else UNREACHABLE
        fail(f"sign-in refused: {description}", code)
    path = save_credentials(
        {"url": url, "username": username, "access_token": response.json()["access_token"]}
    )
    if json_output:
        out.print_json(data={"userPrincipalName": username, "url": url, "credentials": str(path)})
    else:
        out.print(f"signed in as {username}; token kept in {path}", highlight=False)


def whoami(json_output: bool = JSON) -> None:
    """Show the signed-in principal."""
    me = api_call("GET", "/beta/me").json()
    if json_output:
        out.print_json(data=me)
    else:
        out.print(
            f"{me.get('displayName')} <{me.get('userPrincipalName') or me.get('appId')}> "
            f"id {me['id']} tenant {me.get('tenantId')}",
            highlight=False,
            markup=False,
        )


def change_password(
    current: str = typer.Option(
        ..., prompt="Current password", hide_input=True, help="Your current password."
    ),
    new: str = typer.Option(
        ...,
        prompt="New password",
        hide_input=True,
        confirmation_prompt=True,
        help="The new password (8 to 256 characters).",
    ),
    json_output: bool = JSON,
) -> None:
    """Change your own password (no approval needed: you prove the current one), then sign in
    again with it: the change ends every earlier token of yours."""
    api_call(
        "POST", "/beta/me/changePassword", json={"currentPassword": current, "newPassword": new}
    )
    creds = load_credentials()
    response = httpx.post(
        creds["url"].rstrip("/") + "/oauth2/token",
        timeout=30,
        data={"grant_type": "password", "username": creds["username"], "password": new},
    )
    if response.status_code != 200:
        fail("password changed; sign in again with `countersign login`", 3)
    save_credentials({**creds, "access_token": response.json()["access_token"]})
    if json_output:
        out.print_json(data={"userPrincipalName": creds["username"], "passwordChanged": True})
    else:
        out.print(f"password changed for {creds['username']}; signed in again with it")


def call_json(method: str, path: str, **kwargs: Any) -> Any:
    """`api_call`, answering the response's JSON (None for an empty body)."""
    response = api_call(method, path, **kwargs)
    return response.json() if response.content else None


def all_items(path: str, params: dict[str, str] | None = None) -> list[dict[str, Any]] | None:
    """Every item of a collection, following @odata.nextLink; None when the caller may not
    list it (403)."""
    items: list[dict[str, Any]] = []
    url: str | None = path
    query: dict[str, str] | None = {"$top": "999", **(params or {})}
    while url:
        response = api_call("GET", url, params=query, allow=(403,))
        if response.status_code == 403:
            return None
        page = response.json()
        items.extend(page.get("value") or [])
        url, query = page.get("@odata.nextLink"), None
    return items
