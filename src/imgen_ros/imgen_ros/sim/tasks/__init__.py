"""One module per task; each exports ``TASK`` (a ``imgen_ros.sim.task.Task`` subclass)."""
