"""Training of the bundled models: the spoken-digit models on FSDD (:mod:`.digits`, ``earmark train``),
the Hugging Face AST ``ast-digits`` at 16 kHz (:mod:`.ast`, ``earmark train ast``) and the synthetic task
models, trained on demand and cached (:mod:`.synthetic`)."""
