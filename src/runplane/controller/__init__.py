"""The controller: a level-triggered reconcile loop over pure decision functions."""
