"""Training of the bundled models: the spoken-digit models on FSDD (:mod:`.digits`, ``earmark train``) and
the synthetic task models, trained on demand and cached (:mod:`.synthetic`)."""
