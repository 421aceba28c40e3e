"""Facts about the Stellantis Fleet Owner API that the reconciler depends on.

Every value here comes from the official OpenAPI file (Fleet Owner API v3.19.2,
``stellantis-fleet-api-b2b.yaml``); the comment beside each names the schema it
comes from. Nothing else in the package hard-codes these.
"""

from __future__ import annotations

from typing import Final

API_VERSION: Final = "3.19.2"
DEFAULT_BASE_URL: Final = "https://api-cert.groupe-psa.com/connectedcar/v3"

# components/parameters/pageSize: 1..60, default 60.
MAX_PAGE_SIZE: Final = 60

# RemoteType enum.
THERMAL_PRECONDITIONING: Final = "ThermalPreconditioning"
CHARGING: Final = "ElectricBatteryChargingRequest"
HORN: Final = "Horn"
DOORS: Final = "Doors"
LIGHTS: Final = "Lights"
IMMOBILIZATION: Final = "Immobilization"
STOLEN: Final = "Stolen"
WAKE_UP: Final = "WakeUp"
NAVIGATION: Final = "Navigation"
REMOTE_TYPES: Final = (
    THERMAL_PRECONDITIONING,
    CHARGING,
    HORN,
    DOORS,
    LIGHTS,
    IMMOBILIZATION,
    STOLEN,
    WAKE_UP,
    NAVIGATION,
)

# PreconditioningProgram.slot and the charging program slot: 1..4, each used once.
SLOTS: Final = (1, 2, 3, 4)
MAX_PROGRAMS: Final = 4

# Program.recurrence enum; the API defaults to Daily.
RECURRENCES: Final = ("Daily", "None")

# BasicProgram.occurence.day enum, in week order.
DAYS: Final = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

# RemotePreconditioning programs[].actionsType enum.
ACTION_SET: Final = "Set"
ACTION_DELETE: Final = "Delete"

# RemoteCharging.preferences.
CHARGING_LEVELS: Final = ("Level1", "Level2", "Level3", "Level4", "Level5")
CHARGING_TYPES: Final = ("Partial", "Full")

# Attribute.type enum (webhook attributes).
ATTRIBUTE_HEADER: Final = "Header"
ATTRIBUTE_QUERY: Final = "Query"
ATTRIBUTE_BODY: Final = "Body"

# RemoteAttribute.value variables, written with a leading "$".
ATTRIBUTE_VARIABLES: Final = ("vin", "callbackID", "remoteType", "fleetID")

# CallbackSubscribe.retryPolicy.policy enum. The remote variant of the schema
# lists only None and Bounded, but the retry-policy page documents Always, and
# the product contract accepts it.
RETRY_POLICIES: Final = ("None", "Bounded", "Always")
DEFAULT_RETRY_NUMBER: Final = 3
DEFAULT_RETRY_DELAY: Final = 10

# CallbackSubscribe.batchNotify.timeWindow: minimum 5, default 60.
MIN_BATCH_TIME_WINDOW: Final = 5
DEFAULT_BATCH_TIME_WINDOW: Final = 60

# RemoteCallbacksStatusSetter.status enum; CallbackStatus adds Failed.
CALLBACK_RUNNING: Final = "Running"
CALLBACK_PAUSED: Final = "Paused"
CALLBACK_STATUSES: Final = (CALLBACK_RUNNING, CALLBACK_PAUSED)

# RemoteActionStatus enum, split by whether the action is still under way.
PENDING_STATUSES: Final = ("Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle")
SUCCESS_STATUSES: Final = ("Success", "AlreadyDone")
FAILED_STATUSES: Final = ("Failed", "VehicleBatteryChargeTooLow", "TooManyWakeUpsOverMonth")

# RemoteFailedEventStatus values that retrying cannot fix soon (DESIGN §6):
# they are surfaced and backed off instead of being retried on every run.
SLOW_FAILURE_CAUSES: Final = (
    "TooManyWakeUpsOverMonth",
    "NotPossibleDueToVehiclePrivacyLevel",
    "MissingRights",
    "NotPossibleDueToVehicleBatteryLevel",
    "VehicleBatteryChargeTooLow",
)

# A VIN: 17 characters, never I, O or Q (ISO 3779).
VIN_LENGTH: Final = 17
VIN_ALPHABET: Final = frozenset("ABCDEFGHJKLMNPRSTUVWXYZ0123456789")

# The webhook template (stellantis-fleet-webhook-template.yaml): RemoteEventType and the
# statuses each type carries. TooManyWakeUpsOverMonth and VehicleBatteryChargeTooLow
# arrive as "Pending" statuses there, yet nothing follows them: they end the action.
EVENT_PENDING: Final = "Pending"
EVENT_DONE: Final = "Done"
EVENT_STATUSES: Final = {
    EVENT_PENDING: (
        "Accepted",
        "WakingUpVehicle",
        "CheckingVehicle",
        "SentToVehicle",
        "VehicleBatteryChargeTooLow",
        "TooManyWakeUpsOverMonth",
    ),
    EVENT_DONE: ("Success", "AlreadyDone", "Failed"),
}
# RemoteFailedEventStatus: the failure causes.
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
