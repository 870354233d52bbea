"""`VehicleGatewayServicer`: the gRPC methods of `vehiclegateway.v1.VehicleGateway`.

Each method is three steps and no business logic: convert and validate the request
(`gateway.edge.grpc.convert`), call the use case on `GatewayAPI`, convert the answer. Request ids,
deadlines, logging and error mapping happen around it, in `gateway.edge.grpc.interceptors`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.api.v1 import vehicle_gateway_pb2 as pb
from gateway.api.v1 import vehicle_gateway_pb2_grpc as pb_grpc
from gateway.core.inbound import GatewayAPI
from gateway.core.model import ChargeAction, LockAction
from gateway.edge.grpc import access, convert, convert_events
from gateway.edge.grpc.answers import LastConverted, TelemetryAnswers
from gateway.edge.grpc.interceptors import Context


class VehicleGatewayServicer(pb_grpc.VehicleGatewayServicer):
    """Serve `vehiclegateway.v1.VehicleGateway` on top of the gateway's use cases."""

    def __init__(self, api: GatewayAPI) -> None:
        self._api = api
        self._telemetry_answers = TelemetryAnswers()
        self._status_changes = LastConverted(convert.status_change_message)

    async def GetConnectUrl(
        self, request: pb.GetConnectUrlRequest, context: Context
    ) -> pb.GetConnectUrlResponse:
        """Issue a Connect URL and its single-use state."""
        query = convert.connect_url_query(request)
        url = await self._api.get_connect_url(query.vehicle_id, vin=query.vin)
        return convert.connect_url_message(url)

    async def Connect(self, request: pb.ConnectRequest, context: Context) -> pb.Vehicle:
        """Complete Connect with the code and state from the redirect."""
        args = convert.connect_args(request)
        panel = await self._api.connect(
            args.vehicle_id,
            code=args.code,
            state=args.state,
            user_id=args.user_id,
            failure=args.failure,
        )
        return convert.vehicle_message(panel)

    async def GetTelemetry(self, request: pb.GetTelemetryRequest, context: Context) -> pb.Telemetry:
        """Read telemetry within the requested max age."""
        query = convert.telemetry_query(request)
        telemetry = await self._api.get_telemetry(
            query.vehicle_id,
            fields=query.fields,
            max_age=query.max_age,
            held_when_limited=query.held_when_limited,
        )
        return self._telemetry_answers.message(telemetry)

    async def Lock(self, request: pb.LockRequest, context: Context) -> pb.CommandResult:
        """Lock the vehicle, idempotently per request id."""
        return await self._command(convert.command_args(request, LockAction.LOCK))

    async def Unlock(self, request: pb.UnlockRequest, context: Context) -> pb.CommandResult:
        """Unlock the vehicle, idempotently per request id."""
        return await self._command(convert.command_args(request, LockAction.UNLOCK))

    async def StartCharge(
        self, request: pb.StartChargeRequest, context: Context
    ) -> pb.CommandResult:
        """Start charging the vehicle, idempotently per request id."""
        return await self._command(convert.command_args(request, ChargeAction.START_CHARGE))

    async def StopCharge(self, request: pb.StopChargeRequest, context: Context) -> pb.CommandResult:
        """Stop charging the vehicle, idempotently per request id."""
        return await self._command(convert.command_args(request, ChargeAction.STOP_CHARGE))

    async def SetChargeLimit(
        self, request: pb.SetChargeLimitRequest, context: Context
    ) -> pb.CommandResult:
        """Set the vehicle's charge limit, idempotently per request id."""
        return await self._command(convert.charge_limit_args(request))

    async def Disconnect(self, request: pb.DisconnectRequest, context: Context) -> pb.Vehicle:
        """Disconnect the vehicle from Smartcar."""
        panel = await self._api.disconnect(convert.vehicle_id(request))
        return convert.vehicle_message(panel)

    async def StartRental(self, request: pb.StartRentalRequest, context: Context) -> pb.Rental:
        """Hold the vehicle for a rental and take its start reading."""
        args = convert.rental_args(request)
        record = await self._api.start_rental(args.vehicle_id, rental_id=args.rental_id)
        return convert.rental_record_message(record, visible=access.visible_fields("StartRental"))

    async def EndRental(self, request: pb.EndRentalRequest, context: Context) -> pb.Rental:
        """Release a rental hold and take its end reading."""
        args = convert.rental_args(request)
        record = await self._api.end_rental(args.vehicle_id, rental_id=args.rental_id)
        return convert.rental_record_message(record, visible=access.visible_fields("EndRental"))

    async def GetRental(self, request: pb.GetRentalRequest, context: Context) -> pb.Rental:
        """Show one rental with its readings."""
        record = await self._api.get_rental(convert.rental_id(request))
        return convert.rental_record_message(record, visible=access.visible_fields("GetRental"))

    async def ListRentals(
        self, request: pb.ListRentalsRequest, context: Context
    ) -> pb.ListRentalsResponse:
        """List rentals with their readings, one page at a time."""
        query = convert.rental_list_query(request)
        page = await self._api.list_rentals(
            vehicle_id=query.vehicle_id,
            ended_after=query.ended_after,
            ended_before=query.ended_before,
            page_size=query.page_size,
            page_token=query.page_token,
        )
        return convert.rental_page_message(page, visible=access.visible_fields("ListRentals"))

    async def GetVehicle(self, request: pb.GetVehicleRequest, context: Context) -> pb.Vehicle:
        """Show one vehicle's connection panel."""
        panel = await self._api.get_vehicle(convert.vehicle_id(request))
        return convert.vehicle_message(panel)

    async def ListVehicles(
        self, request: pb.ListVehiclesRequest, context: Context
    ) -> pb.ListVehiclesResponse:
        """List connection panels, one page at a time."""
        query = convert.vehicle_list_query(request)
        page = await self._api.list_vehicles(
            status=query.status, page_size=query.page_size, page_token=query.page_token
        )
        return convert.vehicle_page_message(page)

    async def WatchVehicles(
        self, request: pb.WatchVehiclesRequest, context: Context
    ) -> AsyncIterator[pb.StatusChange]:
        """Stream connection status changes until the caller hangs up."""
        query = convert.watch_query(request)
        changes = self._api.watch_vehicles(
            vehicle_ids=query.vehicle_ids,
            after_id=query.after_id,
            caller=access.caller.get() or access.ANONYMOUS.name,
        )
        async for change in changes:
            yield self._status_changes.message(change)

    async def CheckCompatibility(
        self, request: pb.CheckCompatibilityRequest, context: Context
    ) -> pb.CheckCompatibilityResponse:
        """Ask Smartcar whether a car can be connected, per permission the fleet needs."""
        query = convert.compatibility_query(request)
        report = await self._api.check_compatibility(query.vin, country=query.country)
        return convert.compatibility_message(report)

    async def SetRequestAllowance(
        self, request: pb.SetRequestAllowanceRequest, context: Context
    ) -> pb.Vehicle:
        """Give one vehicle its own monthly request allowance (0: the fleet's)."""
        args = convert.allowance_args(request)
        panel = await self._api.set_request_allowance(
            args.vehicle_id, monthly_allowance=args.monthly_allowance
        )
        return convert.vehicle_message(panel)

    async def WatchVehicleEvents(
        self, request: pb.WatchVehicleEventsRequest, context: Context
    ) -> AsyncIterator[pb.VehicleEvent]:
        """Stream vehicle events until the caller hangs up (those it may see)."""
        query = convert_events.event_watch_query(request)
        visible = access.visible_fields("WatchVehicleEvents")
        events = self._api.watch_vehicle_events(
            vehicle_ids=query.vehicle_ids,
            kinds=convert_events.shown_kinds(query.kinds, visible),
            after_id=query.after_id,
            caller=access.caller.get() or access.ANONYMOUS.name,
        )
        async for event in events:
            yield convert_events.vehicle_event_message(event, visible=visible)

    async def _command(self, args: convert.CommandArgs) -> pb.CommandResult:
        """Run a command."""
        result = await self._api.command(
            args.vehicle_id,
            action=args.action,
            request_id=args.request_id,
            charge_limit_percent=args.charge_limit_percent,
        )
        return convert.command_result_message(result)
