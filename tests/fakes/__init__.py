"""Protocol-faithful fakes of the servers kubevents talks to (STYLE point 22)."""
