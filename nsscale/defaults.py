"""Defaults of the command line's options, importable without the rest (start-up stays fast)."""

from datetime import timedelta

DEFAULT_TIMEOUT_S = 30.0  # per kubectl call
DEFAULT_PARALLEL = 4  # kubectl write calls in flight at once
DEFAULT_RETRIES = 3  # of a transiently failed kubectl call
DEFAULT_WAIT_TIMEOUT = timedelta(minutes=5)  # --wait: how long the changed workloads have
DEFAULT_LEASE_S = 120  # the in-cluster mark of a run is stale this long after its last renewal
KUBECTL_ENV = "NSSCALE_KUBECTL"
TABLE_ENV = "NSSCALE_AUDIT_TABLE"
DEFAULT_TIMEZONE = "UTC"  # of a schedule window that names none
DEFAULT_ARGOCD_NAMESPACE = "argocd"  # where Argo CD keeps its Applications
DEFAULT_LISTEN = "127.0.0.1:8080"  # serve: loopback; another interface is a choice said out loud
DEFAULT_MAX_RUNS = 4  # serve: runs at once
DEFAULT_MAX_REVIEWS = 8  # serve: TokenReviews and SubjectAccessReviews in flight at once
DEFAULT_MAX_CONNECTIONS = 1000  # serve: connections open at once
DEFAULT_GRACE_PERIOD = timedelta(minutes=15)  # reconcile: a new workload is left alone this long
