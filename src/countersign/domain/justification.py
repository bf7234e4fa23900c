"""Justifications: the requester's (sent base64 in `x-msft-approval-justification`) and the
approver's note -- 1 to `MAX_JUSTIFICATION` characters once trimmed, required where the rule
says so."""

from __future__ import annotations

import base64
import binascii

from countersign.domain.errors import ValidationFailed

MAX_JUSTIFICATION = 1024


def decode_justification(header: str | None) -> str:
    """x-msft-approval-justification carries the justification as base64."""
    if header is None:
        raise ValidationFailed(
            "Header 'x-msft-approval-justification' is required to request approval",
            reason="justificationMissing",
        )
    try:
        text = base64.b64decode(header.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise ValidationFailed(
            "Header 'x-msft-approval-justification' must be the justification "
            "encoded as base64 (UTF-8).",
            reason="justificationNotBase64",
        ) from None
    return check_justification(text)


def check_justification(
    text: str | None, *, required: bool = True, field: str = "justification"
) -> str:
    text = (text or "").strip()
    if required and not text:
        raise ValidationFailed(
            f"A {field} is required (1 to {MAX_JUSTIFICATION} characters).",
            reason="justificationMissing",
        )
    if len(text) > MAX_JUSTIFICATION:
        raise ValidationFailed(
            f"The {field} has {len(text)} characters; at most {MAX_JUSTIFICATION} are allowed.",
            reason="justificationTooLong",
        )
    return text
