"""What the simulator knows of the API, from its OpenAPI file (v3.19.2) alone."""

from __future__ import annotations

from typing import Final

BASE_PATH: Final = "/connectedcar/v3"
MAX_PAGE_SIZE: Final = 60  # components/parameters/pageSize

# Remote body key -> RemoteType (schemas Remote and RemoteType).
REMOTE_KEYS: Final = {
    "preconditioning": "ThermalPreconditioning",
    "charging": "ElectricBatteryChargingRequest",
    "horn": "Horn",
    "door": "Doors",
    "lights": "Lights",
    "immobilization": "Immobilization",
    "stolen": "Stolen",
    "wakeUp": "WakeUp",
    "navigation": "Navigation",
}
REMOTE_TYPES: Final = tuple(REMOTE_KEYS.values())
DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
RETRY_POLICIES: Final = ("None", "Bounded", "Always")
ATTRIBUTE_TYPES: Final = ("Header", "Body", "Query")
CALLBACK_STATUSES: Final = ("Running", "Paused")

# RemoteActionStatus: intermediate and final.
ACCEPTED: Final = "Accepted"
WAKING_UP: Final = "WakingUpVehicle"
SENT: Final = "SentToVehicle"
SUCCESS: Final = "Success"
ALREADY_DONE: Final = "AlreadyDone"
FAILED: Final = "Failed"
FINAL_STATUSES: Final = (SUCCESS, ALREADY_DONE, FAILED)

# RemoteFailedEventStatus values the simulator produces.
FAILURE_CAUSES: Final = (
    "GeneralError",
    "VehicleError",
    "WrongCommand",
    "VehicleConnectionTimeout",
    "MissingRights",
    "NotPossibleDueToVehicleBatteryLevel",
    "NotPossibleDueToVehiclePrivacyLevel",
    "TooManyWakeUpsOverMonth",
    "TooManyRequestInShortTime",
    "SameActionInProgress",
    "NotPossibleDueToVehicleStolenState",
    "VehicleInUse",
    "TooManyRequestSent",
    "DoorsOpen",
    "VehicleErrorOrCidInside",
    "CidInside",
    "ExternalChargingSystemError",
    "VehicleChargingSystemError",
    "VehicleIsNotLocked",
    "CanceledByDriver",
)

# Webhook retry: Always retries until three days have passed.
ALWAYS_RETRY_FOR: Final = 3 * 24 * 3600
