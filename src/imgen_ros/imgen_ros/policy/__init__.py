"""imgen_ros: Interventional MimicGen for the Franka FR3."""
