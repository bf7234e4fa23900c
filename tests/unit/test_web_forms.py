"""The admin center's field tables and the form <-> Graph body conversions (web/forms.py)."""

from __future__ import annotations

import base64

import pytest

from countersign.domain.errors import ValidationFailed
from countersign.web.forms import (
    FORMS,
    body_from_form,
    changed_only,
    form_values,
    review_rows,
    values_from_form,
)
from countersign.web.sections import SECTIONS


def test_every_creatable_section_has_a_form_and_required_names() -> None:
    for slug, section in SECTIONS.items():
        if not section.creatable:
            continue
        form = FORMS[slug]
        names = [f.name for f in form.fields if f.required]
        assert form.name_field in names, slug


def test_a_win32_app_form_builds_graphs_body() -> None:
    fields = FORMS["apps"].fields_for("win32LobApp", create=True)
    assert {"fileName", "installCommandLine", "uninstallCommandLine"} <= {f.name for f in fields}
    assert "appStoreUrl" not in {f.name for f in fields}
    values = values_from_form(
        fields,
        {
            "f_displayName": " VPN ",
            "f_publisher": "Contoso",
            "f_fileName": "vpn.intunewin",
            "f_installCommandLine": "setup.exe /quiet",
            "f_uninstallCommandLine": "setup.exe /x",
        },
        {"f_roleScopeTagIds": ["0"]},
        {},
    )
    body = body_from_form(fields, values, "win32LobApp", '{"owner": "IT"}')
    assert body == {
        "@odata.type": "#microsoft.graph.win32LobApp",
        "displayName": "VPN",
        "publisher": "Contoso",
        "fileName": "vpn.intunewin",
        "installCommandLine": "setup.exe /quiet",
        "uninstallCommandLine": "setup.exe /x",
        "isFeatured": False,
        "roleScopeTagIds": ["0"],
        "owner": "IT",
    }


def test_a_missing_required_field_names_its_property() -> None:
    fields = FORMS["apps"].fields_for("win32LobApp", create=True)
    values = values_from_form(fields, {"f_displayName": "VPN"}, {}, {})
    with pytest.raises(ValidationFailed) as raised:
        body_from_form(fields, values, "win32LobApp", "")
    assert raised.value.target == "publisher"


def test_an_uploaded_script_wins_over_the_box_and_is_sent_as_base64() -> None:
    fields = FORMS["scripts"].fields_for(None, create=True)
    values = values_from_form(
        fields,
        {"f_displayName": "s", "f_fileName": "s.ps1", "f_scriptContent": "ignored"},
        {"f_roleScopeTagIds": ["0"]},
        {"f_scriptContent_file": b"Write-Host 1\r\n"},
    )
    body = body_from_form(fields, values, None, "")
    assert base64.b64decode(body["scriptContent"]) == b"Write-Host 1\r\n"


def test_an_edit_keeps_only_the_changed_properties() -> None:
    item = {
        "displayName": "s",
        "description": None,
        "fileName": "s.ps1",
        "scriptContent": base64.b64encode(b"a\nb\n").decode(),
        "runAsAccount": "system",
        "enforceSignatureCheck": False,
        "runAs32Bit": False,
        "roleScopeTagIds": ["0"],
    }
    fields = FORMS["scripts"].fields_for(None, create=False)
    values = form_values(fields, item)
    assert values["f_scriptContent"] == "a\nb\n"
    assert changed_only(fields, values, item, "") == {}
    values["f_fileName"] = "t.ps1"
    values["f_enforceSignatureCheck"] = True
    assert changed_only(fields, values, item, "") == {
        "fileName": "t.ps1",
        "enforceSignatureCheck": True,
    }


def test_a_password_is_never_a_form_value_and_reads_as_set() -> None:
    fields = FORMS["users"].fields_for(None, create=False)
    item = {"displayName": "A", "userPrincipalName": "a@x.example", "accountEnabled": True}
    values = form_values(fields, {**item, "passwordProfile": {"password": "leak"}})
    assert values["f_passwordProfile__password"] == ""
    assert changed_only(fields, values, item, "") == {}  # empty: keep the current password
    values["f_passwordProfile__password"] = "Secret-123"
    body = changed_only(fields, values, item, "")
    assert body == {"passwordProfile": {"password": "Secret-123"}}
    rows = review_rows(fields, body)
    assert rows == [("password", "set")]
    assert "Secret-123" not in repr(rows)


def test_pickers_read_ids_as_names_on_review() -> None:
    fields = FORMS["role-assignments"].fields_for(None, create=True)
    body = {
        "displayName": "a",
        "roleDefinitionId": "r1",
        "members": ["g1"],
        "roleScopeTagIds": ["0"],
    }
    names = {
        "roles": {"r1": "Help Desk"},
        "groups": {"g1": "Helpdesk"},
        "scopeTags": {"0": "Default"},
    }
    rows = dict(review_rows(fields, body, names))
    assert (rows["Role"], rows["Admin groups"], rows["Scope (tags)"]) == (
        "Help Desk",
        "Helpdesk",
        "Default",
    )
