"""Labelled clips: the Free Spoken Digit Dataset (:mod:`.fsdd`), data sets to evaluate on — folders, CSV
manifests, synthetic tasks (:mod:`.datasets`) — and the synthetic ground-truth tasks with their truth
(:mod:`.tasks`)."""
