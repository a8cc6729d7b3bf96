"""Stand-ins for what moto 5.2.5 lacks, built on moto's own models so that a function's observe ->
act -> observe loop runs against one emulator. Each is a stand-in, not AWS: it does what the
operation's documented outcome is, at once, with none of the service's timing.

- RDS `SwitchoverGlobalCluster` and `FailoverGlobalCluster` (moto: HTTP 500 NotImplementedError):
  the target member cluster becomes the global cluster's writer and every other member a reader.
  A target that is not a member is `InvalidParameterValue`; an unknown global cluster
  `GlobalClusterNotFoundFault`.
- Route 53 `GetHealthCheckStatus` (moto: always one checker reporting success): the observations
  can be set per health check through `POST /_autonomic/health-check-status` with
  `{"healthCheckId": "...", "observations": [{"region": "us-east-1", "status": "Failure: ..."}]}`;
  without them moto's answer stands. An id given observations is answered even if moto has no
  such health check (moto makes ids up; the samples carry a fixed one).
- RDS `FailoverState` of a global cluster (moto: never reported): set or cleared through
  `POST /_autonomic/global-cluster-failover-state` with `{"globalClusterIdentifier": "...",
  "failoverState": {"Status": "switching-over", "FromDbClusterArn": "...", "ToDbClusterArn":
  "...", "IsDataLossAllowed": false}}` (`null` clears it): a promotion in progress.

`install()` patches moto's response classes; `control(environ)` answers the control requests
(the launcher calls it before moto sees a request).
"""

import json
import threading

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.rds.exceptions import InvalidParameterValue, RDSClientError
from moto.rds.responses import RDSResponse
from moto.route53.responses import Route53

CONTROL_PATH = "/_autonomic/health-check-status"
FAILOVER_STATE_PATH = "/_autonomic/global-cluster-failover-state"

_observations = {}
_lock = threading.Lock()


class GlobalClusterNotFound(RDSClientError):
    def __init__(self, identifier):
        super().__init__("GlobalClusterNotFoundFault", f"Global cluster {identifier} not found.")


# moto finds an error's service model from the module the error class is defined in.
GlobalClusterNotFound.__module__ = "moto.rds.exceptions"


def _move_writer(response):
    params = response.params
    identifier = params.get("GlobalClusterIdentifier", "")
    target = params.get("TargetDbClusterIdentifier", "")
    global_cluster = response.global_backend.global_clusters.get(identifier.lower())
    if global_cluster is None:
        raise GlobalClusterNotFound(identifier)
    members = global_cluster.members
    chosen = [m for m in members if target in (m.db_cluster_arn, m.db_cluster_identifier)]
    if not chosen:
        raise InvalidParameterValue(f"{target} is not a member of global cluster {identifier}")
    for member in members:
        member.is_writer = member is chosen[0]
    return ActionResult({"GlobalCluster": global_cluster})


def switchover_global_cluster(self):
    return _move_writer(self)


def failover_global_cluster(self):
    return _move_writer(self)


_moto_health_check_status = Route53.get_health_check_status


def get_health_check_status(self):
    health_check_id = self._get_param("HealthCheckId")
    with _lock:
        observations = _observations.get(health_check_id)
    if observations is None:
        return _moto_health_check_status(self)
    # An id given observations is answered even when moto has no such check: moto makes up
    # health-check ids, and the samples in events/ carry a fixed one.
    return ActionResult(
        {
            "HealthCheckObservations": [
                {
                    "Region": o["region"],
                    "IPAddress": o.get("ipAddress", "127.0.13.37"),
                    "StatusReport": {"Status": o["status"], "CheckedTime": utcnow()},
                }
                for o in observations
            ]
        }
    )


def install():
    RDSResponse.switchover_global_cluster = switchover_global_cluster
    RDSResponse.failover_global_cluster = failover_global_cluster
    Route53.get_health_check_status = get_health_check_status


def _set_failover_state(body):
    from moto.rds.models import rds_backends

    identifier = body["globalClusterIdentifier"].lower()
    state = body["failoverState"]
    if state is not None and not isinstance(state, dict):
        raise TypeError("failoverState must be an object or null")
    # Global clusters live in every Region's backend view of the account: set it where it is.
    for account in rds_backends.values():
        for backend in account.values():
            global_cluster = backend.global_clusters.get(identifier)
            if global_cluster is not None:
                global_cluster.failover_state = state
                return
    raise KeyError(f"no global cluster {identifier}")


def control(environ):
    """The answer to a control request as (status, body), or None for a request to moto."""
    path = environ.get("PATH_INFO")
    if path not in (CONTROL_PATH, FAILOVER_STATE_PATH) or environ.get("REQUEST_METHOD") != "POST":
        return None
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        if path == FAILOVER_STATE_PATH:
            with _lock:
                _set_failover_state(body)
            return "200 OK", b"{}"
        observations = [{"region": o["region"], "status": o["status"]} for o in body["observations"]]
        with _lock:
            _observations[body["healthCheckId"]] = observations
    except (ValueError, KeyError, TypeError) as e:
        return "400 Bad Request", json.dumps({"error": str(e)}).encode()
    return "200 OK", b"{}"
