"""batch/v1 Job rules.  Jobs are not served yet; what upstream's strategy decides
for them that other code already reads is kept here: a DELETE without a policy
orphans their pods (OrphanDependents "for backwards compatibility")."""
from __future__ import annotations

from master.apiserver.resources import Strategy, register


@register("jobs", "batch")
class JobStrategy(Strategy):
    gc_policy = "Orphan"
