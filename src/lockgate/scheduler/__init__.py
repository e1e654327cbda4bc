"""The scheduler: creates due runs (timetables, dataset triggers, manual triggers) and drives
them to completion, exactly once per (pipeline, logical date), alone or beside other schedulers."""
