"""One module per ``reconcile`` sub-command; each exports ``command``."""
