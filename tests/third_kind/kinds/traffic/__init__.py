"""Road incidents reported by drivers (Waze-like): a third kind, one folder."""
