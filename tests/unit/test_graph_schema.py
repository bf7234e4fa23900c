"""countersign.graph.schema: Graph's types as the SDK's metadata gives them."""

from __future__ import annotations

import pytest

from countersign.domain.errors import ValidationFailed
from countersign.graph import schema


def test_properties_include_inherited_ones_with_types_and_writability() -> None:
    props = schema.properties("win32LobApp")
    assert props["setupFilePath"].type == "string" and props["setupFilePath"].writable
    assert props["displayName"].writable  # from mobileApp
    assert props["size"].read_only and not props["size"].writable  # from mobileLobApp
    assert props["assignments"].navigation and not props["assignments"].writable
    assert props["returnCodes"].collection and props["returnCodes"].complex
    architectures = props["applicableArchitectures"]
    assert architectures.enum and architectures.enum_members
    assert "x64" in architectures.enum_members and schema.is_flags(architectures.type)


def test_derived_types_come_from_the_discriminators() -> None:
    apps = schema.derived_types("mobileApp")
    assert {"win32LobApp", "iosStoreApp", "webApp", "macOSDmgApp"} <= set(apps)
    assert schema.is_a("win32LobApp", "mobileLobApp") and not schema.is_a("webApp", "mobileLobApp")
    assert "windows10CompliancePolicy" in schema.derived_types("deviceCompliancePolicy")


def test_members_after_unknown_future_value_need_asking_for() -> None:
    assert schema.members("managementState")[-3:] == ("unknownFutureValue", "wiped", "retired")
    assert schema.evolvable_member("managementState", "wiped", False) == "unknownFutureValue"
    assert schema.evolvable_member("managementState", "wiped", True) == "wiped"
    assert schema.evolvable_member("managementState", "managed", False) == "managed"
    kinds = "operationApprovalPolicyType"
    assert schema.evolvable_member(kinds, "deviceDeprovision", False) == "unknownFutureValue"
    assert schema.evolvable_member(kinds, "app", False) == "app"


def test_check_body_types_values_drops_read_only_and_names_unknown_ones() -> None:
    body = {
        "displayVersion": "1.0",
        "size": 5,
        "returnCodes": [{"returnCode": 0, "type": "success"}],
        "detectionRules": [
            {"@odata.type": "#microsoft.graph.win32LobAppProductCodeDetection", "productCode": "x"}
        ],
    }
    checked = schema.check_body("win32LobApp", body)
    assert "size" not in checked and checked["returnCodes"] == body["returnCodes"]
    for bad, target in (
        ({"colour": 1}, "colour"),
        ({"displayVersion": 1}, "displayVersion"),
        ({"returnCodes": [{"type": "sometimes"}]}, "returnCodes[0].type"),
        ({"detectionRules": [{"@odata.type": "#microsoft.graph.user"}]}, "detectionRules[0]"),
        ({"assignments": []}, "assignments"),
    ):
        with pytest.raises(ValidationFailed) as refused:
            schema.check_body("win32LobApp", bad)
        assert target in refused.value.message


def test_serve_gives_every_structural_property() -> None:
    served = schema.serve("managedDevice", {"id": "1", "deviceName": "PC", "extra": True})
    assert served["deviceName"] == "PC" and served["imei"] is None and served["extra"] is True
    assert "detectedApps" not in served  # a navigation property


def test_split_body_leaves_own_names_to_the_caller_and_checks_the_rest() -> None:
    own, kept = schema.split_body(
        "user",
        {
            "userPrincipalName": "a@b.example",
            "passwordProfile": {"password": "x"},
            "city": "Utrecht",
            "createdDateTime": "2001-01-01T00:00:00Z",  # read-only: dropped
        },
        frozenset({"userPrincipalName", "passwordProfile", "createdDateTime"}),
    )
    assert own == {"userPrincipalName": "a@b.example", "passwordProfile": {"password": "x"}}
    assert kept == {"city": "Utrecht"}
    with pytest.raises(ValidationFailed, match="'colour' does not exist on user"):
        schema.split_body("user", {"colour": "red"}, frozenset())


def test_patched_drops_what_a_patch_sets_to_null() -> None:
    assert schema.patched({"city": "A", "jobTitle": "B"}, {"city": None, "department": "C"}) == {
        "jobTitle": "B",
        "department": "C",
    }


def test_synced_only_read_only_properties_stay_writable() -> None:
    """The SDK says a user's mobilePhone is read-only only for users synced from on-premises."""
    user = schema.properties("user")
    assert user["mobilePhone"].writable and user["businessPhones"].writable
    assert user["createdDateTime"].read_only and user["proxyAddresses"].read_only
