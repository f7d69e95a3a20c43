"""The job runtime: leases, the periodic scheduler and the worker process."""
