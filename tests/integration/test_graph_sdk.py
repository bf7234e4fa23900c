"""Microsoft's own Graph SDK (`msgraph-beta-sdk`, a development dependency) against a live
Countersign: every collection through the SDK's request builders and model classes, and what
the SDK deserialises compared with what was sent."""

from __future__ import annotations

import asyncio
import importlib
import re
import base64
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

pytest.importorskip("msgraph_beta")

from kiota_abstractions.api_error import APIError  # noqa: E402
from kiota_abstractions.authentication import AuthenticationProvider  # noqa: E402
from kiota_abstractions.base_request_configuration import RequestConfiguration  # noqa: E402
from kiota_abstractions.request_information import RequestInformation  # noqa: E402
from msgraph_beta import GraphRequestAdapter, GraphServiceClient  # noqa: E402

from tests.factories import Principal, TenantFactory, unique  # noqa: E402
from tests.maa import seed  # noqa: E402

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
            await adapter._http_client.aclose()

    return asyncio.run(main())


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
        assert _plain(getattr(got, name)) == _plain(getattr(sent, name)), name


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
