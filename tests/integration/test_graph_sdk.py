"""Microsoft's own Graph SDK (`msgraph-beta-sdk`, a development dependency) against a live
Countersign: every collection through the SDK's request builders and model classes, and what
the SDK deserialises compared with what was sent."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import datetime as dt
import enum
import importlib
import re
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

pytest.importorskip("msgraph_beta")

from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import AuthenticationProvider
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.request_information import RequestInformation
from msgraph_beta import GraphRequestAdapter, GraphServiceClient

from tests.factories import Principal, TenantFactory, unique
from tests.maa import seed

T = TypeVar("T")


class _Models:
    """`m.Win32LobApp`: the SDK's model classes by name (its package exports none itself)."""

    def __getattr__(self, name: str) -> Any:
        module = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
        return getattr(importlib.import_module(f"msgraph_beta.generated.models.{module}"), name)


m: Any = _Models()
# The SDK's own code (not Countersign's) uses an API its abstractions library deprecates.
pytestmark = [
    pytest.mark.filterwarnings("ignore:GetQueryParameters is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:This class is deprecated:DeprecationWarning"),
]


class StaticToken(AuthenticationProvider):
    """Countersign's bearer token on every request (the SDK's auth provider interface)."""

    def __init__(self, principal: Principal):
        self.authorization = principal.headers["Authorization"]

    async def authenticate_request(
        self,
        request: RequestInformation,
        additional_authentication_context: dict[str, Any] | None = None,
    ) -> None:
        request.headers.try_add("Authorization", self.authorization)


def run(live_server: str, who: Principal, work: Callable[[GraphServiceClient], Awaitable[T]]) -> T:
    async def main() -> T:
        adapter = GraphRequestAdapter(StaticToken(who))
        adapter.base_url = f"{live_server}/beta"
        try:
            return await work(GraphServiceClient(request_adapter=adapter))
        finally:
            # The SDK's transport wrapper does not close the connection pool it wraps.
            client = adapter._http_client
            inner = getattr(client._transport, "transport", None)
            await client.aclose()
            if inner is not None:
                await inner.aclose()

    # Its own thread and event loop: other tests (Playwright's sync API) may leave one running
    # in this thread.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def b64(text: str) -> bytes:
    return text.encode()


def config(**headers: str) -> RequestConfiguration[Any]:
    configuration: RequestConfiguration[Any] = RequestConfiguration()
    for name, value in headers.items():
        configuration.headers.add(name.replace("_", "-"), value)
    return configuration


def win32_app() -> m.Win32LobApp:
    return m.Win32LobApp(
        display_name=unique("Contoso Agent"),
        description="The agent",
        publisher="Contoso",
        file_name="agent.intunewin",
        setup_file_path="agent.exe",
        install_command_line="agent.exe /quiet",
        uninstall_command_line="agent.exe /uninstall",
        display_version="4.2.0",
        # A flags enum: the SDK writes one member and reads a list of members back.
        applicable_architectures=m.WindowsArchitecture.X64,
        minimum_supported_operating_system=m.WindowsMinimumOperatingSystem(v10_1903=True),
        install_experience=m.Win32LobAppInstallExperience(
            run_as_account=m.RunAsAccountType.System,
            device_restart_behavior=m.Win32LobAppRestartBehavior.Suppress,
            max_run_time_in_minutes=60,
        ),
        return_codes=[
            m.Win32LobAppReturnCode(return_code=0, type=m.Win32LobAppReturnCodeType.Success),
            m.Win32LobAppReturnCode(return_code=3010, type=m.Win32LobAppReturnCodeType.SoftReboot),
        ],
        detection_rules=[
            m.Win32LobAppFileSystemDetection(
                path="C:\\Program Files\\Contoso",
                file_or_folder_name="agent.exe",
                check32_bit_on64_system=False,
                detection_type=m.Win32LobAppFileSystemDetectionType.Exists,
            )
        ],
        rules=[
            m.Win32LobAppRegistryRule(
                rule_type=m.Win32LobAppRuleType.Detection,
                key_path="HKEY_LOCAL_MACHINE\\Software\\Contoso",
                value_name="Version",
                check32_bit_on64_system=False,
                operation_type=m.Win32LobAppRegistryRuleOperationType.Exists,
            )
        ],
        msi_information=m.Win32LobAppMsiInformation(
            product_code="{85F4CBCB-9BBC-4B50-A7D8-E1106771498D}",
            package_type=m.Win32LobAppMsiPackageType.PerMachine,
        ),
        large_icon=m.MimeContent(type="image/png", value=b"png"),
        role_scope_tag_ids=["0"],
    )


SENT_WIN32 = (
    "display_name",
    "publisher",
    "setup_file_path",
    "install_command_line",
    "display_version",
    "minimum_supported_operating_system",
    "install_experience",
    "return_codes",
    "detection_rules",
    "rules",
    "msi_information",
    "large_icon",
)


def same(sent: Any, got: Any, names: tuple[str, ...]) -> None:
    for name in names:
        expected = getattr(sent, name)
        if isinstance(expected, enum.Enum) and isinstance(getattr(got, name), list):
            expected = [expected]  # a flags enum: written as one member, read as a list
        assert _plain(getattr(got, name)) == _plain(expected), name


def _plain(value: Any) -> Any:
    """A model's values without the SDK's bookkeeping (backing store, additional data)."""
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if hasattr(value, "get_field_deserializers"):
        return {
            k: _plain(v)
            for k, v in vars(value).items()
            if k not in ("backing_store", "additional_data") and v is not None
        }
    return value


# -- apps --------------------------------------------------------------------------------------


def test_mobile_apps_through_the_sdk(tenants: TenantFactory, live_server: str) -> None:
    tenant = tenants()
    group = tenant.group("Pilot")

    async def work(graph: GraphServiceClient) -> None:
        apps = graph.device_app_management.mobile_apps
        sent = win32_app()
        made = await apps.post(sent)
        assert isinstance(made, m.Win32LobApp) and made.id
        same(sent, made, SENT_WIN32)
        assert made.applicable_architectures == [m.WindowsArchitecture.X64]
        got = await apps.by_mobile_app_id(made.id).get()
        assert isinstance(got, m.Win32LobApp)
        same(sent, got, SENT_WIN32)
        for _ in range(2):
            await apps.post(win32_app())
        query = apps.MobileAppsRequestBuilderGetQueryParameters(
            filter="isof('microsoft.graph.win32LobApp')", select=["displayName"], top=2
        )
        page = await apps.get(RequestConfiguration(query_parameters=query))
        assert page is not None and page.value is not None and len(page.value) == 2
        assert page.value[0].publisher is None and page.odata_next_link
        rest = await apps.with_url(page.odata_next_link).get()
        assert rest is not None and rest.value is not None and len(rest.value) == 1
        await apps.by_mobile_app_id(made.id).patch(m.Win32LobApp(display_version="4.3.0"))
        got = await apps.by_mobile_app_id(made.id).get()
        assert isinstance(got, m.Win32LobApp) and got.display_version == "4.3.0"

        from msgraph_beta.generated.device_app_management.mobile_apps.item.assign.assign_post_request_body import (  # noqa: E501
            AssignPostRequestBody,
        )

        assignment = m.MobileAppAssignment(
            intent=m.InstallIntent.Required,
            target=m.GroupAssignmentTarget(group_id=group),
            settings=m.Win32LobAppAssignmentSettings(
                notifications=m.Win32LobAppNotification.ShowAll,
                delivery_optimization_priority=m.Win32LobAppDeliveryOptimizationPriority.Foreground,
            ),
        )
        await apps.by_mobile_app_id(made.id).assign.post(
            AssignPostRequestBody(mobile_app_assignments=[assignment])
        )
        listed = await apps.by_mobile_app_id(made.id).assignments.get()
        assert listed is not None and listed.value is not None
        [got_assignment] = listed.value
        assert got_assignment.intent == m.InstallIntent.Required
        assert isinstance(got_assignment.target, m.GroupAssignmentTarget)
        assert got_assignment.target.group_id == group
        same(assignment, got_assignment, ("settings",))
        await apps.by_mobile_app_id(made.id).delete()
        with pytest.raises(APIError) as gone:
            await apps.by_mobile_app_id(made.id).get()
        assert gone.value.response_status_code == 404

    run(live_server, tenant.admin, work)


def request_body(module: str) -> Any:
    """An action's request body class: 'device_management.x.item.wipe.wipe_post_request_body'."""
    name = "".join(part.capitalize() for part in module.rsplit(".", 1)[-1].split("_"))
    return getattr(importlib.import_module(f"msgraph_beta.generated.{module}"), name)


def content(text: str) -> bytes:
    return text.encode()


# -- scripts, compliance and configuration policies, categories -------------------------------


def test_scripts_policies_and_categories_through_the_sdk(
    tenants: TenantFactory, live_server: str
) -> None:
    tenant = tenants()
    group = tenant.group("Pilot")

    async def work(graph: GraphServiceClient) -> None:
        dm = graph.device_management
        script = m.DeviceManagementScript(
            display_name=unique("ps"),
            description="PowerShell",
            script_content=content("Write-Host 'hello'"),
            file_name="hello.ps1",
            run_as_account=m.RunAsAccountType.System,
            enforce_signature_check=False,
            run_as32_bit=True,
            role_scope_tag_ids=["0"],
        )
        made = await dm.device_management_scripts.post(script)
        same(
            script,
            made,
            ("display_name", "script_content", "file_name", "run_as_account", "run_as32_bit"),
        )
        scripts = dm.device_management_scripts.by_device_management_script_id(made.id)
        body = request_body(
            "device_management.device_management_scripts.item.assign.assign_post_request_body"
        )
        await scripts.assign.post(
            body(
                device_management_script_group_assignments=[
                    m.DeviceManagementScriptGroupAssignment(target_group_id=group)
                ],
                device_management_script_assignments=[
                    m.DeviceManagementScriptAssignment(target=m.AllDevicesAssignmentTarget())
                ],
            )
        )
        assigned = await scripts.assignments.get()
        assert len(assigned.value) == 2
        await scripts.patch(m.DeviceManagementScript(description="changed"))
        assert (await scripts.get()).description == "changed"
        await scripts.delete()

        health = m.DeviceHealthScript(
            display_name=unique("hs"),
            publisher="Contoso",
            detection_script_content=content("exit 1"),
            remediation_script_content=content("exit 0"),
            run_as_account=m.RunAsAccountType.System,
            run_as32_bit=False,
            enforce_signature_check=False,
        )
        made = await dm.device_health_scripts.post(health)
        same(
            health, made, ("display_name", "detection_script_content", "remediation_script_content")
        )
        assert made.version == "1"
        body = request_body(
            "device_management.device_health_scripts.item.assign.assign_post_request_body"
        )
        schedule = m.DeviceHealthScriptDailySchedule(interval=1, time=dt.time(9, 0), use_utc=False)
        item = dm.device_health_scripts.by_device_health_script_id(made.id)
        await item.assign.post(
            body(
                device_health_script_assignments=[
                    m.DeviceHealthScriptAssignment(
                        target=m.GroupAssignmentTarget(group_id=group),
                        run_remediation_script=True,
                        run_schedule=schedule,
                    )
                ]
            )
        )
        [assignment] = (await item.assignments.get()).value
        assert assignment.run_remediation_script is True
        same(schedule, assignment.run_schedule, ("interval", "time", "use_utc"))

        shell = m.DeviceShellScript(
            display_name=unique("sh"),
            script_content=content("echo hello"),
            file_name="hello.sh",
            run_as_account=m.RunAsAccountType.User,
            retry_count=2,
            block_execution_notifications=True,
            # The SDK writes a timedelta as str() ("1 day, 0:00:00"), not ISO 8601: send text.
            execution_frequency="P1D",
        )
        made = await dm.device_shell_scripts.post(shell)
        same(
            shell,
            made,
            (
                "script_content",
                "retry_count",
                "block_execution_notifications",
            ),
        )

        compliance = m.Windows10CompliancePolicy(
            display_name=unique("win"),
            bit_locker_enabled=True,
            secure_boot_enabled=True,
            tpm_required=True,
            password_required=True,
            password_minimum_length=8,
            os_minimum_version="10.0.19045",
        )
        made = await dm.device_compliance_policies.post(compliance)
        assert isinstance(made, m.Windows10CompliancePolicy)
        same(
            compliance,
            made,
            (
                "bit_locker_enabled",
                "secure_boot_enabled",
                "tpm_required",
                "password_minimum_length",
                "os_minimum_version",
            ),
        )
        ios = m.IosCompliancePolicy(
            display_name=unique("ios"), passcode_required=True, passcode_minimum_length=6
        )
        made_ios = await dm.device_compliance_policies.post(ios)
        assert isinstance(made_ios, m.IosCompliancePolicy) and made_ios.passcode_minimum_length == 6

        policy = m.DeviceManagementConfigurationPolicy(
            name=unique("settings"),
            description="Settings catalog",
            platforms=m.DeviceManagementConfigurationPlatforms.Windows10,
            technologies=m.DeviceManagementConfigurationTechnologies.Mdm,
            settings=[
                m.DeviceManagementConfigurationSetting(
                    setting_instance=m.DeviceManagementConfigurationChoiceSettingInstance(
                        setting_definition_id="device_vendor_msft_policy_config_defender_allowrealtimemonitoring",
                        choice_setting_value=m.DeviceManagementConfigurationChoiceSettingValue(
                            value="device_vendor_msft_policy_config_defender_allowrealtimemonitoring_1",
                            children=[],
                        ),
                    )
                )
            ],
        )
        made = await dm.configuration_policies.post(policy)
        same(policy, made, ("name", "platforms", "technologies"))
        assert made.settings and isinstance(
            made.settings[0].setting_instance, m.DeviceManagementConfigurationChoiceSettingInstance
        )

        category = await dm.device_categories.post(m.DeviceCategory(display_name=unique("cat")))
        got = await dm.device_categories.by_device_category_id(category.id).get()
        assert got.display_name == category.display_name

    run(live_server, tenant.admin, work)


# -- managed devices ---------------------------------------------------------------------------


def test_managed_devices_through_the_sdk(tenants: TenantFactory, live_server: str) -> None:
    tenant = tenants()
    # The inventory comes in through Countersign's import (the SDK does not write Graph's
    # read-only properties such as deviceName, so it cannot create one).
    inventory = {
        "deviceName": unique("PC"),
        "operatingSystem": "Windows",
        "osVersion": "10.0.22631",
        "serialNumber": "SN-1",
        "manufacturer": "Contoso",
        "model": "Laptop 7",
        "complianceState": "compliant",
    }
    made_id = tenant.ok("POST", "/beta/deviceManagement/managedDevices", json=inventory)["id"]
    second_id = tenant.ok(
        "POST",
        "/beta/deviceManagement/managedDevices",
        json={"deviceName": unique("PC"), "operatingSystem": "iOS"},
    )["id"]

    async def work(graph: GraphServiceClient) -> None:
        devices = graph.device_management.managed_devices
        made = await devices.by_managed_device_id(made_id).get()
        assert (made.device_name, made.manufacturer, made.model, made.serial_number) == (
            inventory["deviceName"],
            "Contoso",
            "Laptop 7",
            "SN-1",
        )
        assert made.compliance_state == m.ComplianceState.Compliant and made.imei is None
        item = devices.by_managed_device_id(made.id)
        await item.patch(
            m.ManagedDevice(
                notes="desk 4", managed_device_owner_type=m.ManagedDeviceOwnerType.Company
            )
        )
        got = await item.get()
        assert (
            got.notes == "desk 4"
            and got.managed_device_owner_type == m.ManagedDeviceOwnerType.Company
        )
        query = devices.ManagedDevicesRequestBuilderGetQueryParameters(
            filter="operatingSystem eq 'windows'", select=["deviceName", "notes"], top=1
        )
        page = await devices.get(RequestConfiguration(query_parameters=query))
        assert [d.id for d in page.value] == [made.id] and page.value[0].model is None
        wipe = request_body("device_management.managed_devices.item.wipe.wipe_post_request_body")
        await item.wipe.post(wipe(keep_enrollment_data=False, keep_user_data=False))
        assert (await item.get()).management_state == m.ManagementState.WipePending
        await item.sync_device.post()
        # Countersign's `wiped` comes after unknownFutureValue: the SDK reads what Graph sends.
        assert (await item.get()).management_state == m.ManagementState.UnknownFutureValue
        second = await devices.by_managed_device_id(second_id).get()
        action = request_body(
            "device_management.managed_devices.execute_action.execute_action_post_request_body"
        )
        result = await devices.execute_action.post(
            action(action_name=m.ManagedDeviceRemoteAction.Retire, device_ids=[second.id])
        )
        assert result.successful_device_ids == [second.id]
        await devices.by_managed_device_id(second.id).delete()

    run(live_server, tenant.admin, work)


# -- directory and RBAC ------------------------------------------------------------------------


def full_user(upn: str) -> m.User:
    return m.User(
        display_name="Alex",
        user_principal_name=upn,
        account_enabled=True,
        mail_nickname="alex",
        given_name="Alex",
        surname="de Vries",
        usage_location="NL",
        city="Utrecht",
        country="Netherlands",
        street_address="Domplein 1",
        postal_code="3512",
        job_title="Engineer",
        department="IT",
        office_location="B2",
        mobile_phone="+31 6 1234 5678",
        business_phones=["+31 30 123 4567"],
        company_name="Contoso",
        employee_id="E-42",
        employee_type="Employee",
        employee_hire_date=dt.datetime(2024, 3, 1, tzinfo=dt.UTC),
        employee_org_data=m.EmployeeOrgData(division="Devices", cost_center="CC-1"),
        other_mails=["alex@elsewhere.example"],
        preferred_language="nl-NL",
        password_profile=m.PasswordProfile(
            password="Correct-Horse-9", force_change_password_next_sign_in=False
        ),
    )


SENT_USER = (
    "display_name",
    "user_principal_name",
    "account_enabled",
    "mail_nickname",
    "given_name",
    "surname",
    "usage_location",
    "city",
    "country",
    "street_address",
    "postal_code",
    "job_title",
    "department",
    "office_location",
    "mobile_phone",
    "business_phones",
    "company_name",
    "employee_id",
    "employee_type",
    "employee_hire_date",
    "employee_org_data",
    "other_mails",
    "preferred_language",
)
SENT_GROUP = ("display_name", "description", "mail_nickname", "visibility", "classification")
SENT_SP = ("display_name", "notes", "tags", "homepage", "app_role_assignment_required")


def test_directory_and_rbac_through_the_sdk(tenants: TenantFactory, live_server: str) -> None:
    tenant = tenants()

    async def work(graph: GraphServiceClient) -> None:
        upn = f"{unique('alex')}@{tenant.domain}"
        sent = full_user(upn)
        user = await graph.users.post(sent)
        same(sent, user, SENT_USER)
        got = await graph.users.by_user_id(upn).get()
        assert got.id == user.id and got.created_date_time is not None
        same(sent, got, SENT_USER)
        for _ in range(2):
            await graph.users.post(
                m.User(display_name="Alex", user_principal_name=f"{unique('a')}@{tenant.domain}")
            )
        query = graph.users.UsersRequestBuilderGetQueryParameters(
            filter="displayName eq 'alex'", select=["id", "displayName"], top=2
        )
        page = await graph.users.get(RequestConfiguration(query_parameters=query))
        assert page is not None and page.value is not None and len(page.value) == 2
        assert page.value[0].city is None and page.odata_next_link
        rest = await graph.users.with_url(page.odata_next_link).get()
        assert rest is not None and rest.value is not None and len(rest.value) == 1
        await graph.users.by_user_id(user.id).patch(m.User(city="Delft", job_title="Lead"))
        got = await graph.users.by_user_id(user.id).get()
        assert (got.city, got.job_title, got.department) == ("Delft", "Lead", "IT")

        sent_group = m.Group(
            display_name=unique("g"),
            description="Pilot devices",
            security_enabled=True,
            mail_enabled=False,
            mail_nickname="g",
            visibility="Private",
            classification="Internal",
        )
        group = await graph.groups.post(sent_group)
        same(sent_group, group, SENT_GROUP)
        same(sent_group, await graph.groups.by_group_id(group.id).get(), SENT_GROUP)
        await graph.groups.by_group_id(group.id).patch(m.Group(theme="Teal"))
        assert (await graph.groups.by_group_id(group.id).get()).theme == "Teal"
        ref = m.ReferenceCreate(
            odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{user.id}"
        )
        await graph.groups.by_group_id(group.id).members.ref.post(ref)
        members = await graph.groups.by_group_id(group.id).members.get()
        assert [x.id for x in members.value] == [user.id]
        member_of = await graph.users.by_user_id(user.id).member_of.get()
        assert [x.id for x in member_of.value] == [group.id]

        sent_sp = m.ServicePrincipal(
            display_name=unique("sp"),
            notes="CI",
            tags=["WindowsAzureActiveDirectoryIntegratedApp"],
            homepage="https://ci.example",
            app_role_assignment_required=False,
        )
        sp = await graph.service_principals.post(sent_sp)
        same(sent_sp, sp, SENT_SP)
        await graph.service_principals.by_service_principal_id(sp.id).patch(
            m.ServicePrincipal(notes="CD")
        )
        assert (await graph.service_principals.by_service_principal_id(sp.id).get()).notes == "CD"
        me = await graph.me().get()
        assert me.id == tenant.admin.id

        dm = graph.device_management
        sent_tag = m.RoleScopeTag(display_name=unique("tag"), description="Pilot")
        tag = await dm.role_scope_tags.post(sent_tag)
        same(sent_tag, tag, ("display_name", "description"))
        await dm.role_scope_tags.by_role_scope_tag_id(tag.id).patch(
            m.RoleScopeTag(description="Pilot ring")
        )
        assert (await dm.role_scope_tags.by_role_scope_tag_id(tag.id).get()).description == (
            "Pilot ring"
        )
        sent_role = m.DeviceAndAppManagementRoleDefinition(
            display_name=unique("role"),
            description="Reads apps",
            role_permissions=[
                m.RolePermission(
                    resource_actions=[
                        m.ResourceAction(
                            allowed_resource_actions=["Microsoft.Intune_MobileApps_Read"],
                            not_allowed_resource_actions=[],
                        )
                    ]
                )
            ],
            role_scope_tag_ids=["0"],
            is_built_in=False,
        )
        role = await dm.role_definitions.post(sent_role)
        same(
            sent_role,
            role,
            ("display_name", "description", "role_permissions", "role_scope_tag_ids"),
        )
        sent_assignment = m.DeviceAndAppManagementRoleAssignment(
            display_name=unique("ra"),
            description="Pilot readers",
            members=[group.id],
            scope_members=[],
            resource_scopes=[],
            scope_type=m.RoleAssignmentScopeType.ResourceScope,
            role_scope_tag_ids=[tag.id],
            additional_data={
                "roleDefinition@odata.bind": f"https://graph.microsoft.com/beta/deviceManagement/roleDefinitions('{role.id}')"
            },
        )
        assignment = await dm.role_assignments.post(sent_assignment)
        names = (
            "display_name",
            "description",
            "members",
            "scope_members",
            "scope_type",
            "role_scope_tag_ids",
        )
        same(sent_assignment, assignment, names)
        item = dm.role_assignments.by_device_and_app_management_role_assignment_id(assignment.id)
        same(sent_assignment, await item.get(), names)
        assert (await item.role_definition.get()).id == role.id
        # A group scope Countersign cannot enforce is a 501, not a silent drop.
        with pytest.raises(APIError) as scoped:
            await item.patch(m.DeviceAndAppManagementRoleAssignment(scope_members=[group.id]))
        assert scoped.value.response_status_code == 501
        await item.delete()
        await dm.role_definitions.by_role_definition_id(role.id).delete()
        await dm.role_scope_tags.by_role_scope_tag_id(tag.id).delete()
        await graph.groups.by_group_id(group.id).delete()
        await graph.users.by_user_id(user.id).delete()
        with pytest.raises(APIError) as gone:
            await graph.users.by_user_id(user.id).get()
        assert gone.value.response_status_code == 404

    run(live_server, tenant.admin, work)


# -- multi admin approval ----------------------------------------------------------------------


def test_the_approval_handshake_through_the_sdk(tenants: TenantFactory, live_server: str) -> None:
    s = seed(tenants)
    s.activate_policy("app")
    justification = base64.b64encode(b"Roll out the agent").decode()
    sent = win32_app()

    async def submit(graph: GraphServiceClient) -> str:
        apps = graph.device_app_management.mobile_apps
        with pytest.raises(APIError) as refused:
            await apps.post(sent)
        assert refused.value.response_status_code == 400
        with pytest.raises(APIError) as pending:
            await apps.post(sent, config(**{"x-msft-approval-justification": justification}))
        assert pending.value.response_status_code == 403
        headers = {k.lower(): v for k, v in (pending.value.response_headers or {}).items()}
        code = headers["x-msft-approval-code"]
        requests = graph.device_management.operation_approval_requests
        status_body = request_body(
            "device_management.operation_approval_requests.retrieve_request_status."
            "retrieve_request_status_post_request_body"
        )
        mine = await requests.retrieve_my_requests.get()
        assert code in [r.id for r in mine.value]
        by_id = await requests.retrieve_my_request_by_id_with_id(code).get()
        assert by_id.id == code and by_id.status == m.OperationApprovalRequestStatus.NeedsApproval
        assert by_id.required_operation_approval_policy_types == [m.OperationApprovalPolicyType.App]
        del status_body
        return code

    code = run(live_server, s.admin1, submit)

    async def approve(graph: GraphServiceClient) -> None:
        requests = graph.device_management.operation_approval_requests
        body = request_body(
            "device_management.operation_approval_requests.item.approve.approve_post_request_body"
        )
        answer = await requests.by_operation_approval_request_id(code).approve.post(
            body(justification="Looks right", approval_source=m.OperationApprovalSource.Email)
        )
        assert answer.value
        got = await requests.by_operation_approval_request_id(code).get()
        assert got.status == m.OperationApprovalRequestStatus.Approved

    run(live_server, s.admin2, approve)

    async def replay(graph: GraphServiceClient) -> str:
        apps = graph.device_app_management.mobile_apps
        made = await apps.post(sent, config(**{"x-msft-approval-code": code}))
        assert isinstance(made, m.Win32LobApp)
        same(sent, made, SENT_WIN32)
        requests = graph.device_management.operation_approval_requests
        got = await requests.by_operation_approval_request_id(code).get()
        assert got.status == m.OperationApprovalRequestStatus.Completed

        # A second request, cancelled by its requester; a third, rejected by the approver.
        with pytest.raises(APIError) as pending:
            await apps.by_mobile_app_id(made.id).delete(
                config(**{"x-msft-approval-justification": justification})
            )
        other = {k.lower(): v for k, v in (pending.value.response_headers or {}).items()}
        cancel = request_body(
            "device_management.operation_approval_requests.cancel_my_request."
            "cancel_my_request_post_request_body"
        )
        await requests.cancel_my_request.post(cancel(id=other["x-msft-approval-code"]))
        status = request_body(
            "device_management.operation_approval_requests.retrieve_request_status."
            "retrieve_request_status_post_request_body"
        )
        answer = await requests.retrieve_request_status.post(
            status(entity_id=made.id, entity_type="mobileApp")
        )
        assert answer is not None
        return str(made.id)

    app_id = run(live_server, s.admin1, replay)

    async def submit_delete(graph: GraphServiceClient) -> str:
        item = graph.device_app_management.mobile_apps.by_mobile_app_id(app_id)
        with pytest.raises(APIError) as pending:
            await item.delete(config(**{"x-msft-approval-justification": justification}))
        assert pending.value.response_status_code == 403
        headers = {k.lower(): v for k, v in (pending.value.response_headers or {}).items()}
        return headers["x-msft-approval-code"]

    def decide(action: str, code: str) -> Callable[[GraphServiceClient], Awaitable[Any]]:
        async def work(graph: GraphServiceClient) -> Any:
            requests = graph.device_management.operation_approval_requests
            item = requests.by_operation_approval_request_id(code)
            snake = re.sub(r"(?<!^)(?=[A-Z])", "_", action).lower()
            body = request_body(
                f"device_management.operation_approval_requests.item.{snake}."
                f"{snake}_post_request_body"
            )
            answer = await getattr(item, snake).post(body(justification=f"{action} it"))
            assert answer.value
            return (await item.get()).status

        return work

    rejected = run(live_server, s.admin1, submit_delete)
    status = run(live_server, s.admin2, decide("reject", rejected))
    assert status == m.OperationApprovalRequestStatus.Rejected
    withdrawn = run(live_server, s.admin1, submit_delete)
    run(live_server, s.admin2, decide("approve", withdrawn))
    status = run(live_server, s.admin2, decide("cancelApproval", withdrawn))
    assert status == m.OperationApprovalRequestStatus.Cancelled
