"""The protected objects behind the approval engine: each type's writes become requests when a
policy covers them, platforms decide coverage, and a bulk device action locks every device."""

from __future__ import annotations

from typing import Any

import pytest

from countersign.services.handlers.resources import KINDS
from tests.factories import TenantFactory, unique
from tests.integration.test_resources import CASES, Case, assign_body
from tests.maa import seed

DEVICES = "/beta/deviceManagement/managedDevices"


@pytest.mark.parametrize("case", CASES, ids=[c.collection for c in CASES])
def test_each_types_changes_wait_for_approval(tenants: TenantFactory, case: Case) -> None:
    maa = seed(tenants)
    tenant = maa.tenant
    item = tenant.ok("POST", case.path, json=case.new())
    url = f"{case.path}/{item['id']}"
    kind = KINDS[case.collection]
    maa.activate_policy(kind.policy_type, case.platform)

    unjustified = tenant.call("PATCH", url, json={"description": "wanted"})
    assert unjustified.status_code == 400
    request_id = maa.submit("PATCH", url, json={"description": "wanted"})
    request = maa.request(request_id)
    assert request["payloadType"] == kind.entity_type
    assert (request["payloadId"], request["payloadOperation"]) == (item["id"], "Update")
    assert tenant.ok("GET", url)["description"] != "wanted"
    assert maa.approve(request_id).status_code == 200
    assert maa.complete(request_id).status_code == 204
    assert tenant.ok("GET", url)["description"] == "wanted"

    if case.assignable:
        group_id = tenant.group(unique("targets"))
        request_id = maa.submit("POST", f"{url}/assign", json=assign_body(case, group_id))
        assert maa.approve(request_id).status_code == 200
        assert maa.complete(request_id).status_code == 204
        assert tenant.ok("GET", f"{url}/assignments")["value"][0]["target"]["groupId"] == group_id
    request_id = maa.submit("DELETE", url)
    assert maa.approve(request_id).status_code == 200
    assert maa.complete(request_id).status_code == 204
    assert tenant.call("GET", url).status_code == 404


def test_the_platform_decides_whether_an_app_is_covered(tenants: TenantFactory) -> None:
    maa = seed(tenants)
    maa.activate_policy("app", "windows10AndLater,windows81AndLater,windows10X")
    apps = CASES[0]
    ios = {"@odata.type": "#microsoft.graph.iosStoreApp", "appStoreUrl": "https://apps.apple.com/x"}
    created = maa.tenant.call("POST", apps.path, json={"displayName": unique("ios"), **ios})
    assert created.status_code == 201, created.text
    request_id = maa.submit("POST", apps.path, json=apps.new())
    assert maa.request(request_id)["status"] == "needsApproval"


def test_a_bulk_wipe_locks_every_device_it_names(tenants: TenantFactory) -> None:
    maa = seed(tenants)
    tenant = maa.tenant
    body: dict[str, Any] = {"operatingSystem": "Windows"}
    first, second, other = (
        tenant.ok("POST", DEVICES, json={"deviceName": unique("PC"), **body}) for _ in range(3)
    )
    maa.activate_policy("deviceWipe")
    request_id = maa.submit(
        "POST",
        f"{DEVICES}/executeAction",
        json={"actionName": "wipe", "deviceIds": [first["id"], second["id"]]},
    )
    locked = tenant.call(
        "POST",
        f"{DEVICES}/{second['id']}/wipe",
        headers={"x-msft-approval-justification": "VGhlIHNhbWUgZGV2aWNl"},
    )
    assert locked.status_code == 409, locked.text
    assert "active Approval Request" in locked.json()["error"]["message"]
    status = maa.request_status(first["id"], "managedDevice")
    assert status["entityLocked"] is True and status["requestId"] == request_id
    maa.submit("POST", f"{DEVICES}/{other['id']}/wipe")  # not named: not locked

    assert maa.approve(request_id).status_code == 200
    completed = maa.complete(request_id)
    assert completed.status_code == 200, completed.text
    assert sorted(completed.json()["successfulDeviceIds"]) == sorted([first["id"], second["id"]])
    assert tenant.ok("GET", f"{DEVICES}/{first['id']}")["managementState"] == "wipePending"
