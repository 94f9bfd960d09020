"""Controllers: informer + work queue + level-triggered sync, one noun each."""
