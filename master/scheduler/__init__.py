"""The scheduler: filter and score nodes for each unscheduled pod, bind."""
