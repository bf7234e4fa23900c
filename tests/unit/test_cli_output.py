"""The CLI's output rules without a server: short ids, exit codes of server answers, prefixes."""

from __future__ import annotations

import pytest
import typer

from countersign.cli.output import http_exit_code, resolve_id, short_ids


def test_short_ids_are_unique_prefixes_of_eight_or_more() -> None:
    ids = ["abcdef01-1111", "abcdef01-2222", "12345678-0000"]
    assert short_ids(ids) == {
        "abcdef01-1111": "abcdef01-1",
        "abcdef01-2222": "abcdef01-2",
        "12345678-0000": "12345678-0",
    }
    assert short_ids(["0123456789abcdef"]) == {"0123456789abcdef": "01234567"}
    assert short_ids([]) == {}


@pytest.mark.parametrize(
    ("status", "error", "code"),
    [
        (400, {"message": "Property 'x' is required."}, 2),
        (
            400,
            {
                "message": "Requesting user does not have proper permissions to approve",
                "innerError": {"reason": "notInApproverGroup"},
            },
            3,
        ),
        (400, {"message": "x", "innerError": {"reason": "approverIsRequester"}}, 3),
        (401, None, 3),
        (403, {"message": "Forbidden"}, 3),
        (404, None, 4),
        (409, None, 5),
        (412, None, 5),
        (413, None, 2),
        (500, None, 6),
        (502, None, 6),
    ],
)
def test_exit_codes_of_server_answers(
    status: int, error: dict[str, object] | None, code: int
) -> None:
    assert http_exit_code(status, error) == code


def test_a_prefix_resolves_to_one_id_or_exits() -> None:
    ids = ["4f2a1c00-0000", "4f2a1c99-0000"]
    assert resolve_id("4F2A1C9", "request", lambda start: ids) == "4f2a1c99-0000"
    whole = "4f2a1c00-0000-0000-0000-000000000001"
    assert resolve_id(whole, "request", lambda start: pytest.fail("no lookup")) == whole
    with pytest.raises(typer.Exit) as ambiguous:
        resolve_id("4f2a1c", "request", lambda start: ids)
    assert ambiguous.value.exit_code == 2
    with pytest.raises(typer.Exit) as missing:
        resolve_id("ffff", "request", lambda start: ids)
    assert missing.value.exit_code == 4
