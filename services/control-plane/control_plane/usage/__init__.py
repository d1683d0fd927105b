"""Usage and cost: the usage API (`api`), the charges recorded from the usage topic (`recorder`, `writes`) and the sweep
that settles abandoned holds (`settle_sweep`)."""
