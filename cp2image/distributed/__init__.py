"""Run per-field / per-batch work as tasks on dask.distributed.

- `ClusterConfig` + `dask_client(config)`: a `LocalCluster` sized to this machine by
  default, or a connection to a running scheduler (`--scheduler tcp://host:8786`).
  Both give a `distributed.Client`, so the rest of the code has one path.
- `ordered_results(client, fn, items)`: submit `fn(item)` for every item as dask
  tasks with a bounded number in flight, and yield the results in item order, so a
  dataset is written in a deterministic order however the tasks were scheduled.
"""
from .cluster import ClusterConfig, add_cluster_arguments, cluster_config_from_args, dask_client
from .tasks import map_in_order, ordered_results

__all__ = ["ClusterConfig", "add_cluster_arguments", "cluster_config_from_args", "dask_client", "map_in_order", "ordered_results"]
